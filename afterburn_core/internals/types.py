"""The typed result of the ``internals`` analysis (JSON contract: ``docs/internals-schema.md``).

Layers are numbered by decoder block, 0-based: layer ``l`` is the residual
stream a block returns (the embeddings are the weights analysis's business).
Every token is kept as its id and its decoded text; decoded text is a model's
vocabulary, untrusted, and every door escapes it. ``steering``,
``localization`` and ``amplification`` are the causal half: what the
difference *does* when added to the base, which blocks carry the change,
and how often a behaviour shows when the difference is amplified; each is
null when the run did not compute it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from afterburn_core.generation.types import Completion


@dataclass(frozen=True)
class ModelRef:
    """Which checkpoint a side was: the reference as typed and its content fingerprint."""

    reference: str
    fingerprint: str


@dataclass(frozen=True)
class TokenScore:
    """A token read off a lens: ``score`` is its probability under the readout (or the probability shift);
    ``relevance`` is how much more often the trained model writes it than the base in the run's stored
    generations, per 1 000 generated tokens (None when the run has no generations)."""

    token_id: int
    token: str
    score: float
    relevance: float | None = None


@dataclass(frozen=True)
class LayerStats:
    """The two models' residual streams at one layer over one input set.

    ``relative_norm`` = mean over positions of ‖h_t − h_b‖ / ‖h_b‖ and ``cosine`` the mean cosine,
    both past the first position; the first position (an attention sink in most models) is reported
    apart as ``sink_relative_norm`` / ``sink_cosine``. ``logit_lens_kl`` = mean over the same positions
    of KL(trained ‖ base) between each model's own lens of that layer (its final norm and unembedding).
    """

    layer: int
    relative_norm: float
    cosine: float
    logit_lens_kl: float
    sink_relative_norm: float
    sink_cosine: float


@dataclass(frozen=True)
class LayerReading(LayerStats):
    """``LayerStats`` on the neutral corpus plus the lens tokens whose probability moved most, averaged
    over the same positions (``score`` = the size of the mean shift of p_trained − p_base: up for gained,
    down for lost)."""

    gained: tuple[TokenScore, ...] = ()
    lost: tuple[TokenScore, ...] = ()


@dataclass(frozen=True)
class InputSetLayers:
    """Per-layer statistics over one input set: ``neutral`` (the corpus) or a suite's chat-templated prompts."""

    input_set: str
    sequences: int
    positions: int
    layers: tuple[LayerStats, ...]


@dataclass(frozen=True)
class PatchscopeReading:
    """The tokens the trained model reads from the difference written at one scale (× the layer's mean norm)."""

    scale: float
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class AdlReading:
    """The activation-difference lens at one layer: the mean difference over the neutral corpus at
    ``positions`` (one position, or the first k averaged: ``averaged``, the one reading when k = 1), through the trained model's final norm and
    unembedding. ``promoted``: the readout of +δ; ``demoted``: of −δ (scores are probabilities).
    ``patchscope`` is read for the averaged difference only (empty for single positions); ``persistent``
    holds the tokens in the patchscope top list at no fewer than half the scales."""

    layer: int
    positions: tuple[int, ...]
    norm: float
    promoted: tuple[TokenScore, ...]
    demoted: tuple[TokenScore, ...]
    patchscope: tuple[PatchscopeReading, ...] = ()
    persistent: tuple[str, ...] = ()
    averaged: bool = False


@dataclass(frozen=True)
class PromptLens:
    """The differential logit lens of one input, layer × position: ``kl[l][i]`` = KL(trained ‖ base) of the two
    lenses, ``base_top`` / ``trained_top`` each model's top token there; ``tokens`` the input tokens shown
    (the last ``LENS_MAX_POSITIONS`` of it)."""

    input_id: str
    tokens: tuple[str, ...]
    kl: tuple[tuple[float, ...], ...]
    base_top: tuple[tuple[str, ...], ...]
    trained_top: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class CorpusRef:
    """Which neutral corpus was read: its version, content hash, and how much of it."""

    name: str
    version: int
    sha256: str
    passages: int
    max_tokens: int


@dataclass(frozen=True)
class InternalsCost:
    """What the analysis spent: forward passes per model, the scratch it wrote, its wall time."""

    forward_passes: int
    patchscope_passes: int
    scratch_bytes: int
    seconds: float


# --- the causal half: steering, layer localization, logit-difference amplification ------------------------


@dataclass(frozen=True)
class MetricTriple:
    """One behaviour metric of the base, the steered base and the trained model (None: not measurable)."""

    base: float | None
    steered: float | None
    trained: float | None


@dataclass(frozen=True)
class StrengthTrial:
    """One steering strength tried (× the layer's mean residual norm): the base's perplexity on held-out
    neutral text while steered, and whether it stayed within the bound."""

    strength: float
    perplexity: float
    accepted: bool


@dataclass(frozen=True)
class SteeringResult:
    """The base model steered by the unit activation difference × ``strength`` at ``layer`` on every position:
    the strength rule's trials, the behaviour metrics of base / steered base / trained, and the steered
    answers (aligned with the run's ``generations.prompts``)."""

    layer: int
    strength: float
    perplexity_base: float
    perplexity_bound: float
    trials: tuple[StrengthTrial, ...]
    metrics: dict[str, MetricTriple]
    completions: tuple[Completion, ...]


@dataclass(frozen=True)
class LayerLocalization:
    """Decoder block ``layer`` swapped alone: the share of the KL(trained ‖ base) gap on the trained answers that
    the base closes with the trained block (``kl_recovered``), and the share the trained model opens with the
    base's block (``reverse_kl_recovered``)."""

    layer: int
    kl_recovered: float
    reverse_kl_recovered: float


@dataclass(frozen=True)
class Localization:
    """What layer localization found: the mean KL(trained ‖ base) per answer token it divides by (nats) and each
    block's shares of it."""

    gap: float
    blocks: tuple[LayerLocalization, ...]


@dataclass(frozen=True)
class DetectorAtAlpha:
    """One reward-hack detector read on the answers amplified at one α: its score and flag, and the rate of the
    behaviour it counts with a 95 % interval (None where the detector counts no single behaviour)."""

    score: float
    flagged: bool
    rate: float | None
    rate_low: float | None = None
    rate_high: float | None = None
    available: bool = True


@dataclass(frozen=True)
class AmplificationLevel:
    """Answers sampled from logits_t + α (logits_t − logits_b) and what the detectors read on them."""

    alpha: float
    detectors: dict[str, DetectorAtAlpha]
    completions: tuple[Completion, ...]


@dataclass(frozen=True)
class InternalsResult:
    """The ``internals`` analysis (see the module docstring and ``docs/internals-schema.md``)."""

    KIND: ClassVar[str] = "internals"
    SCHEMA_VERSION: ClassVar[int] = 2  # 2: localization_gap

    base: ModelRef
    trained: ModelRef
    method: str  # "two_pass" | "adapter_toggle"
    num_layers: int
    layers: tuple[LayerReading, ...]
    input_sets: tuple[InputSetLayers, ...]
    adl: tuple[AdlReading, ...]
    adl_layers: tuple[int, ...]
    patchscope_prompt: str
    lens_prompts: tuple[PromptLens, ...]
    corpus: CorpusRef
    cost: InternalsCost
    steering: SteeringResult | None = None
    localization: tuple[LayerLocalization, ...] | None = None
    localization_gap: float | None = None
    amplification: tuple[AmplificationLevel, ...] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    schema_version: int = field(default=SCHEMA_VERSION)
