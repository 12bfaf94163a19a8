"""Turn a file or folder on this disk into the list of files that make up a checkpoint.

Contract: ``inspect_path(path)`` returns a ``LocalLayout`` — kind, root, sorted
absolute weight files, weight format, config path, the ``ModelDescription`` of
its ``config.json`` (``description.py``), and for a peft adapter the
``AdapterDescription`` of its ``adapter_config.json`` — or raises ``CheckpointNotFound`` /
``BadCheckpoint`` / ``UnsafeCheckpoint`` with a one-line message naming the
file and the fix. What it checks, so a broken checkpoint fails here and not
half-way through an analysis: ``config.json`` / ``adapter_config.json`` parse
as JSON objects; every shard an index names exists; every safetensors header
parses and fits its file; every pickle loads under ``weights_only=True``.

Folder layouts, first match wins: ``*.safetensors.index.json`` (prefer
``model.safetensors.index.json``) → its shards; ``model.safetensors``; any other
``*.safetensors``; ``pytorch_model.bin.index.json`` → its shards;
``pytorch_model.bin``; any other ``*.bin`` / ``*.pt`` / ``*.pth`` that is not
a trainer state file (optimizer, scheduler, RNG state, training args).

It leaves to others: the adapter's base (``resolution.py``), fingerprints
(``fingerprint.py``), reading tensors (``tensors.py``).

Cost: reads each JSON file and each safetensors header (a few KiB per shard);
pickle files are unpickled with mmap (the structure only; see ``pickles.py``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from afterburn_core.checkpoints.description import describe_adapter, describe_model
from afterburn_core.checkpoints.pickles import check_pickle_safe
from afterburn_core.errors import BadCheckpoint, CheckpointNotFound
from afterburn_core.types import AdapterDescription, ModelDescription

PICKLE_EXTENSIONS = (".bin", ".pt", ".pth")
#: Files a ``transformers.Trainer`` checkpoint folder holds next to the weights; never weights.
TRAINER_STATE_FILES = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt"})
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
#: safetensors caps its JSON header at 100 MB (safetensors' MAX_HEADER_SIZE); a larger
#: length field means the file is not safetensors at all.
MAX_SAFETENSORS_HEADER = 100_000_000


@dataclass(frozen=True)
class LocalLayout:
    """The files of one checkpoint found on disk, and what its config says (empty without one)."""

    kind: str
    root: Path
    weight_files: tuple[Path, ...]
    weight_format: str
    config_path: Path | None
    description: ModelDescription = ModelDescription()
    adapter: AdapterDescription | None = None


def read_json_object(path: Path, what: str) -> dict:
    """Parse ``path`` as a JSON object or raise ``BadCheckpoint`` naming it."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BadCheckpoint(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"fix or re-download the {what}."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadCheckpoint(f"{path} cannot be read ({type(error).__name__}); check its permissions.") from None
    if not isinstance(value, dict):
        raise BadCheckpoint(
            f"{path} holds a JSON {type(value).__name__}, not an object; fix or re-download the {what}."
        )
    return value


def read_safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file, checked against the file's size (no tensor data read)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ValueError("shorter than the 8-byte header length")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > min(MAX_SAFETENSORS_HEADER, size - 8):
                raise ValueError(f"header length {header_length} does not fit a {size}-byte file")
            header = json.loads(handle.read(header_length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        data_size = size - 8 - header_length
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end = entry["data_offsets"]
            if not 0 <= start <= end <= data_size:
                raise ValueError(f"tensor {name!r} lies past the end of the file (truncated download?)")
    except FileNotFoundError:
        raise CheckpointNotFound(f"no file at {path}; check the path.") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise BadCheckpoint(f"{path} is not a valid safetensors file ({error}); re-download or re-save it.") from None
    return header


def _shards_from_index(index_path: Path) -> tuple[Path, ...]:
    index = read_json_object(index_path, "shard index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise BadCheckpoint(f"{index_path} has no 'weight_map' of tensor names to shard files; re-download it.")
    folder = index_path.parent
    shards = sorted({str(name) for name in weight_map.values()})
    for shard in shards:
        if not (folder / shard).is_file():
            raise BadCheckpoint(
                f"shard {shard} listed in {index_path.name} is missing from {folder}; "
                "re-download the checkpoint or copy the missing shard."
            )
    return tuple(folder / shard for shard in shards)


def _is_trainer_state(path: Path) -> bool:
    return path.name in TRAINER_STATE_FILES or path.name.startswith("rng_state")


def _find_weights(folder: Path) -> tuple[tuple[Path, ...], str]:
    safetensors_indexes = sorted(folder.glob("*.safetensors.index.json"))
    if safetensors_indexes:
        preferred = folder / "model.safetensors.index.json"
        index_path = preferred if preferred in safetensors_indexes else safetensors_indexes[0]
        return _shards_from_index(index_path), "safetensors"
    if (folder / "model.safetensors").is_file():
        return (folder / "model.safetensors",), "safetensors"
    loose_safetensors = sorted(path for path in folder.glob("*.safetensors") if path.is_file())
    if loose_safetensors:
        return tuple(loose_safetensors), "safetensors"
    if (folder / "pytorch_model.bin.index.json").is_file():
        return _shards_from_index(folder / "pytorch_model.bin.index.json"), "pickle"
    if (folder / "pytorch_model.bin").is_file():
        return (folder / "pytorch_model.bin",), "pickle"
    loose_pickles = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix in PICKLE_EXTENSIONS and not _is_trainer_state(path)
    )
    return tuple(loose_pickles), "pickle"


def _check_weight_files(weight_files: tuple[Path, ...], weight_format: str) -> None:
    for weight_file in weight_files:
        if weight_format == "safetensors":
            read_safetensors_header(weight_file)
        else:
            check_pickle_safe(weight_file)


def _inspect_adapter(folder: Path) -> LocalLayout:
    config_path = folder / "adapter_config.json"
    adapter = describe_adapter(read_json_object(config_path, "adapter config"), config_path)
    for name in ADAPTER_WEIGHT_FILES:
        if (folder / name).is_file():
            weight_files = (folder / name,)
            weight_format = "safetensors" if name.endswith(".safetensors") else "pickle"
            _check_weight_files(weight_files, weight_format)
            return LocalLayout("adapter", folder, weight_files, weight_format, config_path, adapter=adapter)
    raise BadCheckpoint(
        f"adapter folder {folder} has adapter_config.json but no adapter_model.safetensors or "
        "adapter_model.bin; save the adapter again with save_pretrained."
    )


def _inspect_folder(folder: Path) -> LocalLayout:
    if (folder / "adapter_config.json").is_file():
        return _inspect_adapter(folder)
    weight_files, weight_format = _find_weights(folder)
    if not weight_files:
        nested = sorted(
            child.name for child in folder.iterdir() if child.is_dir() and (child / "config.json").is_file()
        )
        hint = f"; it holds checkpoint folders ({', '.join(nested[:5])}): point at one of them" if nested else (
            "; point at the folder that holds model.safetensors or pytorch_model.bin"
        )
        raise BadCheckpoint(f"no weight files (*.safetensors, *.bin, *.pt) in {folder}{hint}.")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise BadCheckpoint(
            f"{folder} has weights but no config.json; copy the config.json of the model these weights come from."
        )
    description = describe_model(read_json_object(config_path, "model config"))
    _check_weight_files(weight_files, weight_format)
    return LocalLayout("local_dir", folder, weight_files, weight_format, config_path, description)


def _inspect_file(path: Path) -> LocalLayout:
    root = path.parent
    sibling_config = root / "config.json"
    config_path = sibling_config if sibling_config.is_file() else None
    name = path.name.lower()
    if name.endswith(".safetensors"):
        kind, weight_format = "safetensors_file", "safetensors"
    elif name.endswith(PICKLE_EXTENSIONS):
        kind, weight_format = "pickle_file", "pickle"
    elif name.endswith(".json"):
        raise BadCheckpoint(f"{path} is a JSON file, not weights; point at its folder {root} instead.")
    else:
        raise BadCheckpoint(
            f"{path} is not a checkpoint file; give a .safetensors, .bin, .pt or .pth file or a folder."
        )
    description = ModelDescription()
    if config_path is not None:
        description = describe_model(read_json_object(config_path, "model config"))
    _check_weight_files((path,), weight_format)
    return LocalLayout(kind, root, (path,), weight_format, config_path, description)


def inspect_path(path: Path) -> LocalLayout:
    """The checkpoint at ``path`` (absolute), checked; see the module docstring for the layouts."""
    path = Path(path)
    if path.is_dir():
        return _inspect_folder(path)
    if path.is_file():
        return _inspect_file(path)
    if path.exists():
        raise BadCheckpoint(f"{path} is neither a regular file nor a folder; give a checkpoint file or folder.")
    raise CheckpointNotFound(
        f"no folder or file at {path}; check the path (a Hugging Face model is written owner/name)."
    )
