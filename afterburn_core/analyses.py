"""THE registry: every analysis kind a run can hold and every reward-hack detector, declared once.

An analysis kind is one ``AnalysisKind``: its name (the store's kind and the
report's field), its result type, the stage function that computes it, the
config fields and other inputs its cache key holds, the kinds whose stored
results it reads, and the view that turns its result into what the doors
show. The runner, the store's result lookups, the JSON report, the CLI and
the pages read this registry; adding a kind is one ``register_analysis``
call, not edits in five files. A detector is one ``DetectorSpec`` (name,
title, measure function, prior weight per training method), read by the
config's validation, the composite, the pages and the reports.

This module sits below every stage: it imports no analysis module. The
built-in declarations name their types and functions as ``"module:attr"``
references, resolved on first use, so importing the registry stays cheap and
no import cycle can form through it. It computes nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from afterburn_core.errors import AnalysisFailed, BadInput
from afterburn_core.serde import from_jsonable

if TYPE_CHECKING:
    from afterburn_core.config import AnalysisConfig
    from afterburn_core.progress import StageReporter
    from afterburn_core.store import RunStore
    from afterburn_core.types import ResolvedCheckpoint

#: ``"package.module:attribute"``, or the object itself (a test registering a toy kind passes objects).
Ref = Any


def resolve_ref(ref: Ref) -> Any:
    """The object a ``"module:attribute"`` reference names (anything else is returned as it is)."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


# --- runs ------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What the stages of one run share: the config, the two checkpoints once resolved, the device
    (chosen once per run), and the cache key of every analysis done so far (a dependent analysis's
    key includes them)."""

    config: AnalysisConfig
    base_reference: str
    trained_reference: str
    store: RunStore
    base: ResolvedCheckpoint | None = None
    trained: ResolvedCheckpoint | None = None
    keys: dict[str, str] = field(default_factory=dict)

    def pair(self) -> tuple[ResolvedCheckpoint, ResolvedCheckpoint]:
        """Both checkpoints; only valid after the resolve stage."""
        if self.base is None or self.trained is None:
            raise AnalysisFailed("internal: an analysis ran before the checkpoints were resolved")
        return self.base, self.trained

    @cached_property
    def device(self):
        """The ``torch.device`` every stage of this run computes on, chosen once from ``config.device``."""
        from afterburn_core.device import choose_device

        return choose_device(self.config.device)

    def result(self, kind: str) -> Any:
        """The result of ``kind`` an earlier stage of this run stored (or found in the cache), typed."""
        document = self.store.get_result(self.keys[kind])
        if document is None:
            raise AnalysisFailed(f"the {kind} result this analysis reads is missing from the store")
        return from_jsonable(analysis(kind).result_type, document)


# --- analysis kinds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisKind:
    """One cached stage of a run.

    ``stage(context, progress)`` computes the result; it may raise
    ``AnalysisSkipped`` with the reason it does not apply. ``config_fields``
    are the ``AnalysisConfig`` fields its cache key holds as they are;
    ``key_extra(context)`` adds what enters the key in another form (the
    suites as their content hashes, the device as its kind), and ``reads``
    names the config fields behind it, so the doors know every setting a kind
    takes. ``depends_on`` names kinds whose stored results it reads:
    they run first, and their cache keys are part of this one's. ``view`` turns
    a result into what the doors draw (None: the doors show the result raw).
    """

    kind: str
    title: str
    result: Ref
    stage: Ref
    config_fields: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    key_extra: Ref | None = None
    reads: tuple[str, ...] = ()
    view: Ref | None = None

    @property
    def result_type(self) -> type:
        return resolve_ref(self.result)

    def compute(self, context: RunContext, progress: StageReporter) -> Any:
        return resolve_ref(self.stage)(context, progress)

    def extra_key(self, context: RunContext) -> Any:
        return None if self.key_extra is None else resolve_ref(self.key_extra)(context)


_ANALYSES: dict[str, AnalysisKind] = {}


def register_analysis(kind: AnalysisKind) -> AnalysisKind:
    """Add ``kind`` after the ones registered before it (dependencies must come first)."""
    missing = [name for name in kind.depends_on if name not in _ANALYSES]
    if missing:
        raise ValueError(f"analysis {kind.kind!r} depends on {missing[0]!r}, which is not registered before it")
    if kind.kind in _ANALYSES or kind.kind == RESOLVE_STAGE:
        raise ValueError(f"analysis {kind.kind!r} is already registered")
    _ANALYSES[kind.kind] = kind
    return kind


def unregister_analysis(name: str) -> None:
    """Remove a kind no other kind depends on (tests that register a toy kind clean up with it)."""
    dependants = [other.kind for other in _ANALYSES.values() if name in other.depends_on]
    if dependants:
        raise ValueError(f"cannot unregister {name!r}: {dependants[0]!r} depends on it")
    _ANALYSES.pop(name)


def analyses() -> tuple[AnalysisKind, ...]:
    """Every registered kind, in the order a run computes them."""
    return tuple(_ANALYSES.values())


def analysis(name: str) -> AnalysisKind:
    """The registered kind ``name``; ``BadInput`` naming the known ones otherwise."""
    try:
        return _ANALYSES[name]
    except KeyError:
        raise BadInput(f"unknown analysis {name!r}; choose from {', '.join(_ANALYSES)}") from None


def analysis_kinds() -> tuple[str, ...]:
    return tuple(_ANALYSES)


RESOLVE_STAGE = "resolve"


#: How the resolution stage is named where people read it (each analysis stage by its kind's title).
RESOLVE_TITLE = "Checkpoints resolved"


def stage_title(stage: str) -> str:
    """A stage as people read it: its kind's title (``token_kl`` → Token divergence); an unknown name as itself."""
    if stage == RESOLVE_STAGE:
        return RESOLVE_TITLE
    kind = _ANALYSES.get(stage)
    return kind.title if kind is not None else stage


def stage_names() -> tuple[str, ...]:
    """Every stage of a full run: resolution, then each kind."""
    return (RESOLVE_STAGE, *_ANALYSES)


def stages_for(kinds: tuple[str, ...] | None) -> tuple[str, ...]:
    """The stages of a run computing ``kinds`` (None: every analysis) and what they read, in order."""
    if kinds is None:
        return stage_names()
    wanted = {analysis(kind).kind for kind in kinds}
    for registered in reversed(analyses()):  # dependencies are registered earlier
        if registered.kind in wanted:
            wanted.update(registered.depends_on)
    return (RESOLVE_STAGE, *(kind for kind in _ANALYSES if kind in wanted))


def config_fields_for(kinds: tuple[str, ...] | None) -> tuple[str, ...]:
    """The config fields the analyses of ``stages_for(kinds)`` read, each once, in the order declared."""
    read = [name for kind in stages_for(kinds)[1:] for name in (*analysis(kind).config_fields, *analysis(kind).reads)]
    return tuple(dict.fromkeys(read))


# --- reward-hack detectors -------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSpec:
    """One reward-hack detector: ``measure(generations, behaviour) -> Measurement`` and its prior
    weight in the composite under each training method (``config.TRAINING_METHODS``)."""

    name: str
    title: str
    measure: Ref
    weights: Mapping[str, float]


_DETECTORS: dict[str, DetectorSpec] = {}


def register_detector(detector: DetectorSpec) -> DetectorSpec:
    if detector.name in _DETECTORS:
        raise ValueError(f"detector {detector.name!r} is already registered")
    _DETECTORS[detector.name] = detector
    return detector


def detectors() -> tuple[DetectorSpec, ...]:
    """Every detector, in the order every view lists them."""
    return tuple(_DETECTORS.values())


def detector_names() -> tuple[str, ...]:
    return tuple(_DETECTORS)


def detector_title(name: str) -> str:
    """A detector's title; a name no detector has (a report from a later version) as itself."""
    spec = _DETECTORS.get(name)
    return spec.title if spec is not None else name


def in_detector_order(by_name: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``by_name``'s items, registered detectors first in their order, any other name after.

    Stored dicts come back with their keys sorted, so every view orders them here.
    """
    known = [(name, by_name[name]) for name in _DETECTORS if name in by_name]
    return known + sorted((name, value) for name, value in by_name.items() if name not in _DETECTORS)


# --- the built-in declarations ---------------------------------------------------------------------

register_analysis(AnalysisKind(
    "inventory", "Checkpoints", "afterburn_core.types:InventoryResult", "afterburn_core.stages:inventory",
    view="afterburn_core.views.inventory:inventory_view",
))
# Device and threads are left out of the keys on purpose: the numbers do not depend on them beyond fp32 noise.
register_analysis(AnalysisKind(
    "weights", "Weights", "afterburn_core.weights.types:WeightDiffResult", "afterburn_core.stages:weights",
    config_fields=("spectrum_top_k", "exact_spectra", "seed"), reads=("device", "threads"),
    view="afterburn_core.views.weights:weights_view",
))
# Suites enter the key as what they resolve to (names, versions, content hashes), not as typed:
# "all five by name" and "the default set" are the same prompts and share a result.
register_analysis(AnalysisKind(
    "generations", "Generations", "afterburn_core.generation.results:GenerationsResult",
    "afterburn_core.stages:generations",
    config_fields=("max_new_tokens", "temperature", "top_p", "seed", "trust_remote_code"),
    key_extra="afterburn_core.stages:generation_key",
    reads=("suites", "device", "batch_size", "threads", "backend", "tensor_parallel_size", "pipeline_parallel_size",
           "max_memory"),
    view="afterburn_core.views.prompts:generations_view",
))
register_analysis(AnalysisKind(
    "token_kl", "Token divergence", "afterburn_core.generation.results:TokenKLResult",
    "afterburn_core.stages:token_kl", depends_on=("generations",), key_extra="afterburn_core.stages:device_key",
    reads=("device", "trust_remote_code", "threads", "max_memory"),
    view="afterburn_core.views.prompts:token_kl_view",
))
register_analysis(AnalysisKind(
    "behaviour", "Behaviour", "afterburn_core.behaviour.types:BehaviourStats", "afterburn_core.stages:behaviour",
    config_fields=("seed",), depends_on=("generations",), view="afterburn_core.views.behaviour:behaviour_view",
))
register_analysis(AnalysisKind(
    "reward_hack", "Reward hacking", "afterburn_core.reward_hack.types:RewardHackResult",
    "afterburn_core.stages:reward_hack", config_fields=("method", "reward_hack_weights"),
    depends_on=("generations", "behaviour"), view="afterburn_core.views.reward_hack:reward_hack_view",
))
# The neutral corpus enters the key as its content hash (``internals_key``): editing it makes a new run.
register_analysis(AnalysisKind(
    "internals", "Internals", "afterburn_core.internals.types:InternalsResult", "afterburn_core.stages:internals",
    config_fields=("internals_passages", "internals_tokens", "adl_positions", "adl_all_layers", "trust_remote_code",
                   "steering", "localization", "amplification", "amplification_alphas", "amplification_samples",
                   "seed"),
    depends_on=("generations",), key_extra="afterburn_core.stages:internals_key",
    reads=("device", "batch_size", "threads", "max_memory"),
    view="afterburn_core.views.internals:internals_view",
))

# Prior weights per training method (normalised over the available detectors by the composite); each method's
# weights sum to 1. Why each method weighs each detector as it does:
# - unknown / lora: nothing declared (LoRA is a parameterisation, not an objective), so no prior favours any.
# - sft imitates demonstrations, so it copies their surface: length and format habits of the data are the main
#   risks ("alignment is largely style", Zhou et al. 2023, LIMA); fine-tuning on demonstrations, even benign
#   ones, erodes refusals (Qi et al. 2023, "Fine-tuning aligned language models compromises safety"), the
#   situation of a fine-tune on harmful compliant answers; sycophancy only where the demonstrations agree with
#   users; one reference answer per prompt narrows strategies a little.
# - dpo on human preferences: preferred answers are longer, and DPO exploits it (Park et al. 2024, "Disentangling
#   length from quality in direct preference optimization"); raters prefer answers that agree with them (Sharma
#   et al. 2023); helpfulness preferences trade against refusals, and harmlessness preferences cause
#   over-refusal (Bai et al. 2022; Röttger et al. 2023, XSTest).
# - rlhf against a learned reward model: length is the best-documented exploit (Singhal et al. 2023, "A long way
#   to go: investigating length correlations in RLHF"), sycophancy the next (Sharma et al. 2023); optimising hard
#   against a proxy reward exploits whatever else it rewards, formatting included (Gao et al. 2023, "Scaling laws
#   for reward model overoptimization"); the helpful / harmless tension as for dpo.
# - rlvr (verifiable rewards): no human judge to flatter, so little sycophancy pressure and no reward for
#   complying with harmful requests (safety drifts only as a side effect); the verifier's answer format invites
#   format gaming, and RLVR narrows the strategies a model samples (Yue et al. 2025); answers grow as it learns
#   longer reasoning (DeepSeek-AI 2025, R1).
# - grpo, an RLVR algorithm whose per-response length normalisation itself biases length (Liu et al. 2025,
#   "Understanding R1-Zero-like training", Dr. GRPO), with RLVR's strategy narrowing.
register_detector(DetectorSpec(
    "length_bias", "Length bias", "afterburn_core.reward_hack.length_bias:detect_length_bias",
    {"unknown": 0.20, "sft": 0.25, "dpo": 0.30, "rlhf": 0.25, "rlvr": 0.20, "grpo": 0.30, "lora": 0.20},
))
register_detector(DetectorSpec(
    "format_gaming", "Format gaming", "afterburn_core.reward_hack.format_gaming:detect_format_gaming",
    {"unknown": 0.20, "sft": 0.30, "dpo": 0.15, "rlhf": 0.15, "rlvr": 0.25, "grpo": 0.15, "lora": 0.20},
))
register_detector(DetectorSpec(
    "strategy_collapse", "Strategy collapse",
    "afterburn_core.reward_hack.strategy_collapse:detect_strategy_collapse",
    {"unknown": 0.20, "sft": 0.10, "dpo": 0.10, "rlhf": 0.15, "rlvr": 0.35, "grpo": 0.35, "lora": 0.20},
))
register_detector(DetectorSpec(
    "sycophancy", "Sycophancy", "afterburn_core.reward_hack.sycophancy:detect_sycophancy",
    {"unknown": 0.20, "sft": 0.15, "dpo": 0.30, "rlhf": 0.30, "rlvr": 0.10, "grpo": 0.10, "lora": 0.20},
))
register_detector(DetectorSpec(
    "safety_regression", "Safety regression",
    "afterburn_core.reward_hack.safety_regression:detect_safety_regression",
    {"unknown": 0.20, "sft": 0.20, "dpo": 0.15, "rlhf": 0.15, "rlvr": 0.10, "grpo": 0.10, "lora": 0.20},
))


def method_weights_table() -> dict[str, dict[str, float]]:
    """Each training method's prior weight per detector, from the detectors' declarations."""
    methods = {method for spec in _DETECTORS.values() for method in spec.weights}
    return {method: {spec.name: spec.weights[method] for spec in _DETECTORS.values()} for method in sorted(methods)}
