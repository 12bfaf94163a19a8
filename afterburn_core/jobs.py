"""Analyses in a worker process: launch, watch, cancel, and notice death.

The dashboard must not compute in its page script (a rerun or a closed tab
would kill the work, and model memory would stay in the server), so a run is
executed by ``python -m afterburn_core.jobs <run_id>``: a separate process
that writes progress and results to the store and frees everything on exit.
The CLI runs the same ``runner.execute_run`` in the foreground instead.

A worker can die without saying so (SIGKILL, out of memory). Two guards turn
that into a failed run with its reason: the launcher's monitor thread waits
for the process and records its exit signal or code; and any reader calling
``reap_dead_workers`` marks runs whose worker process is gone, or whose
heartbeat stopped, as failed (for workers whose launcher died too).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from afterburn_core.analyses import stages_for
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AfterburnError, RunCancelled, StoreError
from afterburn_core.runner import execute_run, given_reference
from afterburn_core.store import RunStore
from afterburn_core.views.text import plain_text

#: The worker writes a heartbeat this often, from a thread, even inside one long step.
HEARTBEAT_INTERVAL_S = 5.0
#: A running run whose heartbeat is older than this is dead even if its pid exists
#: (the pid may have been reused). 12 missed beats: survives a stalled disk, not a dead worker.
HEARTBEAT_STALE_S = 60.0
#: A queued run no worker picked up within this long failed to start (interpreter start
#: plus imports take 1-3 s here; 60 s covers a loaded machine).
QUEUED_STALE_S = 60.0


def create_run(
    store: RunStore,
    base_reference: str,
    trained_reference: str,
    config: AnalysisConfig,
    analyses: tuple[str, ...] | None = None,
) -> str:
    """Record a queued run of ``analyses`` (None: all); return its id. Nothing is computed yet.

    Its inputs are checked when it starts (``runner.check_inputs``), before any stage; a door
    that can wait for that check (the API) makes it first, so refused input records no run.
    """
    base_reference, trained_reference = given_reference("base", base_reference), given_reference("trained", trained_reference)
    return store.create_run(base_reference, trained_reference, config.to_json(), stages_for(analyses))


def launch_worker(store: RunStore, run_id: str) -> subprocess.Popen[bytes]:
    """Start the worker process for a queued run and watch it from a daemon thread."""
    log_path = store.home / "logs" / f"{run_id}.worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "afterburn_core.jobs", "--home", str(store.home), run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    threading.Thread(target=_watch, args=(store.home, run_id, process), daemon=True).start()
    return process


def _watch(home: Path, run_id: str, process: subprocess.Popen[bytes]) -> None:
    code = process.wait()
    with RunStore(home) as store:
        if store.get_run(run_id).is_active:
            store.finish_run(run_id, "failed", _death_reason(process.pid, code))


def _death_reason(pid: int, code: int) -> str:
    if code < 0:
        return f"worker process {pid} was killed by {signal.Signals(-code).name} before finishing"
    return f"worker process {pid} exited with code {code} before finishing"


def cancel_run(store: RunStore, run_id: str) -> None:
    """Ask a run to stop; its worker stops at its next progress report or on SIGTERM."""
    record = store.get_run(run_id)
    if not record.is_active:
        return
    store.request_cancel(run_id)
    if record.worker_pid is None:
        store.finish_run(run_id, "cancelled", "cancelled before a worker started")
    elif _process_alive(record.worker_pid):
        try:
            os.kill(record.worker_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def reap_dead_workers(store: RunStore) -> list[str]:
    """Mark active runs whose worker is gone as failed; return their ids.

    A store that takes no write (a full disk) is still read: such a run stays as it is until a
    later call can record it.
    """
    reaped = []
    now = time.time()
    for record in store.list_runs():
        if not record.is_active:
            continue
        reason = None
        if record.worker_pid is None:
            if now - record.created_at > QUEUED_STALE_S:
                reason = f"no worker picked the run up within {QUEUED_STALE_S:.0f} s"
        elif not _process_alive(record.worker_pid):
            reason = f"worker process {record.worker_pid} ended without finishing (killed or crashed)"
        else:
            heartbeat = store.heartbeat(record.run_id)
            if heartbeat is not None and now - heartbeat > HEARTBEAT_STALE_S:
                reason = f"worker process {record.worker_pid} stopped reporting for {now - heartbeat:.0f} s"
        if reason is not None:
            try:
                store.finish_run(record.run_id, "failed", reason)
            except StoreError:
                continue
            reaped.append(record.run_id)
    return reaped


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state not in ("Z", "X")
    return True


def _heartbeat(home: Path, run_id: str, stop: threading.Event) -> None:
    with RunStore(home) as store:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            store.beat(run_id)


def _raise_cancelled(signum: int, frame: object) -> None:
    raise RunCancelled("cancelled by SIGTERM")


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: execute one run, exit 0 when it ended done/cancelled, 1 when it failed."""
    parser = argparse.ArgumentParser(prog="python -m afterburn_core.jobs")
    parser.add_argument("--home", required=True)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_cancelled)
    stop = threading.Event()
    try:
        with RunStore(args.home) as store:
            threading.Thread(target=_heartbeat, args=(Path(args.home), args.run_id, stop), daemon=True).start()
            status = execute_run(store, args.run_id)
    except AfterburnError as error:
        print(f"Error: {plain_text(error, keep='')}", file=sys.stderr)
        return 1
    finally:
        stop.set()
    return 0 if status in ("done", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
