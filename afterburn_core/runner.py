"""Runs a run: its stages in order, each served from the cache or computed and stored.

This is the worker's body. The dashboard launches it in a separate process
(``afterburn_core.jobs``); the CLI calls it in the foreground with a terminal
bar. Either way it writes status, per-stage progress, results and the reason
of a failure to the store, and nothing else: it draws nothing and prints
nothing.

Stages: ``resolve`` (references → files + fingerprints; never cached, since
fingerprints are how a changed checkpoint is noticed) then the analyses, each
keyed by the pair's fingerprints, its kind, its schema version and the config
fields it reads.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AfterburnError, AnalysisFailed, AnalysisSkipped, BadInput, RunCancelled
from afterburn_core.generation.results import GenerationsResult, TokenKLResult
from afterburn_core.progress import ProgressCallback, StageReporter
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.store import RunStore, cache_key
from afterburn_core.types import InventoryResult, ResolvedCheckpoint
from afterburn_core.weights.types import WeightDiffResult


@dataclass
class RunContext:
    """What the stages of one run share: the config, the two checkpoints once resolved, and
    the cache key of every analysis done so far (a dependent analysis's key includes them)."""

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

    def result(self, result_type: type) -> Any:
        """A result an earlier stage of this run stored (or found in the cache)."""
        document = self.store.get_result(self.keys[result_type.KIND])
        if document is None:
            raise AnalysisFailed(f"the {result_type.KIND} result this analysis reads is missing from the store")
        return from_jsonable(result_type, document)


@dataclass(frozen=True)
class Analysis:
    """One cached stage: its result type, the config fields it reads, what else its key holds.

    ``depends_on`` names analyses whose stored results it reads: they run first,
    and their cache keys are part of this one's. ``key_extra`` adds inputs that
    are not config fields (the suites' content hashes, the device kind).
    """

    result_type: type
    cache_fields: tuple[str, ...]
    compute: Callable[[RunContext, StageReporter], Any]
    depends_on: tuple[str, ...] = ()
    key_extra: Callable[[AnalysisConfig], Any] | None = None

    @property
    def kind(self) -> str:
        return self.result_type.KIND


def _compute_inventory(context: RunContext, progress: StageReporter) -> InventoryResult:
    from afterburn_core.checkpoints.pairing import build_inventory

    progress.update(0, 1, "reading tensor headers")
    return build_inventory(*context.pair())


def _compute_weights(context: RunContext, progress: StageReporter) -> WeightDiffResult:
    from afterburn_core.weights.analysis import analyze_weights

    return analyze_weights(*context.pair(), context.config, progress.update)


def _compute_generations(context: RunContext, progress: StageReporter) -> GenerationsResult:
    from afterburn_core.generation.pipeline import generate_pair

    return generate_pair(*context.pair(), context.config, progress.update)


def _compute_token_kl(context: RunContext, progress: StageReporter) -> TokenKLResult:
    from afterburn_core.checkpoints import summarize
    from afterburn_core.generation.pipeline import score_pair

    base, trained = context.pair()
    base_vocab, trained_vocab = summarize(base).vocab_size, summarize(trained).vocab_size
    if base_vocab != trained_vocab:
        raise AnalysisSkipped(
            f"token-level KL needs one vocabulary; the base has {base_vocab} tokens, the trained model {trained_vocab}"
        )
    return score_pair(*context.pair(), context.result(GenerationsResult), context.config, progress.update)


def _compute_behaviour(context: RunContext, progress: StageReporter) -> BehaviourStats:
    from afterburn_core.behaviour.analysis import compare_behaviour

    generations = context.result(GenerationsResult)
    progress.update(0, 1, "classifying outputs and testing shifts")
    return compare_behaviour(generations.prompts, generations.base, generations.trained, seed=context.config.seed)


def _compute_reward_hack(context: RunContext, progress: StageReporter) -> RewardHackResult:
    from afterburn_core.reward_hack import detect_reward_hacking

    progress.update(0, 1, "scoring the four detectors")
    return detect_reward_hacking(
        context.result(GenerationsResult), context.result(BehaviourStats), context.config.method,
        context.config.reward_hack_weights or None,
    )


def _generation_key(config: AnalysisConfig) -> dict[str, Any]:
    from afterburn_core.device import choose_device
    from afterburn_core.generation.pipeline import suites_key

    # Numerics differ by device kind (CUDA runs bf16); sampled outputs are seeded per batch.
    return {
        "suites": suites_key(config),
        "device": choose_device(config.device).type,
        "batch_size": config.batch_size if config.temperature > 0 else None,
    }


def _device_key(config: AnalysisConfig) -> dict[str, Any]:
    from afterburn_core.device import choose_device

    return {"device": choose_device(config.device).type}


#: The analyses a run can hold, in the order they run.
ANALYSES: tuple[Analysis, ...] = (
    Analysis(InventoryResult, (), _compute_inventory),
    # Device is left out of the key on purpose: the numbers do not depend on it beyond fp32 noise.
    Analysis(WeightDiffResult, ("spectrum_top_k", "exact_spectra", "seed"), _compute_weights),
    # Suites enter the key as what they resolve to (names, versions, content hashes: ``suites_key``),
    # not as typed: "all five by name" and "the default set" are the same prompts and share a result.
    Analysis(
        GenerationsResult, ("max_new_tokens", "temperature", "top_p", "seed", "trust_remote_code"),
        _compute_generations, key_extra=_generation_key,
    ),
    Analysis(TokenKLResult, (), _compute_token_kl, depends_on=("generations",), key_extra=_device_key),
    Analysis(BehaviourStats, ("seed",), _compute_behaviour, depends_on=("generations",)),
    Analysis(RewardHackResult, ("method", "reward_hack_weights"), _compute_reward_hack,
             depends_on=("generations", "behaviour")),
)
RESOLVE_STAGE = "resolve"
ANALYSIS_KINDS: tuple[str, ...] = tuple(analysis.kind for analysis in ANALYSES)
STAGE_NAMES: tuple[str, ...] = (RESOLVE_STAGE, *ANALYSIS_KINDS)
_BY_KIND = {analysis.kind: analysis for analysis in ANALYSES}


def stages_for(kinds: tuple[str, ...] | None) -> tuple[str, ...]:
    """The stages of a run computing ``kinds`` (None: every analysis) and what they read, in order."""
    if kinds is None:
        return STAGE_NAMES
    unknown = sorted(set(kinds) - set(ANALYSIS_KINDS))
    if unknown:
        raise BadInput(f"unknown analysis {unknown[0]!r}; choose from {', '.join(ANALYSIS_KINDS)}")
    wanted = set(kinds)
    for analysis in reversed(ANALYSES):  # dependencies come earlier in ANALYSES
        if analysis.kind in wanted:
            wanted.update(analysis.depends_on)
    return (RESOLVE_STAGE, *(kind for kind in ANALYSIS_KINDS if kind in wanted))


def analysis_cache_key(analysis: Analysis, context: RunContext) -> str:
    """The key this analysis's result is stored under for this run."""
    base, trained = context.pair()
    inputs: dict[str, Any] = dict(context.config.subset(analysis.cache_fields))
    if analysis.key_extra is not None:
        inputs["extra"] = analysis.key_extra(context.config)
    if analysis.depends_on:
        inputs["depends_on"] = {kind: context.keys[kind] for kind in analysis.depends_on}
    return cache_key(
        analysis.kind, analysis.result_type.SCHEMA_VERSION, (base.fingerprint, trained.fingerprint), inputs
    )


def execute_run(
    store: RunStore, run_id: str, on_update: ProgressCallback | None = None, *, raise_errors: bool = False
) -> str:
    """Run every stage of ``run_id``; return its final status (done / failed / cancelled).

    The outcome is always written to the store. ``raise_errors`` also re-raises
    an ``AfterburnError`` afterwards, for a caller (the CLI) that turns its class
    into an exit code.
    """
    record = store.get_run(run_id)
    context = RunContext(
        AnalysisConfig.from_json(record.config_json), record.base_reference, record.trained_reference, store
    )
    store.mark_started(run_id, os.getpid())
    try:
        _resolve(store, run_id, context, on_update)
        wanted = {stage.stage for stage in record.stages}
        for analysis in ANALYSES:
            if analysis.kind in wanted:
                _run_analysis(store, run_id, analysis, context, on_update)
    except (RunCancelled, KeyboardInterrupt) as error:
        store.finish_run(run_id, "cancelled", str(error) or "interrupted")
        if raise_errors or isinstance(error, KeyboardInterrupt):
            raise
        return "cancelled"
    except AfterburnError as error:
        store.finish_run(run_id, "failed", str(error))
        if raise_errors:
            raise
        return "failed"
    except Exception as error:  # noqa: BLE001 - a worker must record any crash, not die silently
        log_path = store.home / "logs" / f"{run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(traceback.format_exc(), encoding="utf-8")
        store.finish_run(
            run_id, "failed", f"internal error {type(error).__name__}: {error} (traceback in {log_path})"
        )
        if raise_errors:
            raise AnalysisFailed(f"internal error {type(error).__name__}: {error} (traceback in {log_path})") from error
        return "failed"
    store.finish_run(run_id, "done")
    return "done"


def _resolve(store: RunStore, run_id: str, context: RunContext, on_update: ProgressCallback | None) -> None:
    from afterburn_core.checkpoints import resolve_pair

    store.update_stage(run_id, RESOLVE_STAGE, "running", 0, 2, "resolving references and fingerprinting files")
    progress = StageReporter(store, run_id, RESOLVE_STAGE, on_update)
    progress.update(0, 2, "resolving references and fingerprinting files")
    context.base, context.trained = resolve_pair(context.base_reference, context.trained_reference)
    store.set_fingerprints(run_id, context.base.fingerprint, context.trained.fingerprint)
    progress.finish("resolved")


def _run_analysis(
    store: RunStore, run_id: str, analysis: Analysis, context: RunContext, on_update: ProgressCallback | None
) -> None:
    store.update_stage(run_id, analysis.kind, "running", 0, 0, "starting")  # stamps the stage's start
    key = analysis_cache_key(analysis, context)
    context.keys[analysis.kind] = key
    progress = StageReporter(store, run_id, analysis.kind, on_update)
    if store.get_result(key) is not None:
        store.link_result(run_id, analysis.kind, key)
        progress.finish("cached")
        return
    try:
        result = analysis.compute(context, progress)
    except AnalysisSkipped as reason:
        store.update_stage(run_id, analysis.kind, "skipped", 0, 0, str(reason))
        if on_update is not None:
            on_update(analysis.kind, 1, 1, f"skipped: {reason}")
        return
    store.put_result(run_id, key, analysis.kind, analysis.result_type.SCHEMA_VERSION, to_jsonable(result))
    progress.finish("computed")


def load_result(store: RunStore, run_id: str, result_type: type) -> Any | None:
    """A run's stored result of one kind as its typed object, or None if it has none (yet)."""
    key = store.run_result_keys(run_id).get(result_type.KIND)
    if key is None:
        return None
    document = store.get_result(key)
    return None if document is None else from_jsonable(result_type, document)
