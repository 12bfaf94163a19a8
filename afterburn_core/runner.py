"""Runs a run: its stages in order, each served from the cache or computed and stored.

This is the worker's body. The dashboard launches it in a separate process
(``afterburn_core.jobs``); the CLI calls it in the foreground with a terminal
bar. Either way it writes status, per-stage progress, results and the reason
of a failure to the store, and nothing else: it draws nothing and prints
nothing.

Stages: ``resolve`` (references → files + fingerprints; never cached, since
fingerprints are how a changed checkpoint is noticed) then the analyses the
registry declares (``afterburn_core.analyses``), in its order, each keyed by
the pair's fingerprints, its kind, its schema version, the config fields it
reads and the keys of the results it depends on.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from afterburn_core.analyses import RESOLVE_STAGE, AnalysisKind, RunContext, analyses
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AfterburnError, AnalysisFailed, AnalysisSkipped, RunCancelled
from afterburn_core.progress import ProgressCallback, StageReporter
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore, cache_key


def analysis_cache_key(analysis: AnalysisKind, context: RunContext) -> str:
    """The key this analysis's result is stored under for this run."""
    base, trained = context.pair()
    inputs: dict[str, Any] = dict(context.config.subset(analysis.config_fields))
    if analysis.key_extra is not None:
        inputs["extra"] = analysis.extra_key(context)
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
        for analysis in analyses():
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
    store: RunStore, run_id: str, analysis: AnalysisKind, context: RunContext, on_update: ProgressCallback | None
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

