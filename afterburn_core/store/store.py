"""The run store: one SQLite file under ``$AFTERBURN_HOME``.

It owns runs (references, fingerprints, config, status, per-stage progress,
error, timestamps) and results (one JSON document per analysis, content
addressed by a cache key, compressed, with a sha256 checked on every read).
Every door — worker, CLI, pages, reports — reads and writes through this
class, so progress written by a worker survives a page reload.

Concurrency: WAL mode (readers never block the writer) and a busy timeout, so
several processes (the dashboard, workers, the CLI) can share the file; each
write is one short transaction, so a process killed mid-write leaves the last
committed state. It does not compute anything and knows no analysis.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from afterburn_core.errors import RunNotFound, StoreError
from afterburn_core.limits import load_json
from afterburn_core.store.migrations import migrate
from afterburn_core.types import RunRecord, StageProgress

#: Seconds a connection waits for another process's write lock before failing.
#: Writes are single short transactions (ms), so 30 s only trips on a hung peer.
BUSY_TIMEOUT_S = 30.0
STORE_FILENAME = "afterburn.sqlite3"

_RUN_COLUMNS = (
    "run_id, base_reference, trained_reference, base_fingerprint, trained_fingerprint, config_json, "
    "status, created_at, started_at, finished_at, error, worker_pid"
)


def default_home() -> Path:
    """``$AFTERBURN_HOME``, else ``~/.cache/afterburn``."""
    configured = os.environ.get("AFTERBURN_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "afterburn"


class RunStore:
    """Runs, their progress and their results, in one SQLite file."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.path = self.home / STORE_FILENAME
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute("PRAGMA foreign_keys=ON")
            migrate(self._connection)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open the run store at {self.path}: {error}") from None
        except OSError as error:
            raise StoreError(f"cannot create the run store folder {self.home}: {error.strerror}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection (the file stays)."""
        self._connection.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- low level -------------------------------------------------------------------------------

    def _failure(self, action: str, error: sqlite3.DatabaseError) -> StoreError:
        """The ``StoreError`` for a failed read or write, saying plainly when the disk is full."""
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return StoreError(
                f"run store {action} failed: the database or the disk holding it is full ({self.path}); "
                "free space on that disk (or set AFTERBURN_HOME to a folder on another) and run again"
            )
        return StoreError(f"run store {action} failed ({self.path}): {error}")

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._connection.execute(sql, params)
            except sqlite3.DatabaseError as error:
                raise self._failure("write", error) from None

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as error:
                raise self._failure("read", error) from None

    def _transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in statements:
                        self._connection.execute(sql, params)
                    self._connection.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself on some failures (a full disk, an I/O error); a ROLLBACK
                    # then raises "no transaction is active", which would hide the cause being raised here.
                    if self._connection.in_transaction:
                        with contextlib.suppress(sqlite3.DatabaseError):
                            self._connection.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as error:
                raise self._failure("write", error) from None

    # --- runs ------------------------------------------------------------------------------------

    def create_run(self, base_reference: str, trained_reference: str, config_json: str, stages: tuple[str, ...]) -> str:
        """Record a queued run with its stages pending; return its id."""
        run_id = uuid.uuid4().hex[:12]
        now = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                "INSERT INTO runs (run_id, base_reference, trained_reference, config_json, status, created_at) "
                "VALUES (?, ?, ?, ?, 'queued', ?)",
                (run_id, base_reference, trained_reference, config_json, now),
            )
        ]
        statements += [
            ("INSERT INTO stages (run_id, position, stage, status, updated_at) VALUES (?, ?, ?, 'pending', ?)",
             (run_id, position, stage, now))
            for position, stage in enumerate(stages)
        ]
        self._transaction(statements)
        return run_id

    def get_run(self, run_id: str) -> RunRecord:
        """The run with its stages; ``RunNotFound`` if there is none."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
        return self._record(rows[0], self._stages([run_id])[run_id])

    def list_runs(self, limit: int = 200) -> list[RunRecord]:
        """The newest runs first."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        stages = self._stages([row[0] for row in rows])
        return [self._record(row, stages[row[0]]) for row in rows]

    def _stages(self, run_ids: list[str]) -> dict[str, tuple[StageProgress, ...]]:
        found: dict[str, list[StageProgress]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        for run_id, stage, status, done, total, message, started_at, finished_at in self._read(
            f"SELECT run_id, stage, status, done, total, message, started_at, finished_at FROM stages "
            f"WHERE run_id IN ({marks}) ORDER BY run_id, position",
            tuple(run_ids),
        ):
            seconds = finished_at - started_at if started_at is not None and finished_at is not None else None
            found[run_id].append(StageProgress(stage, status, done, total, message, seconds))
        return {run_id: tuple(items) for run_id, items in found.items()}

    @staticmethod
    def _record(row: tuple[Any, ...], stages: tuple[StageProgress, ...]) -> RunRecord:
        return RunRecord(*row[:11], worker_pid=row[11], stages=stages)

    def delete_run(self, run_id: str) -> None:
        """Forget a run; results no other run uses are dropped too."""
        self.get_run(run_id)
        self._transaction(
            [
                ("DELETE FROM runs WHERE run_id = ?", (run_id,)),
                (
                    "DELETE FROM results WHERE cache_key NOT IN (SELECT cache_key FROM run_results)",
                    (),
                ),
            ]
        )

    def mark_started(self, run_id: str, worker_pid: int) -> None:
        """A worker took the run."""
        now = time.time()
        self._write(
            "UPDATE runs SET status = 'running', started_at = ?, worker_pid = ?, heartbeat_at = ?, error = NULL "
            "WHERE run_id = ?",
            (now, worker_pid, now, run_id),
        )

    def set_fingerprints(self, run_id: str, base_fingerprint: str, trained_fingerprint: str) -> None:
        """Record what the references resolved to."""
        self._write(
            "UPDATE runs SET base_fingerprint = ?, trained_fingerprint = ? WHERE run_id = ?",
            (base_fingerprint, trained_fingerprint, run_id),
        )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        """Close the run as done / failed / cancelled; stages still open close with it."""
        now = time.time()
        # The stage that was working takes the run's outcome; stages never reached are skipped.
        running_stage_status = {"done": "done", "failed": "failed", "cancelled": "skipped"}[status]
        self._transaction(
            [
                (
                    "UPDATE runs SET status = ?, finished_at = ?, error = ?, started_at = COALESCE(started_at, ?) "
                    "WHERE run_id = ? AND status IN ('queued', 'running')",
                    (status, now, error, now, run_id),
                ),
                (
                    "UPDATE stages SET status = CASE WHEN status = 'running' THEN ? ELSE 'skipped' END, "
                    "updated_at = ?, finished_at = CASE WHEN status = 'running' THEN ? ELSE finished_at END "
                    "WHERE run_id = ? AND status IN ('pending', 'running')",
                    (running_stage_status, now, now, run_id),
                ),
            ]
        )

    def update_stage(self, run_id: str, stage: str, status: str, done: int, total: int, message: str = "") -> None:
        """Progress of one stage; also the worker's heartbeat.

        The first write of a stage stamps when it started; a final status
        (done / failed / skipped) stamps when it ended.
        """
        now = time.time()
        ended = now if status in ("done", "failed", "skipped") else None
        self._transaction(
            [
                (
                    "UPDATE stages SET status = ?, done = ?, total = ?, message = ?, updated_at = ?, "
                    "started_at = COALESCE(started_at, ?), finished_at = ? WHERE run_id = ? AND stage = ?",
                    (status, done, total, message, now, now, ended, run_id, stage),
                ),
                ("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", (now, run_id)),
            ]
        )

    def beat(self, run_id: str) -> None:
        """The worker is alive (written by its heartbeat thread)."""
        self._write("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", (time.time(), run_id))

    def heartbeat(self, run_id: str) -> float | None:
        """When the worker last wrote (seconds since the epoch)."""
        rows = self._read("SELECT heartbeat_at FROM runs WHERE run_id = ?", (run_id,))
        return rows[0][0] if rows else None

    def request_cancel(self, run_id: str) -> None:
        """Ask the worker to stop at its next progress report."""
        self.get_run(run_id)
        self._write("UPDATE runs SET cancel_requested = 1 WHERE run_id = ?", (run_id,))

    def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked this run to stop."""
        rows = self._read("SELECT cancel_requested FROM runs WHERE run_id = ?", (run_id,))
        return bool(rows and rows[0][0])

    # --- results ---------------------------------------------------------------------------------

    def put_result(self, run_id: str | None, cache_key: str, kind: str, schema_version: int, document: Any) -> None:
        """Store one analysis result (JSON-ready ``document``) and link it to the run."""
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
        raw = text.encode("utf-8")
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                "INSERT OR REPLACE INTO results (cache_key, kind, schema_version, payload, payload_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (cache_key, kind, schema_version, zlib.compress(raw, 6), hashlib.sha256(raw).hexdigest(), time.time()),
            )
        ]
        if run_id is not None:
            statements.append(
                ("INSERT OR REPLACE INTO run_results (run_id, kind, cache_key) VALUES (?, ?, ?)", (run_id, kind, cache_key))
            )
        self._transaction(statements)

    def get_result(self, cache_key: str) -> Any | None:
        """The stored document, or None if absent — or corrupt, in which case it is dropped."""
        rows = self._read("SELECT payload, payload_sha256 FROM results WHERE cache_key = ?", (cache_key,))
        if not rows:
            return None
        payload, expected_sha256 = rows[0]
        try:
            raw = zlib.decompress(payload)
            if hashlib.sha256(raw).hexdigest() != expected_sha256:
                raise ValueError("checksum mismatch")
            return load_json(raw)
        except (zlib.error, ValueError, TypeError):
            self.drop_result(cache_key)
            return None

    def result_keys(self, kind: str, limit: int = 200) -> list[tuple[str, float]]:
        """(cache key, when stored) of the results of ``kind``, newest first: results no run links
        (a trajectory) are found this way."""
        return [(key, created_at) for key, created_at in self._read(
            "SELECT cache_key, created_at FROM results WHERE kind = ? ORDER BY created_at DESC LIMIT ?", (kind, limit))]

    def drop_result(self, cache_key: str) -> None:
        """Forget a stored result that cannot be used (corrupt, or not fitting its type): the next run recomputes it."""
        self._write("DELETE FROM results WHERE cache_key = ?", (cache_key,))

    def link_result(self, run_id: str, kind: str, cache_key: str) -> None:
        """Record that a run uses an already stored result (a cache hit)."""
        self._write("INSERT OR REPLACE INTO run_results (run_id, kind, cache_key) VALUES (?, ?, ?)", (run_id, kind, cache_key))

    def run_result_keys(self, run_id: str) -> dict[str, str]:
        """kind → cache key of every result the run has."""
        return dict(self._read("SELECT kind, cache_key FROM run_results WHERE run_id = ?", (run_id,)))

    def integrity_ok(self) -> bool:
        """SQLite's own integrity check of the file."""
        return self._read("PRAGMA integrity_check")[0][0] == "ok"
