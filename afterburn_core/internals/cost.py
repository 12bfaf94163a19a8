"""What the ``internals`` analysis will cost, from the config alone, before a run is launched.

Contract: ``estimate_internals_cost(description, config, prompts, *, device=None) ->
InternalsCostEstimate | None`` (None when the model's config.json does not state its layers, hidden
size and vocabulary). It follows the analysis's own arithmetic (``analysis``, ``passes``, ``adl``):

- forward passes: one per batch per model, batches of ``config.batch_size or DEFAULT_BATCH`` rows over
  the sampled neutral passages and the run's ``prompts`` suite prompts: exactly what the run counts;
- patchscope passes: ``len(PATCHSCOPE_SCALES)`` per ADL layer read (the middle one, or every layer with
  ``adl_all_layers``; patchscope reads each layer's averaged difference, the one reading when
  ``adl_positions`` is 1);
  an upper bound, as a difference of norm 0 (identical models) is not read;
- scratch (two-pass runs; an adapter is toggled and writes none): layers × rows × width × hidden ×
  dtype size, each row ``config.internals_tokens`` wide (neutral passages are cut there; a suite prompt
  longer than that widens its batch, which this does not know without the tokenizer);
- peak memory: the model, the base's lens head kept beside it, both models' block outputs of one batch
  and the lens's vocabulary-sized fp32 tensors of one layer of one batch.

The model's size comes from its shape (``approximate_parameters``): the description holds no parameter
count and reading every tensor header to count them is the run's job. It computes nothing else and
loads nothing; choosing the device imports torch. Cost: one read of the bundled corpus (cached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from afterburn_core.config import AnalysisConfig
from afterburn_core.internals.adl import PATCHSCOPE_SCALES
from afterburn_core.internals.analysis import DEFAULT_BATCH
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.types import ModelDescription

#: Parameters per decoder block per hidden unit squared: 4 h² of attention projections and 8 h² of an MLP
#: four times as wide (Kaplan et al. 2020, "Scaling laws for neural language models", N ≈ 12 · layers · h²);
#: a SwiGLU MLP of ~2.7 h with grouped key/value heads lands within ~10% of it (the demo: 11.25 h²).
PARAMETERS_PER_LAYER_PER_HIDDEN_SQUARED = 12
#: Vocabulary-sized fp32 tensors alive at once while ``Readings.add`` reads one layer of a batch: each
#: model's log-probs, the trained model's probabilities and the two temporaries of the KL product.
LENS_VOCAB_TENSORS = 5
#: Bytes of one element of the lens's log-probs (the readings compute in fp32).
LENS_ELEMENT_BYTES = 4
#: Block outputs of one batch held at once: the base's (read back from the scratch) and the trained model's.
BATCH_STATE_SIDES = 2


@dataclass(frozen=True)
class InternalsCostEstimate:
    """Forward passes per model pair, patchscope passes at most, disk scratch and peak memory, in bytes."""

    forward_passes: int
    patchscope_passes: int
    scratch_bytes: int
    peak_bytes: int


def approximate_parameters(description: ModelDescription) -> int:
    """Decoder blocks by ``PARAMETERS_PER_LAYER_PER_HIDDEN_SQUARED``, plus the embedding and an untied head."""
    embeddings = description.vocab_size * description.hidden_size
    heads = 1 if description.tie_word_embeddings else 2
    return (PARAMETERS_PER_LAYER_PER_HIDDEN_SQUARED * description.num_layers * description.hidden_size ** 2
            + heads * embeddings)


def _element_bytes(description: ModelDescription, config: AnalysisConfig, device) -> int:
    """Bytes per element of the dtype the models load in on this run's device (``loading.model_dtype``)."""
    import torch

    from afterburn_core.device import choose_device
    from afterburn_core.generation.loading import model_dtype

    device = device if device is not None else choose_device(config.device)
    return torch.empty((), dtype=model_dtype(description.torch_dtype, device)).element_size()


def estimate_internals_cost(description: ModelDescription, config: AnalysisConfig, prompts: int, *,
                            device=None) -> InternalsCostEstimate | None:
    """The cost of the ``internals`` analysis of a pair whose trained side ``description`` describes,
    over ``prompts`` suite prompts (module docstring); ``device`` defaults to ``config.device`` chosen."""
    layers, hidden, vocab = description.num_layers, description.hidden_size, description.vocab_size
    if not layers or not hidden or not vocab:
        return None
    element = _element_bytes(description, config, device)
    inputs = len(neutral_corpus().sample(config.internals_passages)) + prompts
    rows = config.batch_size or DEFAULT_BATCH
    width = config.internals_tokens
    batch_rows = min(rows, inputs)
    adl_layers = layers if config.adl_all_layers else 1
    adapter = description.adapter is not None
    lens_head = vocab * hidden * element
    return InternalsCostEstimate(
        forward_passes=2 * math.ceil(inputs / rows),
        patchscope_passes=len(PATCHSCOPE_SCALES) * adl_layers,
        scratch_bytes=0 if adapter else layers * inputs * width * hidden * element,
        peak_bytes=(approximate_parameters(description) * element
                    + (0 if adapter else lens_head)
                    + BATCH_STATE_SIDES * layers * batch_rows * width * hidden * element
                    + LENS_VOCAB_TENSORS * batch_rows * width * vocab * LENS_ELEMENT_BYTES),
    )
