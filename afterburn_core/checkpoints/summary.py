"""What one checkpoint holds, from ``config.json`` and the tensor headers.

Contract: ``summarize(ckpt)`` returns a ``CheckpointSummary``: architecture
(first of ``architectures``), ``model_type``, layer count, hidden size and
vocabulary size from the config (the base's config for an adapter; legacy key
names such as GPT-2's ``n_layer`` / ``n_embd`` and a multimodal model's
``text_config`` are read too), and the tensor count, parameter count (per
dtype) and bytes of the checkpoint's own tensors (an adapter's factors, not
its base). A field the config lacks is ``None``, never a guess.

It leaves to others: comparing two summaries (the inventory analysis).
Cost: one JSON read and the headers (see ``tensors.py``); no tensor data.
"""

from __future__ import annotations

from pathlib import Path

from afterburn_core.checkpoints.local import read_json_object
from afterburn_core.checkpoints.tensors import open_tensor_index
from afterburn_core.types import CheckpointSummary, ResolvedCheckpoint

#: Config keys for each summary field, first present wins (transformers' ``attribute_map``
#: aliases: GPT-2 / GPT-J use ``n_layer`` / ``n_embd``, T5-style configs ``num_layers`` / ``d_model``).
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
VOCAB_KEYS = ("vocab_size",)


def _first_int(config: dict, keys: tuple[str, ...]) -> int | None:
    for source in (config, config.get("text_config")):
        if not isinstance(source, dict):
            continue
        for key in keys:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _model_config(checkpoint: ResolvedCheckpoint) -> dict:
    source = checkpoint.adapter_base if checkpoint.kind == "adapter" and checkpoint.adapter_base else checkpoint
    if source.config_path is None:
        return {}
    return read_json_object(Path(source.config_path), "model config")


def summarize(checkpoint: ResolvedCheckpoint) -> CheckpointSummary:
    """Summary of ``checkpoint`` from its config and tensor headers."""
    config = _model_config(checkpoint)
    architectures = config.get("architectures")
    has_architecture = isinstance(architectures, list) and architectures and isinstance(architectures[0], str)
    architecture = architectures[0] if has_architecture else None
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    with open_tensor_index(checkpoint) as index:
        return CheckpointSummary(
            checkpoint=checkpoint,
            architecture=architecture,
            model_type=model_type,
            num_layers=_first_int(config, LAYER_KEYS),
            hidden_size=_first_int(config, HIDDEN_KEYS),
            vocab_size=_first_int(config, VOCAB_KEYS),
            num_tensors=len(index),
            num_parameters=index.num_parameters,
            parameters_by_dtype=index.parameters_by_dtype,
            size_bytes=index.size_bytes,
        )
