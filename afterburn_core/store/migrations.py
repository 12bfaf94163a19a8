"""The store's schema, as an ordered registry of migrations.

``PRAGMA user_version`` holds how many migrations a store file has had;
opening a store applies the missing ones in one transaction each. A store
written by a newer afterburn (more migrations than this code knows) is refused
rather than guessed at. To change the schema, append a migration; never edit
one that has shipped.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, their stages, content-addressed results and which run uses which.
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        base_reference TEXT NOT NULL,
        trained_reference TEXT NOT NULL,
        base_fingerprint TEXT,
        trained_fingerprint TEXT,
        config_json TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        error TEXT,
        worker_pid INTEGER,
        heartbeat_at REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_created ON runs (created_at);
    CREATE TABLE stages (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        stage TEXT NOT NULL,
        status TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, stage)
    );
    CREATE TABLE results (
        cache_key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        payload_sha256 TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE run_results (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        cache_key TEXT NOT NULL,
        PRIMARY KEY (run_id, kind)
    );
    """,
    # 2: when each stage started and ended, for per-stage timings in reports and benchmarks.
    """
    ALTER TABLE stages ADD COLUMN started_at REAL;
    ALTER TABLE stages ADD COLUMN finished_at REAL
    """,
)


def migrate(connection: sqlite3.Connection) -> int:
    """Bring ``connection``'s schema up to date; return the version it is at."""
    from afterburn_core.errors import StoreError

    current = connection.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        raise StoreError(
            f"the run store has schema version {current}, newer than this afterburn knows "
            f"({len(MIGRATIONS)}); upgrade afterburn or point AFTERBURN_HOME elsewhere"
        )
    for version in range(current, len(MIGRATIONS)):
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if connection.execute("PRAGMA user_version").fetchone()[0] > version:
                connection.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
