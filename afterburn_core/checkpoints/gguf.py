"""GGUF checkpoints (llama.cpp's format): a bounded header read, tensors named and laid out as Hugging Face names them.

Contract:

- ``read_gguf_header(path) -> GgufHeader``: the file's architecture, block count
  and tensors (``GgufTensor``: GGUF name, shape in torch order, ggml type, file
  offset, bytes), or ``BadCheckpoint`` in one line. Before gguf's ``GGUFReader``
  parses anything, the fixed 24-byte preamble is checked (magic, version 2 or 3,
  tensor count ≤ ``limits.MAX_TENSORS``, metadata keys ≤ ``MAX_GGUF_METADATA_KEYS``);
  any parse failure of the rest (a truncated file, a length past its end) and any
  tensor whose data lies past the end, whose type gguf cannot dequantize, or whose
  rows are not whole blocks is the same one line with the name quoted
  (``limits.quoted``). Big-endian files are refused (the row reader reads little-endian).
- ``describe_gguf(path) -> ModelDescription``: the config transformers builds from
  the metadata (``AutoConfig.from_pretrained(folder, gguf_file=…)``, the same call
  generation makes), so inventory and descriptions need no config.json.
- ``GgufTensors(path)``: the HF-named view the weight diff reads. ``entries()``
  gives ``(gguf name, HF name, shape, dtype name, bytes)``; ``load(gguf name, rows)``
  dequantizes only the blocks of those rows (``gguf.quants.dequantize``) from a
  plain read of their bytes, so memory holds one row slice, never the model.

Naming and layout follow transformers' own GGUF loader
(``modeling_gguf_pytorch_utils``), so a GGUF side compares like with like with
the safetensors it was converted from: HF names are the state-dict keys of the
config's ``*ForCausalLM`` built on the meta device, each mapped to its GGUF name
by gguf's ``TensorNameMap`` for the file's architecture (``get_gguf_hf_weights_map``
does the same); GGUF tensors no HF parameter maps to (llama.cpp's ``rope_freqs``)
are left out. The transform applied on load is transformers' tensor processor for
the architecture: none, llama.cpp's q/k row permutation reversed
(``LlamaTensorProcessor``; done per whole head so row slices stay exact), or the
``+1`` of norms removed (``Gemma2TensorProcessor``). An architecture whose processor
rearranges tensors otherwise (fused, transposed or per-expert layouts) is one
``BadCheckpoint`` when its tensors are indexed: generation still reads it.

It leaves to others: finding the file (``local.py``), pairing and metrics
(``tensors.py``, ``weights/``). Cost: the header parse (a vocabulary of 150 k
tokens takes about a second), one transformers config and one meta-device model
(no weights) per file, cached while the file is unchanged; ``load`` reads only
the bytes of the rows asked for.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

from afterburn_core.errors import BadCheckpoint
from afterburn_core.limits import MAX_TENSORS, quoted
from afterburn_core.types import ModelDescription

GGUF_MAGIC = b"GGUF"
#: GGUF versions read: 2 and 3 count tensors and keys in 64 bits (v1, 32-bit, is gone from the
#: wild; gguf-py and transformers' reader take the same two).
GGUF_VERSIONS = (2, 3)
#: Metadata keys one GGUF file may hold. llama.cpp's converter writes 25-60 (hyperparameters,
#: tokenizer, chat template, quantization stats); 100 000 is far past any real file and stops a
#: hostile count before gguf's reader walks it.
MAX_GGUF_METADATA_KEYS = 100_000
#: ggml types held as plain values rather than blocks, by the torch dtype name they read as.
PLAIN_TYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


@dataclass(frozen=True)
class GgufTensor:
    """One tensor of a GGUF file: ``shape`` in torch order (ggml stores fastest dimension first)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    offset: int  # absolute, from the start of the file
    nbytes: int


@dataclass(frozen=True)
class GgufHeader:
    """What the header of a GGUF file says, checked."""

    path: Path
    architecture: str
    block_count: int | None
    tensors: tuple[GgufTensor, ...]


def _bad(path: Path, problem: str) -> BadCheckpoint:
    return BadCheckpoint(f"{path} is not a GGUF file afterburn reads ({problem}); re-download or re-convert it.")


def _check_preamble(path: Path) -> None:
    with open(path, "rb") as handle:
        preamble = handle.read(24)
    if len(preamble) < 24 or preamble[:4] != GGUF_MAGIC:
        raise _bad(path, "no GGUF magic and version at its start")
    version, tensor_count, key_count = struct.unpack("<IQQ", preamble[4:])
    if version not in GGUF_VERSIONS:
        raise _bad(path, f"GGUF version {version}, not one of {', '.join(map(str, GGUF_VERSIONS))}")
    if tensor_count > MAX_TENSORS:
        raise _bad(path, f"it declares {tensor_count:,} tensors, over the limit of {MAX_TENSORS:,} (limits.MAX_TENSORS)")
    if key_count > MAX_GGUF_METADATA_KEYS:
        raise _bad(
            path,
            f"it declares {key_count:,} metadata keys, over the limit of {MAX_GGUF_METADATA_KEYS:,} "
            "(checkpoints.gguf.MAX_GGUF_METADATA_KEYS)",
        )


def _field(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


@functools.cache
def _dequantizable(qtype) -> bool:
    """Whether the installed gguf dequantizes ``qtype`` (tried on one zero block)."""
    import gguf
    import numpy as np

    if qtype.name == "F64":
        return True  # plain doubles: read here, gguf-py only views F32 / F16
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    try:
        gguf.quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), qtype)
    except NotImplementedError:
        return False
    return True


def _tensor(reader_tensor, size: int) -> GgufTensor:
    import gguf

    name, qtype = reader_tensor.name, reader_tensor.tensor_type
    where = f"tensor {quoted(name)}"
    if not _dequantizable(qtype):
        raise ValueError(f"{where} is stored as ggml type {qtype.name}, which the installed gguf cannot dequantize")
    dims = tuple(int(size) for size in reversed(reader_tensor.shape.tolist()))
    block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
    if dims and dims[-1] % block_size:
        raise ValueError(f"{where} has rows of {dims[-1]} values, not whole {qtype.name} blocks of {block_size}")
    if reader_tensor.data_offset + reader_tensor.n_bytes > size:
        raise ValueError(f"{where} lies past the end of the file (truncated download?)")
    return GgufTensor(name, dims, qtype.name, int(reader_tensor.data_offset), int(reader_tensor.n_bytes))


def read_gguf_header(path: Path) -> GgufHeader:
    """The tensors and architecture of a GGUF file, checked (module docstring)."""
    from gguf import GGUFReader

    path = Path(path)
    try:
        _check_preamble(path)
        reader = GGUFReader(path)
        if reader.byte_order != "I":  # gguf-py's mark for a file in the other byte order than this machine's
            raise ValueError("its byte order is not this machine's; convert it again here")
        architecture = _field(reader, "general.architecture")
        if not isinstance(architecture, str):
            raise ValueError("it names no general.architecture")
        block_count = _field(reader, f"{architecture}.block_count")
        size = path.stat().st_size
        tensors = tuple(_tensor(tensor, size) for tensor in reader.tensors)
    except BadCheckpoint:
        raise
    except OSError as error:
        raise BadCheckpoint(f"{path} cannot be read ({type(error).__name__}); check its permissions.") from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as error:
        # gguf's reader says what broke in its own words (a truncated file: an index past the end).
        raise _bad(path, quoted(str(error).splitlines()[0] if str(error) else type(error).__name__)) from None
    del reader
    return GgufHeader(path, architecture, block_count if isinstance(block_count, int) else None, tensors)


# -- configuration and names, from transformers ---------------------------------------------------
def _transformers_config(path: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, KeyError, OSError, TypeError) as error:
        raise BadCheckpoint(
            f"{path}: transformers cannot build a model config from its GGUF metadata "
            f"({quoted(str(error).splitlines()[0] if str(error) else type(error).__name__)}); "
            "convert it with a current llama.cpp or diff the safetensors it came from."
        ) from None


def _causal_lm_class_name(model_type: str | None) -> str | None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type) if model_type else None


def describe_gguf(path: Path) -> ModelDescription:
    """The ``ModelDescription`` of a GGUF file, from the config transformers reads out of its metadata."""
    from afterburn_core.checkpoints.description import describe_model

    config = _transformers_config(Path(path)).to_dict()
    architecture = _causal_lm_class_name(config.get("model_type"))
    config["architectures"] = [architecture] if architecture else None
    config.pop("dtype", None)
    config.pop("torch_dtype", None)  # a GGUF mixes types per tensor; the file has no one dtype
    return describe_model(config)


@functools.lru_cache(maxsize=8)
def _hf_layout(path: str, size: int, mtime_ns: int) -> tuple[dict[str, str], str, int | None, int | None]:
    """``(GGUF name → HF name, transform, heads, kv heads)`` of one file as it is now (cached by size and mtime)."""
    import gguf
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        Gemma2TensorProcessor,
        LlamaTensorProcessor,
        TensorProcessor,
    )

    header = read_gguf_header(Path(path))
    processor = TENSOR_PROCESSORS.get(header.architecture, TensorProcessor)
    if issubclass(processor, LlamaTensorProcessor):
        transform = "llama_qk_permutation"
    elif issubclass(processor, Gemma2TensorProcessor):
        transform = "norm_minus_one"
    elif processor is TensorProcessor:
        transform = "none"
    else:
        raise BadCheckpoint(
            f"{path}: transformers rearranges the tensors of GGUF architecture {quoted(header.architecture)} on "
            f"load ({processor.__name__}), which the weight diff does not undo yet; generation and token KL "
            "read it, or diff the safetensors it was converted from."
        )
    arch = next((key for key, name in gguf.MODEL_ARCH_NAMES.items() if name == header.architecture), None)
    if arch is None:
        raise BadCheckpoint(
            f"{path}: GGUF architecture {quoted(header.architecture)} is unknown to the installed gguf package; "
            "upgrade gguf (pip install -U gguf)."
        )
    config = _transformers_config(Path(path))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    name_map = gguf.get_tensor_name_map(arch, header.block_count or config.num_hidden_layers)
    to_hf: dict[str, str] = {}
    for hf_name in model.state_dict():
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is not None:
            to_hf.setdefault(gguf_name, hf_name)
    heads = getattr(config, "num_attention_heads", None)
    return to_hf, transform, heads, getattr(config, "num_key_value_heads", None) or heads


def _reverse_llama_permutation(values, n_head: int):
    """Undo llama.cpp's ``permute`` on whole heads (rows ``[n_head × head_dim, …]``): transformers'
    ``LlamaTensorProcessor._reverse_permute_weights``."""
    rows = values.shape[0]
    return values.reshape(n_head, rows // n_head // 2, 2, *values.shape[1:]).swapaxes(2, 1).reshape(values.shape)


class GgufTensors:
    """The tensors of one GGUF file under their HF names (module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.header = read_gguf_header(self.path)
        stat = self.path.stat()
        self._to_hf, self._transform, self._heads, self._kv_heads = _hf_layout(
            str(self.path), stat.st_size, stat.st_mtime_ns
        )
        self._tensors = {tensor.name: tensor for tensor in self.header.tensors}
        if not any(name in self._to_hf for name in self._tensors):
            raise BadCheckpoint(
                f"{self.path}: none of its tensors has a Hugging Face name for architecture "
                f"{quoted(self.header.architecture)}; re-convert it with llama.cpp's convert_hf_to_gguf.py."
            )

    def entries(self) -> list[tuple[str, str, tuple[int, ...], str, int]]:
        """``(GGUF name, HF name, shape, dtype name, bytes)`` of every tensor an HF parameter maps to, file order."""
        return [
            (tensor.name, self._to_hf[tensor.name], tensor.shape,
             PLAIN_TYPE_NAMES.get(tensor.ggml_type, tensor.ggml_type), tensor.nbytes)
            for tensor in self.header.tensors
            if tensor.name in self._to_hf
        ]

    def _heads_of(self, name: str) -> int | None:
        """Heads the rows of ``name`` are permuted in by llama.cpp, None when they are not."""
        if self._transform != "llama_qk_permutation" or not name.endswith(".weight"):
            return None
        if ".attn_q." in name:
            return self._heads
        if ".attn_k." in name:
            return self._kv_heads
        return None

    def load(self, name: str, rows: tuple[int, int] | None = None):
        """Tensor ``name`` (GGUF name) in HF layout as fp32 ``torch.Tensor``; ``rows=(start, stop)``
        dequantizes only the blocks of those rows of its leading dimension."""
        import torch

        tensor = self._tensors[name]
        leading = tensor.shape[0] if tensor.shape else 1
        start, stop = rows if rows is not None else (0, leading)
        heads = self._heads_of(name)
        if len(tensor.shape) <= 1:  # a vector's "rows" are single values, not whole blocks: read it whole
            values = self._dequantized(tensor, 0, leading)
            values = values[start:stop] if tensor.shape else values
        elif heads:  # read whole heads, so the permutation is undone inside each one
            head_rows = leading // heads
            first, last = start // head_rows, -(-stop // head_rows)
            values = self._dequantized(tensor, first * head_rows, last * head_rows)
            values = _reverse_llama_permutation(values, last - first)
            values = values[start - first * head_rows : stop - first * head_rows]
        else:
            values = self._dequantized(tensor, start, stop)
        if self._transform == "norm_minus_one" and name.endswith("norm.weight"):
            values = values - 1.0
        return torch.from_numpy(values.copy())

    def _dequantized(self, tensor: GgufTensor, start: int, stop: int):
        import gguf
        import numpy as np

        qtype = gguf.GGMLQuantizationType[tensor.ggml_type]
        if len(tensor.shape) <= 1:  # one "row" of all values
            start, stop, row_bytes = 0, 1, tensor.nbytes
        else:
            row_bytes = tensor.nbytes // tensor.shape[0]
        try:
            with open(self.path, "rb") as handle:
                handle.seek(tensor.offset + start * row_bytes)
                raw = np.frombuffer(handle.read((stop - start) * row_bytes), dtype=np.uint8)
        except OSError as error:
            raise BadCheckpoint(
                f"tensor {quoted(tensor.name)} of {self.path} cannot be read ({type(error).__name__}); "
                "re-download the checkpoint."
            ) from None
        if raw.size != (stop - start) * row_bytes:
            raise BadCheckpoint(
                f"tensor {quoted(tensor.name)} of {self.path} ends past the end of the file (truncated since "
                "it was resolved?); re-download the checkpoint."
            )
        row_shape = (stop - start, *tensor.shape[1:]) if len(tensor.shape) > 1 else tuple(tensor.shape)
        if tensor.ggml_type == "F64":
            return raw.view(np.float64).astype(np.float32).reshape(row_shape)
        return np.asarray(gguf.quants.dequantize(raw.reshape(stop - start, -1), qtype), dtype=np.float32).reshape(row_shape)
