"""Which torch device an analysis computes on.

``choose_device("auto")`` picks CUDA, then Apple MPS, then the CPU; asking for
a device this machine lacks is a ``ConfigError`` with a one-line fix. It owns
nothing else: dtypes are chosen by each analysis (the weight diff computes in
fp32, and in fp64 where it says so). Cost: imports torch; queries the driver.
"""

from __future__ import annotations

import re

from afterburn_core.errors import ConfigError
from afterburn_core.limits import quoted

#: Names accepted by ``choose_device`` (the same as ``config.DEVICES``).
DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def free_memory_bytes(device) -> int | None:
    """Bytes free for a new allocation on ``device``: the CUDA driver's free memory on a GPU, else the
    system's ``MemAvailable`` (``limits.available_memory_bytes``); None where the platform does not say."""
    import torch

    from afterburn_core.limits import available_memory_bytes

    if getattr(device, "type", str(device)) == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_memory_bytes()


#: Units a ``max_memory`` size may carry: decimal (powers of 1000) and binary (powers of 1024), as accelerate
#: reads them (``accelerate.utils.convert_file_size_to_int``); a bare number is bytes.
MEMORY_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_MEMORY_DEVICE = re.compile(r"cuda:(\d+)|mps|cpu|disk")
_MAX_MEMORY_EXAMPLE = "'cuda:0=20GiB,cpu=60GiB'"


def parse_max_memory(text: str) -> dict[int | str, int]:
    """``'cuda:0=20GiB,cpu=60GiB,disk=1TB'`` → accelerate's budget ``{0: bytes, "cpu": bytes, "disk": bytes}``
    (a GPU by its index); empty text is ``{}``. A part that is not ``device=size`` is a ``ConfigError`` naming it.
    Whether the devices exist is checked where the model is placed (``generation.placement``), not here: a
    config may be written on another machine."""
    budget: dict[int | str, int] = {}
    for part in (piece.strip() for piece in text.split(",")) if text.strip() else ():
        name, equals, size = (piece.strip() for piece in part.partition("="))
        if not equals:
            raise ConfigError(f"max_memory: {quoted(part)} is not device=size; write it like {_MAX_MEMORY_EXAMPLE}")
        device = _MEMORY_DEVICE.fullmatch(name.lower())
        if device is None:
            raise ConfigError(f"max_memory: {quoted(name)} in {quoted(part)} is not a device; "
                              "name cuda:N, mps, cpu or disk")
        amount = _SIZE.fullmatch(size.lower())
        if amount is None or amount.group(2) not in ("", *MEMORY_UNITS):
            raise ConfigError(f"max_memory: {quoted(size)} in {quoted(part)} is not a size; write a number "
                              "and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
        key: int | str = int(device.group(1)) if device.group(1) is not None else device.group(0)
        if key in budget:
            raise ConfigError(f"max_memory: {quoted(name)} is named twice in {quoted(text)}; name each device once")
        budget[key] = int(float(amount.group(1)) * MEMORY_UNITS[amount.group(2) or "b"])
    return budget


def choose_device(requested: str = "auto"):
    """``torch.device`` for ``requested`` (auto = cuda, then mps, then cpu)."""
    import torch

    name = (requested or "auto").strip().lower()
    if name not in DEVICE_NAMES:
        raise ConfigError(f"device: {requested!r} is not one of {', '.join(DEVICE_NAMES)}.")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA GPU is available; use --device cpu or auto.")
    if name == "mps" and not _mps_available(torch):
        raise ConfigError("device: mps was asked for but Apple MPS is not available; use --device cpu or auto.")
    return torch.device(name)


def supports_float64(device) -> bool:
    """False on MPS, which has no float64: fp64 steps then run on the CPU."""
    return getattr(device, "type", str(device)) != "mps"


#: Allocations at least this large get their own mapping, returned to the OS on free.
MALLOC_MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def pin_malloc_mmap_threshold() -> None:
    """Keep freed tensor buffers from piling up in the heap (glibc only; a no-op elsewhere).

    glibc raises its mmap threshold to the size of each freed mapped chunk (up
    to 32 MiB), so after the first 16–32 MB row block is freed, later blocks
    come from the heap and their memory is not given back: measured here on the
    Qwen2.5-0.5B-shaped pair, anonymous RSS after the embedding was 1.31 GiB
    instead of 0.15 GiB. Pinning the threshold (which also switches the dynamic
    adjustment off) sends every buffer ≥ 1 MiB to its own mapping again.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to pin
        return
