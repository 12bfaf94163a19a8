"""Where ``load_model`` puts a model's weights, decided from its config before any weight is read.

Contract: ``estimate_model_bytes(config, dtype)`` is the memory the model's parameters and buffers
take in ``dtype`` (an empty model built on the meta device from its config: tied weights once,
exactly what the loaded model holds). ``plan_placement(reference, model_bytes, dtype, device,
max_memory)`` turns it and the ``--max-memory`` text into a ``Placement``:

- no ``max_memory`` and the model fits ``FREE_MEMORY_SHARE`` of what ``device`` has free (or the
  platform does not say): the whole model on ``device``, as before;
- no ``max_memory``, a CUDA device too small, and its free share plus the CPU's holds the model:
  spread by accelerate (``device_map="auto"``) over the GPU and the CPU;
- a ``max_memory``: spread over the devices it names, the run's device and (on CUDA) the CPU, each
  unnamed one with its free share, and to disk past them (``disk=`` bounds it, else the free space
  of the temporary folder, ``TMPDIR``);
- anything else (the model past every budget) is a one-line ``ConfigError`` naming the model, the
  bytes needed and those it may use, and the fix — before a single weight is read, never an
  out-of-memory kill mid-run.

A spread model gets its own offload folder (a temporary folder; ``Placement.release`` deletes
it), so any modules accelerate sends to disk have somewhere to go. Its inputs go to
``input_device(hf_device_map)``, the device accelerate runs it on.

It leaves to others: parsing the budget text (``device.parse_max_memory``), loading
(``loading``), several GPUs for generation at speed (the vLLM backend). Cost: building the
empty model (no weight memory; about a second for a 70B config); one free-memory query per device.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from itertools import chain

from afterburn_core.device import free_memory_bytes, parse_max_memory
from afterburn_core.errors import ConfigError
from afterburn_core.limits import quoted

#: Share of a device's free memory the weights may take when ``max_memory`` does not name it; the rest
#: is left for activations, the KV cache and the CUDA context. transformers keeps the same 10 % when it
#: sizes ``device_map="auto"`` itself (``transformers.integrations.accelerate``: 90 % of one GPU, "a
#: good compromise", and 90 % of the CPU's available memory).
FREE_MEMORY_SHARE = 0.9
#: Prefix of the temporary folder a spread model's disk-offloaded weights are written to.
OFFLOAD_FOLDER_PREFIX = "afterburn-offload-"


@dataclass(frozen=True)
class Placement:
    """The whole model on its device (``max_memory`` None), or spread by accelerate over ``max_memory``
    (accelerate's budget: a GPU by its index, ``"mps"``, ``"cpu"``; bytes) with ``offload_folder`` for
    what goes to disk."""

    model_bytes: int
    max_memory: dict[int | str, int] | None = field(default=None, hash=False)
    offload_folder: str | None = None

    @property
    def spread(self) -> bool:
        return self.max_memory is not None

    def from_pretrained_options(self) -> dict:
        """The ``from_pretrained`` arguments that place the model (none when it goes whole on one device)."""
        if not self.spread:
            return {}
        return {"device_map": "auto", "max_memory": dict(self.max_memory), "offload_folder": self.offload_folder}

    def release(self) -> None:
        """Delete the offload folder and the weights written to it."""
        if self.offload_folder is not None:
            shutil.rmtree(self.offload_folder, ignore_errors=True)


def estimate_model_bytes(config, dtype, *, trust_remote_code: bool = False) -> int:
    """Bytes of parameters and buffers of the causal LM ``config`` describes, in ``dtype`` (nothing allocated)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights(include_buffers=True):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
    # parameters() yields a tied weight once, as the loaded model holds it once.
    return sum(tensor.numel() * tensor.element_size() for tensor in chain(model.parameters(), model.buffers()))


def format_bytes(count: int) -> str:
    """``1536`` → ``1.5 KiB``; binary units, as ``--max-memory`` takes them."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count} B"


def _device_key(device) -> int | str:
    """accelerate's name for ``device``: a GPU by its index, else ``"mps"`` / ``"cpu"``."""
    import torch

    if device.type == "cuda":
        return device.index if device.index is not None else torch.cuda.current_device()
    return device.type


def _device_name(key: int | str) -> str:
    return f"cuda:{key}" if isinstance(key, int) else key


def _free(key: int | str) -> int | None:
    import torch

    return free_memory_bytes(torch.device("cuda", key) if isinstance(key, int) else torch.device(key))


def _check_devices(named: dict[int | str, int], device) -> None:
    """Every device ``max_memory`` names is one this run may compute on."""
    import torch

    for key in named:
        if isinstance(key, int) and (device.type != "cuda" or key >= torch.cuda.device_count()):
            raise ConfigError(
                f"max_memory: names cuda:{key}, which this run cannot use (it computes on {device}, "
                f"{torch.cuda.device_count()} CUDA GPUs here); name only cpu, disk and the GPUs of this machine"
            )
        if key == "mps" and device.type != "mps":
            raise ConfigError(f"max_memory: names mps, and this run computes on {device}; name cpu or disk instead")


def _budget(named: dict[int | str, int], device) -> dict[int | str, int]:
    """Bytes each device may hold: the named size, else ``FREE_MEMORY_SHARE`` of what it has free. The CPU joins
    a CUDA run unnamed (its memory is apart from the GPU's); beside MPS it shares one memory, so only when named."""
    run_key = _device_key(device)
    keys = [run_key, *(key for key in named if key != "disk")]
    if device.type == "cuda":
        keys.append("cpu")
    budget: dict[int | str, int] = {}
    for key in dict.fromkeys(keys):
        free = named.get(key, _free(key))
        if free is not None:
            budget[key] = free if key in named else int(free * FREE_MEMORY_SHARE)
    return budget


def _describe(budget: dict[int | str, int]) -> str:
    return " + ".join(f"{format_bytes(size)} on {_device_name(key)}" for key, size in budget.items())


def _offload_folder() -> str:
    return tempfile.mkdtemp(prefix=OFFLOAD_FOLDER_PREFIX)


def plan_placement(reference: str, model_bytes: int, dtype, device, max_memory: str = "") -> Placement:
    """Where ``reference`` (``model_bytes`` in ``dtype``) goes on ``device`` under ``max_memory`` (module
    docstring); a ``ConfigError`` when no budget holds it."""
    named = parse_max_memory(max_memory)
    _check_devices(named, device)
    need = f"{reference} needs {format_bytes(model_bytes)} for its weights in {str(dtype).removeprefix('torch.')}"
    if not named:
        free = _free(_device_key(device))
        if free is None or model_bytes <= free * FREE_MEMORY_SHARE:
            return Placement(model_bytes)
        budget = _budget(named, device)
        if device.type == "cuda" and model_bytes <= sum(budget.values()):
            return Placement(model_bytes, budget, _offload_folder())
        cpu_share = (budget.get("cpu") or 0) / 2**30
        raise ConfigError(
            f"{need}, and {_describe(budget)} is {FREE_MEMORY_SHARE:.0%} of what is free; pass --max-memory "
            f"(e.g. 'cpu={max(1, math.floor(cpu_share))}GiB') to offload the rest to disk, or run on a device "
            "with more memory"
        )
    budget = _budget(named, device)
    folder = tempfile.gettempdir()
    disk = named.get("disk", shutil.disk_usage(folder).free)
    if model_bytes > sum(budget.values()) + disk:
        raise ConfigError(
            f"{need}, and max_memory {quoted(max_memory)} gives it {_describe(budget)} + {format_bytes(disk)} "
            f"on disk ({folder}); raise the sizes in --max-memory, free disk space (or point TMPDIR at a "
            "bigger disk), or run on a device with more memory"
        )
    return Placement(model_bytes, budget, _offload_folder())


def input_device(device_map: dict):
    """The device a model spread by ``device_map`` computes on, where its inputs go: the first accelerator
    it uses, else the CPU (accelerate's ``dispatch_model`` picks its main device by this rule)."""
    import torch

    accelerators = [value for value in device_map.values() if value not in ("cpu", "disk")]
    if not accelerators:
        return torch.device("cpu")
    first = accelerators[0]
    return torch.device("cuda", first) if isinstance(first, int) else torch.device(first)
