"""Runs in real worker processes: finish, hit the cache, get cancelled, get killed.

To make a run last long enough to cancel or kill it, the worker subprocess is
given a ``sitecustomize.py`` (through ``PYTHONPATH``) that appends one slow
analysis to the real pipeline; everything else is the code users run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from waits import HANG_S

from afterburn_core.config import AnalysisConfig
from afterburn_core.jobs import cancel_run, create_run, launch_worker, reap_dead_workers
from afterburn_core.analyses import stage_names
from afterburn_core.runner import execute_run
from afterburn_core.store import load_result
from afterburn_core.store import RunStore
from afterburn_core.types import InventoryResult

_SLOW_ANALYSIS = textwrap.dedent(
    """
    import dataclasses, time
    from typing import ClassVar
    from afterburn_core.analyses import AnalysisKind, register_analysis

    @dataclasses.dataclass(frozen=True)
    class SlowResult:
        KIND: ClassVar[str] = "slow"
        SCHEMA_VERSION: ClassVar[int] = 1
        steps: int

    def slow(context, progress):
        for step in range(600):
            progress.update(step, 600, f"step {step}")
            time.sleep(0.05)
        return SlowResult(600)

    register_analysis(AnalysisKind("slow", "Slow", SlowResult, slow))
    """
)


@pytest.fixture
def slow_worker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started from now on run one extra 30 s analysis after the real ones."""
    site = tmp_path / "slow-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_ANALYSIS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))


#: Every stage runs, on one short suite: random weights never stop early, and the worker's life is the subject.
CONFIG = AnalysisConfig(method="sft", suites=("math",), max_new_tokens=16)


def _create(store: RunStore, pair: tuple[Path, Path], stages: tuple[str, ...] | None = None) -> str:
    run_id = create_run(store, str(pair[0]), str(pair[1]), CONFIG)
    if stages is not None:  # the slow analysis needs its stage row
        store._transaction([("INSERT INTO stages (run_id, position, stage, status, updated_at) "
                             "VALUES (?, 99, 'slow', 'pending', 0)", (run_id,))])
    return run_id


def _wait(store: RunStore, run_id: str, predicate, timeout: float = HANG_S):
    """Poll until ``predicate`` holds; the bound only stops a hung worker (``waits.HANG_S``)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        record = store.get_run(run_id)
        if predicate(record):
            return record
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never got there: {store.get_run(run_id)}")


def _slow_running(record) -> bool:
    return any(stage.stage == "slow" and stage.status == "running" and stage.done > 0 for stage in record.stages)


def test_worker_process_runs_to_done_and_second_run_hits_cache(store: RunStore, tiny_pair) -> None:
    first = _create(store, tiny_pair)
    process = launch_worker(store, first)
    record = _wait(store, first, lambda r: not r.is_active)
    assert record.status == "done", record.error
    assert process.wait(timeout=HANG_S) == 0 and record.worker_pid == process.pid
    assert [s.status for s in record.stages] == ["done"] * len(stage_names())
    assert record.base_fingerprint and record.trained_fingerprint != record.base_fingerprint
    inventory = load_result(store, first, InventoryResult)
    assert inventory.shared_tensors == inventory.base.num_tensors == inventory.trained.num_tensors > 0
    assert inventory.base_only == () and inventory.shape_changed == ()
    assert inventory.base.checkpoint.fingerprint == record.base_fingerprint

    second = _create(store, tiny_pair)
    assert execute_run(store, second) == "done"
    inventory_stage = store.get_run(second).stages[stage_names().index("inventory")]
    assert inventory_stage.message == "cached"
    assert store.run_result_keys(second) == store.run_result_keys(first)


def test_changed_checkpoint_is_a_new_computation(store: RunStore, tmp_path: Path) -> None:
    from checkpoint_factories import build_tiny_llama

    base, trained = build_tiny_llama(tmp_path / "b", seed=3), build_tiny_llama(tmp_path / "t", seed=4)
    first = _create(store, (base, trained))
    execute_run(store, first)
    build_tiny_llama(trained, seed=5)  # overwrite the trained checkpoint in place
    second = _create(store, (base, trained))
    execute_run(store, second)
    assert store.get_run(second).stages[-1].message == "computed"
    assert store.get_run(first).trained_fingerprint != store.get_run(second).trained_fingerprint


def test_bad_reference_fails_the_run_with_one_line(store: RunStore, tmp_path: Path, tiny_pair) -> None:
    run_id = _create(store, (tiny_pair[0], tmp_path / "nowhere"))
    assert execute_run(store, run_id) == "failed"
    record = store.get_run(run_id)
    assert "nowhere" in record.error and "\n" not in record.error and "Traceback" not in record.error
    assert [s.status for s in record.stages] == ["failed"] + ["skipped"] * (len(stage_names()) - 1)


def test_cancel_stops_a_working_worker(store: RunStore, tiny_pair, slow_worker_env) -> None:
    run_id = _create(store, tiny_pair, stages=(*stage_names(), "slow"))
    process = launch_worker(store, run_id)
    _wait(store, run_id, _slow_running)
    cancel_run(store, run_id)
    record = _wait(store, run_id, lambda r: not r.is_active)
    assert record.status == "cancelled"
    assert process.wait(timeout=HANG_S) == 0
    assert store.get_run(run_id).stages[-1].status == "skipped"


def test_sigkilled_worker_marks_run_failed_with_the_reason(store: RunStore, tiny_pair, slow_worker_env) -> None:
    run_id = _create(store, tiny_pair, stages=(*stage_names(), "slow"))
    process = launch_worker(store, run_id)
    _wait(store, run_id, _slow_running)
    os.kill(process.pid, signal.SIGKILL)
    record = _wait(store, run_id, lambda r: not r.is_active)
    assert record.status == "failed"
    assert record.error == f"worker process {process.pid} was killed by SIGKILL before finishing"
    assert store.integrity_ok()
    assert load_result(store, run_id, InventoryResult) is not None  # finished stages are kept


def test_orphaned_worker_is_reaped_by_any_reader(store: RunStore, tiny_pair, slow_worker_env) -> None:
    """A worker whose launcher is gone too (no monitor thread): readers notice it died."""
    run_id = _create(store, tiny_pair, stages=(*stage_names(), "slow"))
    worker = subprocess.Popen([sys.executable, "-m", "afterburn_core.jobs", "--home", str(store.home), run_id])
    _wait(store, run_id, _slow_running)
    worker.kill()
    worker.wait(timeout=10)
    assert reap_dead_workers(store) == [run_id]
    record = store.get_run(run_id)
    assert record.status == "failed" and "ended without finishing" in record.error
