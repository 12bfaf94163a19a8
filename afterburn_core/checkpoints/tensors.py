"""The tensors of a checkpoint: listed from headers, read one at a time.

Contract: ``open_tensor_index(ckpt)`` returns a ``TensorIndex`` (a context
manager) that lists every tensor as ``TensorEntry(name, shape, dtype, stored_name)`` and
reads any one with ``load(name)``. Names are normalized by
``normalize_tensor_name`` (a leading ``base_model.model.`` then a leading
``model.`` removed) so a checkpoint saved with the prefix pairs up with one
saved without it, and an adapter's factors line up with its base's tensors.
``load`` accepts the normalized or the original name. dtypes are torch-style
names (``float32``, ``bfloat16``, ``float8_e4m3fn``) for safetensors and pickle
alike. A GGUF file (``gguf.py``) lists its tensors under the Hugging Face names
they map to, with the GGUF name as the stored one, quantized ones by their ggml
type (``Q4_K``); ``load`` returns them dequantized to fp32 in the HF layout. Entries come file by file in on-disk order, so reading them in that
order streams each shard front to back.

It leaves to others: pairing two indexes, metrics, what a tensor means
(``weights/``); which files to open (``resolve``).

Building an index checks the headers (``headers.py``) and the tensor count and
memory bounds (``budget.py``) again, since the files may have changed since
resolution.

Cost: safetensors — building the index reads each file's JSON header only; GGUF —
its header, and ``load`` dequantizes only the blocks of the rows asked for;
``load`` reads one tensor (or a row slice of it) through ``safe_open``, mapping the file for
that read only. Pickle — the
index unpickles each file once with ``weights_only=True`` and mmap (structure
only) and keeps no tensor; ``load`` keeps the last file it opened mapped, so
reading a shard's tensors in order unpickles it once (a legacy non-zip pickle
is held in memory while it is the open one). Never a whole model in memory.
"""

from __future__ import annotations

from pathlib import Path

from afterburn_core.checkpoints.budget import TensorBudget
from afterburn_core.checkpoints.gguf import GgufTensors
from afterburn_core.checkpoints.headers import read_safetensors_header
from afterburn_core.checkpoints.pickles import load_pickle_state_dict
from afterburn_core.errors import BadCheckpoint
from afterburn_core.limits import quoted
from afterburn_core.types import ResolvedCheckpoint, TensorEntry

#: Prefixes removed, in this order, by ``normalize_tensor_name``: peft wraps the model in
#: ``base_model.model.``; ``*ForCausalLM`` keeps the trunk under ``model.`` while a bare
#: ``*Model`` saves it at the top level.
NAME_PREFIXES = ("base_model.model.", "model.")


def normalize_tensor_name(name: str) -> str:
    """``model.layers.0.mlp.up_proj.weight`` → ``layers.0.mlp.up_proj.weight`` (each prefix at most once)."""
    for prefix in NAME_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def torch_dtype_name(dtype: object) -> str:
    """``torch.bfloat16`` → ``bfloat16`` (safetensors codes are named by ``headers.py``)."""
    return str(dtype).removeprefix("torch.")


class TensorIndex:
    """Every tensor of one checkpoint, by normalized name; see the module docstring."""

    def __init__(self, checkpoint: ResolvedCheckpoint):
        self.checkpoint = checkpoint
        self._entries: dict[str, TensorEntry] = {}
        self._location: dict[str, tuple[Path, str]] = {}
        self._raw_to_name: dict[str, str] = {}
        self._nbytes: dict[str, int] = {}
        self._open_pickle: tuple[Path, dict] | None = None
        self._gguf: dict[Path, GgufTensors] = {}
        budget = TensorBudget(Path(checkpoint.root), len(checkpoint.weight_files))
        for weight_file in (Path(path) for path in checkpoint.weight_files):
            if checkpoint.weight_format == "safetensors":
                self._add_safetensors(weight_file, budget)
            elif checkpoint.weight_format == "gguf":
                self._add_gguf(weight_file, budget)
            else:
                self._add_pickle(weight_file, budget)

    # -- building -----------------------------------------------------------------------------
    def _add(
        self, weight_file: Path, raw_name: str, shape: tuple[int, ...], dtype: str, nbytes: int, key: str | None = None
    ) -> None:
        """Record one tensor under the normalized ``key`` (default: its own ``raw_name``)."""
        name = normalize_tensor_name(key if key is not None else raw_name)
        if name in self._entries:
            other_file, other_raw = self._location[name]
            raise BadCheckpoint(
                f"tensor {quoted(raw_name)} in {weight_file} and {quoted(other_raw)} in {other_file} both stand for "
                f"{quoted(name)}; "
                "remove the duplicate or re-save the checkpoint."
            )
        self._entries[name] = TensorEntry(name=name, shape=shape, dtype=dtype, stored_name=raw_name)
        self._location[name] = (weight_file, raw_name)
        self._raw_to_name[raw_name] = name
        self._nbytes[name] = nbytes

    def _add_safetensors(self, weight_file: Path, budget: TensorBudget) -> None:
        header = read_safetensors_header(weight_file)
        budget.add(weight_file, ((entry.raw_name, entry.shape) for entry in header))
        for entry in header:
            self._add(weight_file, entry.raw_name, entry.shape, entry.dtype, entry.end - entry.start)

    def _add_gguf(self, weight_file: Path, budget: TensorBudget) -> None:
        # Keyed by the HF name the GGUF name maps to (gguf.py), so a GGUF pairs with its safetensors source.
        tensors = self._gguf[weight_file] = GgufTensors(weight_file)
        budget.add(weight_file, ((tensor.name, tensor.shape) for tensor in tensors.header.tensors))
        for gguf_name, hf_name, shape, dtype, nbytes in tensors.entries():
            self._add(weight_file, gguf_name, shape, dtype, nbytes, key=hf_name)

    def _add_pickle(self, weight_file: Path, budget: TensorBudget) -> None:
        tensors = load_pickle_state_dict(weight_file)
        budget.add(weight_file, ((name, tuple(tensor.shape)) for name, tensor in tensors.items()))
        for raw_name, tensor in tensors.items():
            nbytes = tensor.numel() * tensor.element_size()
            self._add(weight_file, raw_name, tuple(tensor.shape), torch_dtype_name(tensor.dtype), nbytes)

    # -- reading ------------------------------------------------------------------------------
    def entries(self) -> list[TensorEntry]:
        """Every tensor, file by file in on-disk order."""
        return list(self._entries.values())

    def names(self) -> list[str]:
        """Normalized names, in the order of ``entries()``."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._raw_to_name)

    def _name(self, name: str) -> str:
        if name in self._entries:
            return name
        if name in self._raw_to_name:
            return self._raw_to_name[name]
        raise KeyError(f"{self.checkpoint.reference} has no tensor {name!r}")

    def entry(self, name: str) -> TensorEntry:
        """The entry of a tensor by normalized or original name."""
        return self._entries[self._name(name)]

    def source(self, name: str) -> tuple[str, str]:
        """``(weight file, name as stored in it)`` of a tensor."""
        weight_file, raw_name = self._location[self._name(name)]
        return str(weight_file), raw_name

    def nbytes(self, name: str) -> int:
        """Bytes the tensor's data takes on disk."""
        return self._nbytes[self._name(name)]

    @property
    def num_parameters(self) -> int:
        """Total elements over all tensors."""
        total = 0
        for entry in self._entries.values():
            count = 1
            for size in entry.shape:
                count *= size
            total += count
        return total

    @property
    def size_bytes(self) -> int:
        """Total bytes of tensor data (headers and pickle structure excluded)."""
        return sum(self._nbytes.values())

    @property
    def parameters_by_dtype(self) -> dict[str, int]:
        """Elements per dtype name, sorted by dtype."""
        counts: dict[str, int] = {}
        for entry in self._entries.values():
            count = 1
            for size in entry.shape:
                count *= size
            counts[entry.dtype] = counts.get(entry.dtype, 0) + count
        return dict(sorted(counts.items()))

    def load(self, name: str, rows: tuple[int, int] | None = None):
        """One tensor (``torch.Tensor`` on CPU) read from disk now; ``rows=(start, stop)`` reads
        only that slice of its leading dimension (safetensors: only those bytes)."""
        weight_file, raw_name = self._location[self._name(name)]
        if self.checkpoint.weight_format == "safetensors":
            return self._load_safetensors(weight_file, raw_name, rows)
        if self.checkpoint.weight_format == "gguf":
            return self._gguf[weight_file].load(raw_name, rows)
        if self._open_pickle is None or self._open_pickle[0] != weight_file:
            self._open_pickle = None  # drop the previous file's mapping before opening the next
            self._open_pickle = (weight_file, load_pickle_state_dict(weight_file))
        tensor = self._open_pickle[1][raw_name]
        return tensor if rows is None else tensor[rows[0] : rows[1]]

    @staticmethod
    def _load_safetensors(weight_file: Path, raw_name: str, rows: tuple[int, int] | None):
        # The file is mapped for this one read and unmapped after it: a handle kept open would
        # leave every page read so far resident and counted in RSS, so peak RSS would grow with
        # the model instead of staying at the largest tensor pair. Re-reading the JSON header
        # per call costs well under a millisecond.
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(weight_file), framework="pt", device="cpu") as handle:
                if rows is None:
                    return handle.get_tensor(raw_name)
                return handle.get_slice(raw_name)[rows[0] : rows[1]]
        except (SafetensorError, OSError) as error:
            raise BadCheckpoint(
                f"tensor {quoted(raw_name)} of {weight_file} cannot be read ({error}); re-download the checkpoint."
            ) from None

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release every open file and mapping."""
        self._open_pickle = None

    def __enter__(self) -> TensorIndex:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_tensor_index(checkpoint: ResolvedCheckpoint) -> TensorIndex:
    """A ``TensorIndex`` over ``checkpoint``; use it in a ``with`` block to release files."""
    return TensorIndex(checkpoint)
