"""Progress reports from inside an analysis, to the store and to whoever watches.

An analysis calls ``progress.update(done, total, message)`` as it works. Each
call is a cancellation point: if the run was asked to stop, it raises
``RunCancelled``. Writes to the store are throttled (at most one every
``WRITE_INTERVAL_S``, plus the last), so a tight loop costs no I/O; the
optional ``on_update`` callback (the CLI's terminal bar) sees every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from afterburn_core.errors import RunCancelled
from afterburn_core.store import RunStore

#: The dashboard polls once a second; writing 4x as often keeps the bar smooth
#: while a tensor loop with thousands of steps costs a few dozen writes a second at most.
WRITE_INTERVAL_S = 0.25

ProgressCallback = Callable[[str, int, int, str], None]


class StageReporter:
    """Reports one stage's progress of one run."""

    def __init__(self, store: RunStore, run_id: str, stage: str, on_update: ProgressCallback | None = None) -> None:
        self._store = store
        self._run_id = run_id
        self.stage = stage
        self._on_update = on_update
        self._last_write = 0.0

    def update(self, done: int, total: int, message: str = "") -> None:
        """Record that ``done`` of ``total`` units are finished; raise if cancelled."""
        if self._on_update is not None:
            self._on_update(self.stage, done, total, message)
        now = time.monotonic()
        if now - self._last_write < WRITE_INTERVAL_S and done < total:
            return
        self._last_write = now
        if self._store.cancel_requested(self._run_id):
            raise RunCancelled(f"run {self._run_id} was cancelled during {self.stage}")
        self._store.update_stage(self._run_id, self.stage, "running", done, total, message)

    def finish(self, message: str = "") -> None:
        """Mark the stage done (a cancellation after this point leaves it done)."""
        if self._on_update is not None:
            self._on_update(self.stage, 1, 1, message)
        self._store.update_stage(self._run_id, self.stage, "done", 1, 1, message)
