"""Read a safetensors header and check it as strictly as safetensors itself, before any tensor is read.

Contract: ``read_safetensors_header(path)`` returns the file's tensors as
``HeaderEntry(raw_name, dtype, shape, start, end)`` sorted by offset, or raises
``BadCheckpoint`` with one line naming the file, the tensor (quoted and cut,
``limits.quoted``: names come from strangers) and the problem. What it checks
is what safetensors' ``Metadata::validate`` checks, so a header that passes here
does not fail later in ``safe_open``: the 8-byte length fits the file and
safetensors' 100 MB cap; the JSON (parsed with ``limits.load_json``'s depth
bound) is an object; ``__metadata__``, if present, maps strings to strings;
every tensor has a known ``dtype``, a ``shape`` of integers ≥ 0 and
``data_offsets`` of two integers whose span is exactly shape × dtype bytes;
the tensors tile the data area from its first byte to its last, no gap, no
overlap. The tensor-count bound (``limits.MAX_TENSORS``) is checked per file
here and over files by ``budget.TensorBudget``.

It leaves to others: which files to read (``local.py``), listing tensors by
normalized name (``tensors.py``). Torch-free. Cost: one read of the header
(at most 100 MB) and a pass over its entries.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from afterburn_core.errors import BadCheckpoint, CheckpointNotFound
from afterburn_core.limits import MAX_TENSORS, load_json, quoted

#: safetensors caps its JSON header at 100 MB (safetensors' MAX_HEADER_SIZE); a larger
#: length field means the file is not safetensors at all.
MAX_SAFETENSORS_HEADER = 100_000_000

#: safetensors dtype codes → (torch dtype name, bits per element): safetensors' ``Dtype`` enum
#: (0.8) and its ``bitsize``; torch's names where torch has the type, else the code itself.
SAFETENSORS_DTYPES: dict[str, tuple[str, int]] = {
    "BOOL": ("bool", 8),
    "F4": ("float4_e2m1fn_x2", 4),
    "F6_E2M3": ("F6_E2M3", 6),
    "F6_E3M2": ("F6_E3M2", 6),
    "U8": ("uint8", 8),
    "I8": ("int8", 8),
    "F8_E5M2": ("float8_e5m2", 8),
    "F8_E4M3": ("float8_e4m3fn", 8),
    "F8_E8M0": ("float8_e8m0fnu", 8),
    "F8_E4M3FNUZ": ("float8_e4m3fnuz", 8),
    "F8_E5M2FNUZ": ("float8_e5m2fnuz", 8),
    "U16": ("uint16", 16),
    "I16": ("int16", 16),
    "F16": ("float16", 16),
    "BF16": ("bfloat16", 16),
    "U32": ("uint32", 32),
    "I32": ("int32", 32),
    "F32": ("float32", 32),
    "C64": ("complex64", 64),
    "F64": ("float64", 64),
    "U64": ("uint64", 64),
    "I64": ("int64", 64),
}


@dataclass(frozen=True)
class HeaderEntry:
    """One tensor of a safetensors header, checked; ``start``/``end`` are offsets into the data area."""

    raw_name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


class _Invalid(ValueError):
    """Why a header is not valid safetensors; becomes the parenthesis of the ``BadCheckpoint``."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(name: str, value: object) -> HeaderEntry:
    where = f"tensor {quoted(name)}"
    if not isinstance(value, dict):
        raise _Invalid(f"{where} is {quoted(value)}, not an object with dtype, shape and data_offsets")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
        raise _Invalid(f"{where} has dtype {quoted(dtype)}, not one of safetensors' dtypes")
    if not isinstance(shape, list) or not all(_is_int(size) and size >= 0 for size in shape):
        raise _Invalid(f"{where} has shape {quoted(shape)}, not a list of integers ≥ 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(offset) for offset in offsets)):
        raise _Invalid(f"{where} has data_offsets {quoted(offsets)}, not two integers")
    start, end = offsets
    if not 0 <= start <= end:
        raise _Invalid(f"{where} has data_offsets {quoted(offsets)}, not 0 ≤ start ≤ end")
    torch_name, bits = SAFETENSORS_DTYPES[dtype]
    if _data_bits(shape, bits, limit=8 * (end - start)) != 8 * (end - start):
        raise _Invalid(
            f"{where} of shape {quoted(shape)} and dtype {dtype} does not take the {end - start} bytes "
            "its data_offsets span"
        )
    return HeaderEntry(name, torch_name, tuple(shape), start, end)


def _data_bits(shape: list[int], bits: int, limit: int) -> int:
    """Bits of a tensor's data, or a number past ``limit`` as soon as it is exceeded: a hostile
    shape of millions of huge sizes would otherwise cost minutes of big-integer products."""
    if 0 in shape:
        return 0
    total = bits
    for size in shape:
        total *= size
        if total > limit:
            return total
    return total


def _entries(header: object, data_size: int) -> tuple[HeaderEntry, ...]:
    if not isinstance(header, dict):
        raise _Invalid("header is not a JSON object")
    metadata = header.get("__metadata__")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(item, str) for item in metadata.values())
    ):
        raise _Invalid("__metadata__ is not an object of strings")
    count = len(header) - ("__metadata__" in header)
    if count > MAX_TENSORS:
        raise _Invalid(f"it holds {count:,} tensors, over the limit of {MAX_TENSORS:,} (limits.MAX_TENSORS)")
    entries = sorted(
        (_entry(name, value) for name, value in header.items() if name != "__metadata__"),
        key=lambda entry: (entry.start, entry.end),
    )
    position = 0
    for entry in entries:
        if entry.end > data_size:
            raise _Invalid(f"tensor {quoted(entry.raw_name)} lies past the end of the file (truncated download?)")
        if entry.start != position:
            raise _Invalid(
                f"tensor {quoted(entry.raw_name)} starts at data byte {entry.start}, not {position} "
                "(tensors overlap or leave a gap)"
            )
        position = entry.end
    if position != data_size:
        raise _Invalid(f"its tensors cover {position} of its {data_size} data bytes")
    return tuple(entries)


def read_safetensors_header(path: Path) -> tuple[HeaderEntry, ...]:
    """The tensors of a safetensors file, checked against the format and the file's size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _Invalid("shorter than the 8-byte header length")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > min(MAX_SAFETENSORS_HEADER, size - 8):
                raise _Invalid(f"header length {header_length} does not fit a {size}-byte file")
            header = load_json(handle.read(header_length).decode("utf-8"))
        return _entries(header, size - 8 - header_length)
    except FileNotFoundError:
        raise CheckpointNotFound(f"no file at {path}; check the path.") from None
    except ValueError as error:  # _Invalid, JSONDecodeError, JsonTooDeep, UnicodeDecodeError, int digit limit
        raise BadCheckpoint(f"{path} is not a valid safetensors file ({error}); re-download or re-save it.") from None
    except OSError as error:
        raise BadCheckpoint(f"{path} cannot be read ({type(error).__name__}); check its permissions.") from None
