"""Turn a file or folder on this disk into the list of files that make up a checkpoint.

Contract: ``inspect_path(path)`` returns a ``LocalLayout`` — kind, root, sorted
absolute weight files, weight format, config path, the ``ModelDescription`` of
its ``config.json`` (``description.py``), and for a peft adapter the
``AdapterDescription`` of its ``adapter_config.json`` — or raises ``CheckpointNotFound`` /
``BadCheckpoint`` / ``UnsafeCheckpoint`` with a one-line message naming the
file and the fix. What it checks, so a broken checkpoint fails here and not
half-way through an analysis: ``config.json`` / ``adapter_config.json`` parse
as JSON objects (nesting bounded by ``limits.load_json``); every shard an index
names is a file inside the model's folder — absolute names, ``..`` and symlinks
that lead out are refused before the file is touched, with a message that says
nothing about what lies outside — and exists; every safetensors header passes
``headers.py``'s checks; every pickle loads under ``weights_only=True``; the
tensors keep ``budget.TensorBudget``'s count and memory bounds.

Folder layouts, first match wins: ``*.safetensors.index.json`` (prefer
``model.safetensors.index.json``) → its shards; ``model.safetensors``; any other
``*.safetensors``; ``pytorch_model.bin.index.json`` → its shards;
``pytorch_model.bin``; any other ``*.bin`` / ``*.pt`` / ``*.pth`` that is not
a trainer state file (optimizer, scheduler, RNG state, training args); one
``*.gguf`` file. A GGUF checkpoint (a ``.gguf`` file, or a folder holding one)
needs no config.json: its description comes from its own metadata
(``gguf.describe_gguf``) and its header is checked by ``gguf.read_gguf_header``.

Quantized safetensors whose weights are packed integers (GPTQ, AWQ,
bitsandbytes, …: ``quantization_config.quant_method`` in config.json, or tensor
names such as ``qweight`` / ``qzeros`` / ``absmax``) are refused in one line
naming the format: a diff of packed integers against floats would be wrong.

It leaves to others: the adapter's base (``resolution.py``), fingerprints
(``fingerprint.py``), reading tensors (``tensors.py``).

Cost: reads each JSON file and each safetensors header (a few KiB per shard);
pickle files are unpickled with mmap (the structure only; see ``pickles.py``);
a GGUF file's header is parsed twice (the bounded check, then transformers'
config reader: about a second for a 150 k-token vocabulary).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePath

from afterburn_core.checkpoints.budget import TensorBudget
from afterburn_core.checkpoints.description import describe_adapter, describe_model
from afterburn_core.checkpoints.gguf import describe_gguf, read_gguf_header
from afterburn_core.checkpoints.headers import read_safetensors_header
from afterburn_core.checkpoints.pickles import load_pickle_state_dict
from afterburn_core.errors import BadCheckpoint, CheckpointNotFound
from afterburn_core.limits import MAX_TENSORS, load_json, quoted
from afterburn_core.types import AdapterDescription, ModelDescription

PICKLE_EXTENSIONS = (".bin", ".pt", ".pth")
#: Files a ``transformers.Trainer`` checkpoint folder holds next to the weights; never weights.
TRAINER_STATE_FILES = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt"})
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
GGUF_EXTENSION = ".gguf"
#: transformers' ``quant_method`` names (``QuantizationMethod``) of formats that store weights as
#: packed integers plus scales: no tensor of theirs is the weight itself.
PACKED_QUANT_METHODS = {
    "gptq": "GPTQ", "awq": "AWQ", "bitsandbytes": "bitsandbytes", "aqlm": "AQLM", "hqq": "HQQ",
    "eetq": "EETQ", "vptq": "VPTQ", "higgs": "HIGGS", "spqr": "SpQR", "exl2": "EXL2",
}
#: The last component of tensor names each packed format writes next to (or instead of) ``weight``:
#: AutoGPTQ / GPTQModel (``qweight``, ``qzeros``, ``scales``, ``g_idx``), AutoAWQ (the same without
#: ``g_idx``), bitsandbytes 4-bit (``absmax``, ``quant_map``, ``quant_state.*``) and 8-bit (``SCB``).
PACKED_TENSOR_MARKERS = (
    ("g_idx", "GPTQ"), ("qweight", "GPTQ or AWQ"), ("qzeros", "GPTQ or AWQ"),
    ("absmax", "bitsandbytes"), ("quant_map", "bitsandbytes"), ("SCB", "bitsandbytes"),
)


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
        value = load_json(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BadCheckpoint(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"fix or re-download the {what}."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadCheckpoint(f"{path} cannot be read ({type(error).__name__}); check its permissions.") from None
    except ValueError as error:  # limits.JsonTooDeep, or an integer past Python's digit limit
        raise BadCheckpoint(f"{path} is not JSON afterburn reads ({error}); fix or re-download the {what}.") from None
    if not isinstance(value, dict):
        raise BadCheckpoint(
            f"{path} holds a JSON {type(value).__name__}, not an object; fix or re-download the {what}."
        )
    return value


def _contained_in(folder: Path):
    """A test of whether a path stays in ``folder`` once symlinks are followed.

    A Hugging Face cache snapshot (``<repo>/snapshots/<sha>/``) holds only symlinks into
    ``<repo>/blobs/``, which huggingface_hub made; those stay in the model's folder too.
    """
    roots = [Path(os.path.realpath(folder))]
    if folder.parent.name == "snapshots":
        roots.append(Path(os.path.realpath(folder.parent.parent / "blobs")))
    return lambda path: any(Path(os.path.realpath(path)).is_relative_to(root) for root in roots)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the filesystem refuses (too long: ENAMETOOLONG)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _shards_from_index(index_path: Path) -> tuple[Path, ...]:
    index = read_json_object(index_path, "shard index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise BadCheckpoint(f"{index_path} has no 'weight_map' of tensor names to shard files; re-download it.")
    if len(weight_map) > MAX_TENSORS:
        raise BadCheckpoint(
            f"{index_path} lists {len(weight_map):,} tensors, over the limit of {MAX_TENSORS:,} "
            "(limits.MAX_TENSORS); no real checkpoint holds that many: re-download or re-save it."
        )
    folder = index_path.parent
    if not all(isinstance(name, str) for name in weight_map.values()):
        raise BadCheckpoint(f"{index_path} maps a tensor to something that is not a file name; re-download it.")
    shards = sorted(set(weight_map.values()))
    inside = _contained_in(folder)
    for shard in shards:
        # Judged before the file is touched, and the message says nothing of what lies outside.
        parts = PurePath(shard).parts
        if not parts or "\0" in shard or PurePath(shard).is_absolute() or ".." in parts or not inside(folder / shard):
            raise BadCheckpoint(
                f"shard {quoted(shard)} listed in {index_path.name} is not a file inside {folder}; "
                "an index may only name files of its own folder: re-download the checkpoint."
            )
        if not _is_file(folder / shard):
            raise BadCheckpoint(
                f"shard {shard} listed in {index_path.name} is missing from {folder}; "
                "re-download the checkpoint or copy the missing shard."
            )
    return tuple(folder / shard for shard in shards)


def _is_trainer_state(path: Path) -> bool:
    return path.name in TRAINER_STATE_FILES or path.name.startswith("rng_state")


def _find_gguf(folder: Path) -> tuple[Path, ...]:
    ggufs = sorted(path for path in folder.glob(f"*{GGUF_EXTENSION}") if path.is_file())
    if len(ggufs) > 1:
        names = ", ".join(path.name for path in ggufs[:5])
        raise BadCheckpoint(
            f"{folder} holds {len(ggufs)} GGUF files ({names}{', …' if len(ggufs) > 5 else ''}); "
            "point at the one to compare (split GGUFs: merge them first with llama-gguf-split --merge)."
        )
    return tuple(ggufs)


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
    if loose_pickles:
        return tuple(loose_pickles), "pickle"
    return _find_gguf(folder), "gguf"


def _refuse_packed_config(config: dict, config_path: Path) -> None:
    """A config.json whose ``quantization_config`` names a packed-integer format is one line."""
    quantization = config.get("quantization_config")
    method = quantization.get("quant_method") if isinstance(quantization, dict) else None
    if isinstance(method, str) and method.lower() in PACKED_QUANT_METHODS:
        raise _packed(config_path.parent, PACKED_QUANT_METHODS[method.lower()], f"{config_path.name} quantization_config.quant_method {quoted(method)}")


def _refuse_packed_tensors(weight_file: Path, names) -> None:
    """A safetensors file holding a packed format's tensors (``PACKED_TENSOR_MARKERS``) is one line."""
    markers = dict(PACKED_TENSOR_MARKERS)
    for name in names:
        format_name = "bitsandbytes" if ".quant_state." in name else markers.get(name.rsplit(".", 1)[-1])
        if format_name is not None:
            raise _packed(weight_file, format_name, f"tensor {quoted(name)}")


def _packed(where: Path, format_name: str, evidence: str) -> BadCheckpoint:
    return BadCheckpoint(
        f"{where} holds {format_name}-quantized weights ({evidence}): packed integers that cannot be diffed as "
        "weights; compare the unquantized model, or a GGUF of it."
    )


def _check_weight_files(root: Path, weight_files: tuple[Path, ...], weight_format: str) -> None:
    """Every header checked and every pickle loaded safely, within the tensor budget."""
    budget = TensorBudget(root, len(weight_files))
    for weight_file in weight_files:
        if weight_format == "safetensors":
            header = read_safetensors_header(weight_file)
            _refuse_packed_tensors(weight_file, (entry.raw_name for entry in header))
            budget.add(weight_file, ((entry.raw_name, entry.shape) for entry in header))
        elif weight_format == "gguf":
            budget.add(weight_file, ((tensor.name, tensor.shape) for tensor in read_gguf_header(weight_file).tensors))
        else:
            tensors = load_pickle_state_dict(weight_file)
            budget.add(weight_file, ((name, tuple(tensor.shape)) for name, tensor in tensors.items()))


def _inspect_adapter(folder: Path) -> LocalLayout:
    config_path = folder / "adapter_config.json"
    adapter = describe_adapter(read_json_object(config_path, "adapter config"), config_path)
    for name in ADAPTER_WEIGHT_FILES:
        if (folder / name).is_file():
            weight_files = (folder / name,)
            weight_format = "safetensors" if name.endswith(".safetensors") else "pickle"
            _check_weight_files(folder, weight_files, weight_format)
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
        raise BadCheckpoint(f"no weight files (*.safetensors, *.bin, *.pt, *.gguf) in {folder}{hint}.")
    if weight_format == "gguf":
        return _inspect_gguf(folder, weight_files[0], "local_dir")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise BadCheckpoint(
            f"{folder} has weights but no config.json; copy the config.json of the model these weights come from."
        )
    config = read_json_object(config_path, "model config")
    _refuse_packed_config(config, config_path)
    description = describe_model(config)
    _check_weight_files(folder, weight_files, weight_format)
    return LocalLayout("local_dir", folder, weight_files, weight_format, config_path, description)


def _inspect_gguf(root: Path, path: Path, kind: str) -> LocalLayout:
    """A GGUF file: header checked within the tensor budget, description from its own metadata."""
    _check_weight_files(root, (path,), "gguf")
    return LocalLayout(kind, root, (path,), "gguf", None, describe_gguf(path))


def _inspect_file(path: Path) -> LocalLayout:
    root = path.parent
    sibling_config = root / "config.json"
    config_path = sibling_config if sibling_config.is_file() else None
    name = path.name.lower()
    if name.endswith(GGUF_EXTENSION):
        return _inspect_gguf(root, path, "gguf_file")
    if name.endswith(".safetensors"):
        kind, weight_format = "safetensors_file", "safetensors"
    elif name.endswith(PICKLE_EXTENSIONS):
        kind, weight_format = "pickle_file", "pickle"
    elif name.endswith(".json"):
        raise BadCheckpoint(f"{path} is a JSON file, not weights; point at its folder {root} instead.")
    else:
        raise BadCheckpoint(
            f"{path} is not a checkpoint file; give a .safetensors, .bin, .pt, .pth or .gguf file or a folder."
        )
    description = ModelDescription()
    if config_path is not None:
        config = read_json_object(config_path, "model config")
        if weight_format == "safetensors":
            _refuse_packed_config(config, config_path)
        description = describe_model(config)
    _check_weight_files(root, (path,), weight_format)
    return LocalLayout(kind, root, (path,), weight_format, config_path, description)


def inspect_path(path: Path) -> LocalLayout:
    """The checkpoint at ``path`` (absolute), checked; see the module docstring for the layouts."""
    path = Path(path)
    try:
        is_dir, is_file, exists = path.is_dir(), path.is_file(), path.exists()
    except OSError as error:  # a name too long for the filesystem, a permission denied on the way
        raise CheckpointNotFound(f"{path} cannot be looked up ({error.strerror}); check the path.") from None
    if is_dir:
        return _inspect_folder(path)
    if is_file:
        return _inspect_file(path)
    if exists:
        raise BadCheckpoint(f"{path} is neither a regular file nor a folder; give a checkpoint file or folder.")
    raise CheckpointNotFound(
        f"no folder or file at {path}; check the path (a Hugging Face model is written owner/name)."
    )
