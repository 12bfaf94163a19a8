"""Runs a run: its stages in order, each served from the cache or computed and stored.

This is the worker's body. The dashboard launches it in a separate process
(``afterburn_core.jobs``); the CLI calls it in the foreground with a terminal
bar. Either way it writes status, per-stage progress, results and the reason
of a failure to the store, and nothing else: it draws nothing and prints
nothing.

Stages: ``resolve`` (every input checked, ``check_inputs``: the suites and
the device the analyses read, then references → files + fingerprints; never
cached, since fingerprints are how a changed checkpoint is noticed) then the
analyses the registry declares (``afterburn_core.analyses``), in its order,
each keyed by the pair's fingerprints, its kind, its schema version, the
config fields it reads and the keys of the results it depends on. A door that
runs in the foreground (the API, the CLI) calls ``check_inputs`` before it
records a run, so refused input leaves no run behind. The stages compute with the
threads ``threads.thread_count`` picks for the pair, whichever door started them.

A stored result is reused only when it fits its type (``store.stored_result``);
one that does not is dropped and computed again. When the store itself fails
(a full disk), the run is closed as failed if the store still takes that one
small write, and the store's own error is what is raised.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afterburn_core.checkpoints.references import spelled_out
from afterburn_core.analyses import RESOLVE_STAGE, AnalysisKind, RunContext, analyses, config_fields_for
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AfterburnError, AnalysisFailed, AnalysisSkipped, BadInput, RunCancelled, StoreError
from afterburn_core.progress import ProgressCallback, StageReporter
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore, cache_key, stored_result
from afterburn_core.threads import computing_with, thread_count

if TYPE_CHECKING:
    from afterburn_core.types import ResolvedCheckpoint


@dataclass(frozen=True)
class CheckedInputs:
    """What ``check_inputs`` found: the pair resolved (files checked, fingerprinted)."""

    base: ResolvedCheckpoint
    trained: ResolvedCheckpoint


def given_reference(label: str, reference: str) -> str:
    """``reference`` without surrounding blanks (a bare ``demo`` spelled out for its side, ``spelled_out``);
    ``BadInput`` when nothing is left."""
    if not isinstance(reference, str) or not reference.strip():
        raise BadInput(f"the {label} model reference is empty; give a folder, a file, a hub id or 'demo'")
    return spelled_out(reference.strip(), label)


def check_inputs(base_reference: str, trained_reference: str, config: AnalysisConfig,
                 analyses: tuple[str, ...] | None = None) -> CheckedInputs:
    """Load and check every input a run of ``analyses`` (None: all) reads, before any of it is computed.

    The suites (when a stage reads them: each file parsed and checked), the device and the
    generation engine, then both references resolved (a missing path, a refused pickle, a bad config.json
    fail here). Raises the input's ``BadInput``; cost: parsing the suites and resolving
    the pair (``checkpoints.resolution``), nothing read beyond headers and configs.
    """
    base_reference = given_reference("base", base_reference)
    trained_reference = given_reference("trained", trained_reference)
    read = config_fields_for(analyses)  # also refuses an unknown analysis name
    if "suites" in read:
        from afterburn_core.generation.suites import load_suites

        load_suites(config.suites)
    if "device" in read:
        from afterburn_core.device import choose_device

        device = choose_device(config.device)
        if "backend" in read:  # an engine that is not installed is refused before anything is computed
            from afterburn_core.generation.backends import chosen_backend

            chosen_backend(config.backend, device)
    from afterburn_core.checkpoints import resolve_pair

    return CheckedInputs(*resolve_pair(base_reference, trained_reference))


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
    store: RunStore, run_id: str, on_update: ProgressCallback | None = None, *, raise_errors: bool = False,
    checked: CheckedInputs | None = None,
) -> str:
    """Run every stage of ``run_id``; return its final status (done / failed / cancelled).

    The outcome is written to the store (unless the store itself refuses it). ``raise_errors``
    also re-raises an ``AfterburnError`` afterwards, for a caller (the CLI) that turns its class
    into an exit code. ``checked``: the run's inputs as the caller already checked them
    (``check_inputs``), so they are not resolved twice; None checks them here, first.
    """
    record = store.get_run(run_id)
    context = RunContext(
        AnalysisConfig.from_json(record.config_json), record.base_reference, record.trained_reference, store
    )
    store.mark_started(run_id, os.getpid())
    wanted = tuple(stage.stage for stage in record.stages if stage.stage != RESOLVE_STAGE)
    try:
        _resolve(store, run_id, context, on_update, checked, wanted)
        with computing_with(thread_count(context.config.threads, *context.pair())):
            for analysis in analyses():
                if analysis.kind in wanted:
                    _run_analysis(store, run_id, analysis, context, on_update)
    except (RunCancelled, KeyboardInterrupt) as error:
        _close(store, run_id, "cancelled", str(error) or "interrupted")
        if raise_errors or isinstance(error, KeyboardInterrupt):
            raise
        return "cancelled"
    except AfterburnError as error:
        _close(store, run_id, "failed", str(error))
        if raise_errors:
            raise
        return "failed"
    except Exception as error:  # noqa: BLE001 - a worker must record any crash, not die silently
        reason = f"internal error {type(error).__name__}: {error}{_log_traceback(store, run_id)}"
        _close(store, run_id, "failed", reason)
        if raise_errors:
            raise AnalysisFailed(reason) from error
        return "failed"
    store.finish_run(run_id, "done")
    return "done"


def _close(store: RunStore, run_id: str, status: str, reason: str) -> None:
    """Record how the run ended. When the store refuses even this (the full disk that failed the run),
    the run is left to ``jobs.reap_dead_workers``, which closes it once this process is gone; the
    caller raises the first error, not this one."""
    with contextlib.suppress(StoreError):
        store.finish_run(run_id, status, reason)


def _log_traceback(store: RunStore, run_id: str) -> str:
    """Write the current traceback beside the store; `` (traceback in PATH)``, or nothing when it cannot."""
    log_path = store.home / "logs" / f"{run_id}.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        return ""
    return f" (traceback in {log_path})"


def _resolve(store: RunStore, run_id: str, context: RunContext, on_update: ProgressCallback | None,
             checked: CheckedInputs | None, wanted: tuple[str, ...]) -> None:
    """The resolve stage: the inputs as ``checked`` already, or checked now for the ``wanted`` analyses."""
    message = "checking suites, resolving references and fingerprinting files"
    store.update_stage(run_id, RESOLVE_STAGE, "running", 0, 2, message)
    progress = StageReporter(store, run_id, RESOLVE_STAGE, on_update)
    progress.update(0, 2, message)
    if checked is None:
        checked = check_inputs(context.base_reference, context.trained_reference, context.config, wanted)
    context.base, context.trained = checked.base, checked.trained
    store.set_fingerprints(run_id, context.base.fingerprint, context.trained.fingerprint)
    progress.finish("resolved")


def _run_analysis(
    store: RunStore, run_id: str, analysis: AnalysisKind, context: RunContext, on_update: ProgressCallback | None
) -> None:
    store.update_stage(run_id, analysis.kind, "running", 0, 0, "starting")  # stamps the stage's start
    key = analysis_cache_key(analysis, context)
    context.keys[analysis.kind] = key
    progress = StageReporter(store, run_id, analysis.kind, on_update)
    if stored_result(store, key, analysis.result_type) is not None:
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

