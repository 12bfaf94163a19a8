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

The causal half (``causal``), one ``CausalPartCost`` per part whose setting is on, in the order it runs:

- steering (``steering``): ⌈held-out passages / ``PERPLEXITY_BATCH``⌉ perplexity forwards per strength tried
  and one unsteered (at most, as the walk may stop early), then one generation of the suite prompts: up to
  ``max_new_tokens`` decode steps (prefill included) per batch; one model, plus the perplexity's logits;
- localization (``localization``): 2 + 2 × layers forwards per batch of ``config.batch_size or
  DEFAULT_SCORING_BATCH_SIZE`` answers (exact when every answer is non-empty); one model + one block + a
  batch's log-probs, and the trained log-probs store on disk for full checkpoints (none for an adapter);
- amplification (``amplification``): per α per sample one decode, up to ``max_new_tokens`` steps per batch of
  both models (of the trained one alone at α = 0); two full models in memory, or one with an adapter, checked
  against ``amplification.check_memory_budget``'s budget (``AMPLIFICATION_MEMORY_SHARE`` of what is available
  on the device): above it the run skips the part, and the estimate says so.

The model's size comes from its shape (``approximate_parameters``): the description holds no parameter
count and reading every tensor header to count them is the run's job. It computes nothing else and
loads nothing; choosing the device imports torch. Cost: one read of the bundled corpus (cached) and, with
amplification on for two full models, one read of the memory available on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.scorer import DEFAULT_SCORING_BATCH_SIZE
from afterburn_core.internals.adl import PATCHSCOPE_SCALES
from afterburn_core.device import free_memory_bytes
from afterburn_core.internals.amplification import AMPLIFICATION_MEMORY_SHARE
from afterburn_core.internals.analysis import DEFAULT_BATCH
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.internals.steering import PERPLEXITY_BATCH, STEERING_STRENGTHS
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
#: Vocabulary-sized fp32 tensors of one perplexity batch alive at once in ``steering.perplexity``: the logits
#: and their log-softmax.
PERPLEXITY_VOCAB_TENSORS = 2
#: Vocabulary-sized fp32 tensors of one batch of answers alive at once in ``localization``: the trained
#: log-probs (read back or computed once), the variant's, and the three temporaries of the scorer's ``_kl``
#: (probabilities, difference, product).
LOCALIZATION_VOCAB_TENSORS = 5
#: Copies of one decoder block a localization swap holds besides the model: the receiving model's own
#: values, kept on the CPU while the other checkpoint's are in.
LOCALIZATION_BLOCK_COPIES = 1


@dataclass(frozen=True)
class CausalPartCost:
    """One causal part's cost: forward passes outside generation, decodes and their steps per batch (upper
    bounds: a batch stops when every row has), models in memory, peak memory and disk, in bytes.

    ``budget_bytes`` is amplification's memory budget for two full models (None where no budget applies:
    an adapter, another part, or a platform that cannot say what is available)."""

    part: str
    forward_passes: int
    decodes: int
    decode_steps_per_batch: int
    models: int
    peak_bytes: int
    disk_bytes: int = 0
    budget_bytes: int | None = None

    @property
    def exceeds_budget(self) -> bool:
        """Whether the models would not fit the budget, so the run would skip this part."""
        return self.budget_bytes is not None and self.peak_bytes > self.budget_bytes


@dataclass(frozen=True)
class InternalsCostEstimate:
    """Forward passes per model pair, patchscope passes at most, disk scratch and peak memory, in bytes."""

    forward_passes: int
    patchscope_passes: int
    scratch_bytes: int
    peak_bytes: int
    #: The causal parts whose settings are on, in the order they run.
    causal: tuple[CausalPartCost, ...] = ()

    def part(self, name: str) -> CausalPartCost | None:
        """The causal part ``name`` (steering, localization, amplification), None when its setting is off."""
        return next((part for part in self.causal if part.part == name), None)


def approximate_parameters(description: ModelDescription) -> int:
    """Decoder blocks by ``PARAMETERS_PER_LAYER_PER_HIDDEN_SQUARED``, plus the embedding and an untied head."""
    embeddings = description.vocab_size * description.hidden_size
    heads = 1 if description.tie_word_embeddings else 2
    return (PARAMETERS_PER_LAYER_PER_HIDDEN_SQUARED * description.num_layers * description.hidden_size ** 2
            + heads * embeddings)


def description_model_bytes(description: ModelDescription, element_bytes: int) -> int:
    """``amplification.model_bytes`` from the description alone (``approximate_parameters``), before any
    tensor header is read."""
    return approximate_parameters(description) * element_bytes


def amplification_budget_bytes(device) -> int | None:
    """The budget ``amplification.check_memory_budget`` holds two full models to on ``device`` now."""
    available = free_memory_bytes(device)
    return None if available is None else int(AMPLIFICATION_MEMORY_SHARE * available)


def _steering_cost(description: ModelDescription, config: AnalysisConfig, element: int) -> CausalPartCost:
    batches = math.ceil(len(neutral_corpus().heldout) / PERPLEXITY_BATCH)
    rows = min(PERPLEXITY_BATCH, len(neutral_corpus().heldout))
    logits = PERPLEXITY_VOCAB_TENSORS * rows * config.internals_tokens * description.vocab_size * LENS_ELEMENT_BYTES
    return CausalPartCost("steering", forward_passes=(1 + len(STEERING_STRENGTHS)) * batches, decodes=1,
                          decode_steps_per_batch=config.max_new_tokens, models=1,
                          peak_bytes=description_model_bytes(description, element) + logits)


def _localization_cost(description: ModelDescription, config: AnalysisConfig, prompts: int,
                       element: int) -> CausalPartCost:
    rows = config.batch_size or DEFAULT_SCORING_BATCH_SIZE
    batch_positions = min(rows, prompts) * config.max_new_tokens
    block = PARAMETERS_PER_LAYER_PER_HIDDEN_SQUARED * description.hidden_size ** 2 * element
    return CausalPartCost(
        "localization", forward_passes=(2 + 2 * description.num_layers) * math.ceil(prompts / rows), decodes=0,
        decode_steps_per_batch=0, models=1,
        peak_bytes=(description_model_bytes(description, element) + LOCALIZATION_BLOCK_COPIES * block
                    + LOCALIZATION_VOCAB_TENSORS * batch_positions * description.vocab_size * LENS_ELEMENT_BYTES),
        disk_bytes=(0 if description.adapter is not None
                    else prompts * config.max_new_tokens * description.vocab_size * LENS_ELEMENT_BYTES))


def _amplification_cost(description: ModelDescription, config: AnalysisConfig, element: int,
                        device) -> CausalPartCost:
    adapter = description.adapter is not None
    models_per_step = sum(1 if alpha == 0 else 2 for alpha in config.amplification_alphas)
    models = 1 if adapter else 2
    return CausalPartCost(
        "amplification", forward_passes=0, decodes=len(config.amplification_alphas) * config.amplification_samples,
        decode_steps_per_batch=config.amplification_samples * models_per_step * config.max_new_tokens,
        models=models, peak_bytes=models * description_model_bytes(description, element),
        budget_bytes=None if adapter else amplification_budget_bytes(device))


def _causal_costs(description: ModelDescription, config: AnalysisConfig, prompts: int, element: int,
                  device) -> tuple[CausalPartCost, ...]:
    """The parts whose settings are on, in ``causal.run_causal``'s order; none without prompts (nor does it)."""
    if not prompts:
        return ()
    parts = []
    if config.steering:
        parts.append(_steering_cost(description, config, element))
    if config.localization:
        parts.append(_localization_cost(description, config, prompts, element))
    if config.amplification:
        parts.append(_amplification_cost(description, config, element, device))
    return tuple(parts)


def _element_bytes(description: ModelDescription, device) -> int:
    """Bytes per element of the dtype the models load in on this run's device (``loading.model_dtype``)."""
    import torch

    from afterburn_core.generation.loading import model_dtype

    return torch.empty((), dtype=model_dtype(description.torch_dtype, device)).element_size()


def estimate_internals_cost(description: ModelDescription, config: AnalysisConfig, prompts: int, *,
                            device=None) -> InternalsCostEstimate | None:
    """The cost of the ``internals`` analysis of a pair whose trained side ``description`` describes,
    over ``prompts`` suite prompts (module docstring); ``device`` defaults to ``config.device`` chosen."""
    layers, hidden, vocab = description.num_layers, description.hidden_size, description.vocab_size
    if not layers or not hidden or not vocab:
        return None
    from afterburn_core.device import choose_device

    device = device if device is not None else choose_device(config.device)
    element = _element_bytes(description, device)
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
        causal=_causal_costs(description, config, prompts, element, device),
    )
