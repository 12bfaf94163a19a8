"""Load one resolved checkpoint as a model + tokenizer ready to generate or score.

Contract: ``load_model(checkpoint, device, *, trust_remote_code=False) -> LoadedModel``.
The model is in eval mode on ``device``, in this dtype (``model_dtype``):

- CPU and MPS: fp32 (the CPU has no fast half matmul; MPS bf16 support varies by macOS);
- CUDA: the checkpoint's own dtype from ``config.json`` (``dtype`` / ``torch_dtype``,
  as resolution read it into ``checkpoint.description.torch_dtype``) when it is
  fp32, fp16 or bf16, else bf16.

The tokenizer comes from the checkpoint's folder; an adapter uses its own folder
when it holds tokenizer files, else its base's. A peft adapter is applied to ONE
loaded base: ``with loaded.adapter_disabled():`` runs the base model itself, so
base and trained outputs of a LoRA pair come from one model in memory.

Safety: ``trust_remote_code`` is passed explicitly (default False). Pickle
weights (``.bin`` / ``.pt``) are only ever read by ``checkpoints.pickles`` (the
project's one ``torch.load`` door, ``weights_only=True``; a hostile file is
``UnsafeCheckpoint`` and none of its code runs) and handed to ``from_pretrained``
as a state dict; a folder's safetensors load with ``use_safetensors=True``. peft
reads an ``adapter_model.bin`` with ``weights_only=True`` (``peft.utils.torch_load``).

A GGUF checkpoint loads through transformers' own GGUF support
(``from_pretrained(folder, gguf_file=…)``): config and tokenizer from the file's
metadata, every tensor dequantized to torch in the dtype above (``GgufConfig(dequantize=True)``
where transformers can instead keep blocks packed: scores must come from the
dense dequantized weights, the same the weight diff reads).

The checkpoint's ``generation_config.json`` sampling defaults (temperature,
top-k, repetition penalty, …) are NOT used: generation settings come from
``GenerationSettings`` only, so "greedy" means greedy for every model. Only its
``eos_token_id`` (one or a list) is kept, merged with the tokenizer's EOS.

It leaves to others: resolving references (``checkpoints``), generating
(``generator``), scoring (``scorer``). Cost: one full read of the weights; the
model's memory (parameters × dtype size) until ``release()``.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from pathlib import Path

from afterburn_core.errors import BadCheckpoint, BadInput
from afterburn_core.types import ResolvedCheckpoint

#: Files whose presence means a folder carries its own tokenizer.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
#: Weight file name prefixes that ``from_pretrained`` finds by itself in a folder.
STANDARD_WEIGHT_PREFIXES = ("model.safetensors", "model-", "pytorch_model")
#: Half dtypes kept on CUDA as the checkpoint stores them.
_CUDA_KEPT_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(eq=False)
class LoadedModel:
    """A model on a device with its tokenizer; for an adapter, the base with the adapter attached.

    ``eos_token_ids`` is the union of the tokenizer's EOS and the checkpoint's
    ``generation_config.json`` EOS ids. ``pad_token_id`` is the tokenizer's pad,
    or its EOS when it has none.
    """

    checkpoint: ResolvedCheckpoint
    model: object
    tokenizer: object
    device: object
    dtype: object
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    is_adapter: bool = False
    _released: bool = field(default=False, repr=False)

    @contextlib.contextmanager
    def adapter_disabled(self):
        """Run the base model inside this block (the adapter is switched off, then back on)."""
        if not self.is_adapter:
            raise BadInput(
                f"{self.checkpoint.reference} is not a peft adapter, so it has no adapter to disable; "
                "load the base model itself instead."
            )
        with self.model.disable_adapter():
            yield self

    def release(self) -> None:
        """Drop the model and free its memory (CUDA cache included); the object is unusable after."""
        import torch

        self.model = None
        self._released = True
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def vocab_size(self) -> int:
        """Rows of the output head (may exceed ``len(tokenizer)``: padded vocabularies)."""
        return int(self.model.get_output_embeddings().weight.shape[0])


class HeldModel:
    """``with HeldModel(source) as loaded``: a ``LoadedModel`` given as it is, or a zero-argument loader called
    on entry; on exit releases only a model it loaded itself (so passes that hold one model at a time can take
    either a model the caller keeps or a loader)."""

    def __init__(self, source) -> None:
        self.source = source
        self.loaded = None

    def __enter__(self) -> LoadedModel:
        self.loaded = self.source() if callable(self.source) else self.source
        return self.loaded

    def __exit__(self, *exc) -> None:
        if callable(self.source) and self.loaded is not None:
            self.loaded.release()
        self.loaded = None


def model_dtype(stored_dtype: str | None, device):
    """The dtype this module loads in on ``device`` given the checkpoint's stored dtype name (see the module docstring)."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return torch.float32
    if stored_dtype in _CUDA_KEPT_DTYPES:
        return getattr(torch, stored_dtype)
    return torch.bfloat16


def _model_config_path(checkpoint: ResolvedCheckpoint) -> Path:
    if checkpoint.config_path is None:
        first = checkpoint.weight_files[0] if checkpoint.weight_files else checkpoint.root
        raise BadCheckpoint(
            f"{first} has no config.json beside it, so its architecture is unknown and it cannot generate; "
            "put the model's config.json (and tokenizer files) in the same folder."
        )
    return Path(checkpoint.config_path)


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _load_tokenizer(folder: Path, trust_remote_code: bool):
    from transformers import AutoTokenizer

    if not _has_tokenizer(folder):
        raise BadCheckpoint(
            f"{folder} holds no tokenizer ({', '.join(TOKENIZER_FILES)}); generation needs one — "
            "copy the tokenizer files of the model into that folder."
        )
    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise BadCheckpoint(f"the tokenizer in {folder} cannot be loaded: {str(error).splitlines()[0]}") from None


def _load_gguf_tokenizer(checkpoint: ResolvedCheckpoint):
    """The tokenizer a GGUF file carries in its metadata (llama.cpp's converter writes it)."""
    from transformers import AutoTokenizer

    gguf_path = Path(checkpoint.weight_files[0])
    try:
        return AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except (OSError, ValueError, KeyError) as error:
        raise BadCheckpoint(
            f"the tokenizer in the metadata of {gguf_path} cannot be loaded ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
            "convert the model again with llama.cpp's convert_hf_to_gguf.py, which writes it."
        ) from None


def _state_dict(checkpoint: ResolvedCheckpoint) -> dict:
    """All tensors of the weight files, read safely (safetensors, or pickles with weights_only)."""
    state_dict: dict = {}
    for weight_file in checkpoint.weight_files:
        if checkpoint.weight_format == "safetensors":
            from safetensors.torch import load_file

            state_dict.update(load_file(weight_file))
        else:
            from afterburn_core.checkpoints.pickles import load_pickle_state_dict

            state_dict.update(load_pickle_state_dict(Path(weight_file)))
    return state_dict


def _assign_weights(model, state_dict: dict, reference: str) -> None:
    """Copy ``state_dict`` into ``model``; a weight the model needs and the file lacks is an error
    (except an output head tied to the embedding, which ``tie_weights`` fills)."""
    result = model.load_state_dict(state_dict, strict=False)
    model.tie_weights()
    tied = set(getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or ())
    missing = [name for name in result.missing_keys if name not in tied]
    if missing:
        raise BadCheckpoint(
            f"{reference} lacks {len(missing)} weights its config.json needs (first: {missing[0]}); "
            "the weights and the config do not belong together."
        )


def _gguf_options(checkpoint: ResolvedCheckpoint) -> dict:
    """``from_pretrained`` arguments that read the checkpoint's GGUF file, dequantized to dense torch weights."""
    gguf_path = Path(checkpoint.weight_files[0])
    options = {"gguf_file": gguf_path.name}
    try:  # transformers ≥ 5 may keep GGUF blocks packed behind kernels; 4.x always dequantizes
        from transformers.utils.quantization_config import GgufConfig
    except ImportError:
        return options
    return {**options, "quantization_config": GgufConfig(dequantize=True)}


def _load_full_model(checkpoint: ResolvedCheckpoint, device, trust_remote_code: bool):
    from transformers import AutoConfig, AutoModelForCausalLM

    if checkpoint.weight_format == "gguf":
        return _load(
            checkpoint,
            lambda dtype: AutoModelForCausalLM.from_pretrained(
                str(Path(checkpoint.weight_files[0]).parent), dtype=dtype,
                trust_remote_code=trust_remote_code, **_gguf_options(checkpoint),
            ),
            device,
        )
    config_path = _model_config_path(checkpoint)
    # Pickles go through checkpoints.pickles, the project's one torch.load door (weights_only).
    standard = checkpoint.weight_format == "safetensors" and checkpoint.kind in ("local_dir", "hub") and all(
        Path(name).name.startswith(STANDARD_WEIGHT_PREFIXES) for name in checkpoint.weight_files
    )

    def build(dtype):
        if standard:
            return AutoModelForCausalLM.from_pretrained(
                checkpoint.root,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
            )
        config = AutoConfig.from_pretrained(str(config_path.parent), trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
        _assign_weights(model, _state_dict(checkpoint), checkpoint.reference)
        return model

    return _load(checkpoint, build, device)


def _load(checkpoint: ResolvedCheckpoint, build, device):
    """``build(dtype)`` in the dtype for ``device``, moved there in eval mode; its errors as one line."""
    dtype = model_dtype(checkpoint.description.torch_dtype, device)
    try:
        model = build(dtype)
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise BadInput(
                f"{checkpoint.reference} needs code shipped with the model to load; "
                "pass trust_remote_code=True (--trust-remote-code) only if you trust its authors."
            ) from None
        raise BadCheckpoint(f"{checkpoint.reference} cannot be loaded: {str(error).splitlines()[0]}") from None
    except OSError as error:
        raise BadCheckpoint(f"{checkpoint.reference} cannot be loaded: {str(error).splitlines()[0]}") from None
    return model.to(device).eval(), dtype


def _eos_ids(model, tokenizer) -> tuple[int, ...]:
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in configured if isinstance(configured, (list, tuple)) else [configured]:
        if value is not None and int(value) not in ids:
            ids.append(int(value))
    return tuple(ids)


def load_model(checkpoint: ResolvedCheckpoint, device, *, trust_remote_code: bool = False) -> LoadedModel:
    """Load ``checkpoint`` (a full model or a peft adapter on its base) on ``device`` for inference."""
    import torch
    from transformers.utils import logging as transformers_logging

    # transformers' own "Loading weights" bars would interleave with the run's progress bars.
    transformers_logging.disable_progress_bar()

    device = torch.device(device)
    if checkpoint.kind == "adapter":
        if checkpoint.adapter_base is None:
            raise BadCheckpoint(f"adapter {checkpoint.reference} was resolved without its base; resolve it again.")
        base_model, dtype = _load_full_model(checkpoint.adapter_base, device, trust_remote_code)
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(base_model, checkpoint.root, is_trainable=False).to(device).eval()
        except (ValueError, RuntimeError, OSError) as error:
            raise BadCheckpoint(
                f"adapter {checkpoint.reference} does not fit its base {checkpoint.adapter_base.reference}: "
                f"{str(error).splitlines()[0]}"
            ) from None
        folder = Path(checkpoint.root)
        tokenizer_folder = folder if _has_tokenizer(folder) else Path(checkpoint.adapter_base.root)
        is_adapter = True
    else:
        model, dtype = _load_full_model(checkpoint, device, trust_remote_code)
        tokenizer_folder, is_adapter = Path(checkpoint.root), False
    if checkpoint.weight_format == "gguf":
        tokenizer = _load_gguf_tokenizer(checkpoint)
    else:
        tokenizer = _load_tokenizer(tokenizer_folder, trust_remote_code)
    eos_ids = _eos_ids(model, tokenizer)
    if not eos_ids:
        raise BadCheckpoint(
            f"{checkpoint.reference} names no EOS token (tokenizer or generation_config.json), "
            "so generation could never stop early; set eos_token in tokenizer_config.json."
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    return LoadedModel(
        checkpoint=checkpoint,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        eos_token_ids=eos_ids,
        pad_token_id=int(pad_id),
        is_adapter=is_adapter,
    )
