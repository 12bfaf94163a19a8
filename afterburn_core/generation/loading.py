"""Load one resolved checkpoint as a model + tokenizer ready to generate or score.

Contract: ``load_model(checkpoint, device, *, trust_remote_code=False, max_memory="") -> LoadedModel``.
The model is in eval mode on ``device`` — or, when it does not fit what ``device`` has free or
``max_memory`` bounds it, spread by accelerate over the devices, the CPU and disk (``placement``
decides from the config before any weight is read, and refuses in one line what cannot fit) —
in this dtype (``model_dtype``):

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

from afterburn_core.errors import BadCheckpoint, BadInput, ConfigError
from afterburn_core.generation.placement import (
    Placement,
    estimate_model_bytes,
    format_bytes,
    input_device,
    plan_placement,
)
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

    ``device`` is where its inputs go: the device asked for, or for a model spread by accelerate
    (``placement.spread``) the one it computes on. ``eos_token_ids`` is the union of the tokenizer's EOS and the checkpoint's
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
    placement: Placement | None = None
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
        if self.placement is not None:
            self.placement.release()
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


def _load_full_model(checkpoint: ResolvedCheckpoint, device, trust_remote_code: bool, max_memory: str,
                     extra_bytes: int = 0):
    """``(model, dtype, placement)`` of a full checkpoint; ``extra_bytes`` (an adapter's) count in its placement."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if checkpoint.weight_format == "gguf":
        gguf_path = Path(checkpoint.weight_files[0])
        return _load(
            checkpoint,
            lambda: AutoConfig.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name),
            lambda config, dtype, placement: AutoModelForCausalLM.from_pretrained(
                str(gguf_path.parent), dtype=dtype, trust_remote_code=trust_remote_code,
                **_gguf_options(checkpoint), **placement.from_pretrained_options(),
            ),
            device, trust_remote_code, max_memory, extra_bytes,
        )
    config_path = _model_config_path(checkpoint)
    # Pickles go through checkpoints.pickles, the project's one torch.load door (weights_only).
    standard = checkpoint.weight_format == "safetensors" and checkpoint.kind in ("local_dir", "hub") and all(
        Path(name).name.startswith(STANDARD_WEIGHT_PREFIXES) for name in checkpoint.weight_files
    )

    def build(config, dtype, placement):
        if standard:
            return AutoModelForCausalLM.from_pretrained(
                checkpoint.root,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
                **placement.from_pretrained_options(),
            )
        if placement.spread:
            raise ConfigError(
                f"{checkpoint.reference} must be spread over devices to fit ({format_bytes(placement.model_bytes)}), "
                f"and its weights ({Path(checkpoint.weight_files[0]).name}, …) can only be read whole; save it "
                "with save_pretrained (model-*.safetensors shards) so accelerate can place it shard by shard"
            )
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
        _assign_weights(model, _state_dict(checkpoint), checkpoint.reference)
        return model

    def read_config():
        return AutoConfig.from_pretrained(str(config_path.parent), trust_remote_code=trust_remote_code)

    return _load(checkpoint, read_config, build, device, trust_remote_code, max_memory, extra_bytes)


def _load(checkpoint: ResolvedCheckpoint, read_config, build, device, trust_remote_code: bool, max_memory: str,
          extra_bytes: int):
    """``build(config, dtype, placement)`` in the dtype for ``device``, placed by ``placement`` (planned from
    ``read_config()`` before any weight is read), in eval mode; its errors as one line."""
    dtype = model_dtype(checkpoint.description.torch_dtype, device)
    placement = None
    try:
        try:
            config = read_config()
            model_bytes = estimate_model_bytes(config, dtype, trust_remote_code=trust_remote_code) + extra_bytes
            placement = plan_placement(checkpoint.reference, model_bytes, dtype, device, max_memory)
            model = build(config, dtype, placement)
        except ValueError as error:
            if "trust_remote_code" in str(error):
                raise BadInput(
                    f"{checkpoint.reference} needs code shipped with the model to load; "
                    "pass trust_remote_code=True (--trust-remote-code) only if you trust its authors."
                ) from None
            raise BadCheckpoint(f"{checkpoint.reference} cannot be loaded: {str(error).splitlines()[0]}") from None
        except OSError as error:
            raise BadCheckpoint(f"{checkpoint.reference} cannot be loaded: {str(error).splitlines()[0]}") from None
    except BaseException:
        if placement is not None:
            placement.release()
        raise
    # A spread model is already where accelerate put it (its offloaded weights cannot move).
    return (model if placement.spread else model.to(device)).eval(), dtype, placement


def _eos_ids(generation_config, tokenizer) -> tuple[int, ...]:
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    for value in configured if isinstance(configured, (list, tuple)) else [configured]:
        if value is not None and int(value) not in ids:
            ids.append(int(value))
    return tuple(ids)


def _adapter_bytes(checkpoint: ResolvedCheckpoint, device) -> int:
    """Memory the adapter's own tensors take beside its base, in the base's load dtype."""
    from afterburn_core.checkpoints.tensors import open_tensor_index

    with open_tensor_index(checkpoint) as index:
        parameters = index.num_parameters
    return parameters * model_dtype(checkpoint.adapter_base.description.torch_dtype, device).itemsize


def _attach_adapter(checkpoint: ResolvedCheckpoint, base_model, device):
    """The peft adapter ``checkpoint`` on ``base_model``, moved to ``device`` (None: a spread base, whose
    adapter layers peft places beside the weights they adapt)."""
    from peft import PeftModel

    if device is None and any(parameter.is_meta for parameter in base_model.parameters()):
        # peft builds its layers from the base weights, which offloading leaves on the meta device
        # (peft 0.21: "Cannot copy out of meta tensor").
        raise ConfigError(
            f"adapter {checkpoint.reference} needs its base {checkpoint.adapter_base.reference} offloaded to "
            "cpu or disk to fit, and peft cannot attach an adapter to offloaded weights; merge it into its base "
            "(merge_and_unload, save_pretrained) and compare the merged model, or raise --max-memory on the GPUs"
        )
    try:
        model = PeftModel.from_pretrained(base_model, checkpoint.root, is_trainable=False)
    except (ValueError, RuntimeError, OSError) as error:
        raise BadCheckpoint(
            f"adapter {checkpoint.reference} does not fit its base {checkpoint.adapter_base.reference}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    return (model if device is None else model.to(device)).eval()


def load_model(checkpoint: ResolvedCheckpoint, device, *, trust_remote_code: bool = False,
               max_memory: str = "") -> LoadedModel:
    """Load ``checkpoint`` (a full model or a peft adapter on its base) on ``device`` for inference; past what
    ``device`` holds, or under ``max_memory`` (``--max-memory`` text), spread and offloaded (``placement``)."""
    import torch
    from transformers.utils import logging as transformers_logging

    # transformers' own "Loading weights" bars would interleave with the run's progress bars.
    transformers_logging.disable_progress_bar()

    device = torch.device(device)
    if checkpoint.kind == "adapter":
        if checkpoint.adapter_base is None:
            raise BadCheckpoint(f"adapter {checkpoint.reference} was resolved without its base; resolve it again.")
        model, dtype, placement = _load_full_model(checkpoint.adapter_base, device, trust_remote_code, max_memory,
                                                   _adapter_bytes(checkpoint, device))
    else:
        model, dtype, placement = _load_full_model(checkpoint, device, trust_remote_code, max_memory)
    try:
        if placement.spread:
            device = input_device(model.hf_device_map)
        if checkpoint.kind == "adapter":
            model = _attach_adapter(checkpoint, model, None if placement.spread else device)
        tokenizer = load_tokenizer(checkpoint, trust_remote_code=trust_remote_code)
        eos_ids = _checked_eos_ids(checkpoint, _eos_ids(model.generation_config, tokenizer))
    except BaseException:
        placement.release()
        raise
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    return LoadedModel(
        checkpoint=checkpoint,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        eos_token_ids=eos_ids,
        pad_token_id=int(pad_id),
        is_adapter=checkpoint.kind == "adapter",
        placement=placement,
    )


def load_tokenizer(checkpoint: ResolvedCheckpoint, *, trust_remote_code: bool = False):
    """The tokenizer ``load_model`` pairs with ``checkpoint``: an adapter folder's own, else its base's; a GGUF
    file's from its metadata. Engines that load the weights themselves (vLLM) render prompts with it."""
    if checkpoint.weight_format == "gguf":
        return _load_gguf_tokenizer(checkpoint)
    folder = Path(checkpoint.root)
    if checkpoint.kind == "adapter" and not _has_tokenizer(folder) and checkpoint.adapter_base is not None:
        folder = Path(checkpoint.adapter_base.root)
    return _load_tokenizer(folder, trust_remote_code)


def generation_eos_ids(checkpoint: ResolvedCheckpoint, tokenizer) -> tuple[int, ...]:
    """The EOS ids ``load_model`` stops on, read without loading the weights: the tokenizer's EOS and those of
    the model's ``generation_config.json`` (else its ``config.json``), as transformers reads them."""
    from transformers import AutoConfig, GenerationConfig

    model = checkpoint.adapter_base if checkpoint.kind == "adapter" else checkpoint
    folder = str(_model_config_path(model).parent)
    try:
        generation_config = GenerationConfig.from_pretrained(folder)
    except OSError:  # no generation_config.json: transformers derives one from config.json
        generation_config = GenerationConfig.from_model_config(AutoConfig.from_pretrained(folder))
    return _checked_eos_ids(checkpoint, _eos_ids(generation_config, tokenizer))


def _checked_eos_ids(checkpoint: ResolvedCheckpoint, eos_ids: tuple[int, ...]) -> tuple[int, ...]:
    if not eos_ids:
        raise BadCheckpoint(
            f"{checkpoint.reference} names no EOS token (tokenizer or generation_config.json), "
            "so generation could never stop early; set eos_token in tokenizer_config.json."
        )
    return eos_ids
