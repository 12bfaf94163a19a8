"""The run store on real SQLite files, with real concurrent and killed processes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from waits import HANG_S

from afterburn_core.errors import RunNotFound, StoreError
from afterburn_core.store import RunStore, cache_key
from afterburn_core.store.migrations import MIGRATIONS
from afterburn_core.store.store import STORE_FILENAME


def test_store_is_wal_with_busy_timeout(store: RunStore) -> None:
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store._connection.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_run_lifecycle_and_stage_progress(store: RunStore) -> None:
    run_id = store.create_run("demo:base", "demo:trained", '{"method": "sft"}', ("resolve", "inventory"))
    record = store.get_run(run_id)
    assert record.status == "queued" and [s.stage for s in record.stages] == ["resolve", "inventory"]
    store.mark_started(run_id, 4242)
    store.update_stage(run_id, "resolve", "done", 2, 2, "resolved")
    store.update_stage(run_id, "inventory", "running", 3, 10, "reading")
    record = store.get_run(run_id)
    assert record.status == "running" and record.worker_pid == 4242
    assert record.stages[0].seconds is not None and record.stages[0].seconds >= 0
    assert record.stages[1].seconds is None  # still working
    assert record.stages[1].fraction == pytest.approx(0.3) and record.stages[1].message == "reading"
    store.finish_run(run_id, "failed", "disk on fire")
    record = store.get_run(run_id)
    assert (record.status, record.error) == ("failed", "disk on fire")
    assert [s.status for s in record.stages] == ["done", "failed"]
    assert record.stages[1].seconds is not None and record.stages[1].seconds >= 0
    assert record.duration_s is not None and record.duration_s >= 0
    # A finished run is not reopened by a late writer.
    store.finish_run(run_id, "done")
    assert store.get_run(run_id).status == "failed"


def test_results_are_found_by_key_and_survive_reopen(afterburn_home: Path) -> None:
    key = cache_key("inventory", 1, ("fa", "fb"), {})
    with RunStore(afterburn_home) as store:
        run_id = store.create_run("a", "b", "{}", ("inventory",))
        store.put_result(run_id, key, "inventory", 1, {"x": [1, 2.5, "é"]})
    with RunStore(afterburn_home) as store:
        assert store.get_result(key) == {"x": [1, 2.5, "é"]}
        assert store.run_result_keys(run_id) == {"inventory": key}


def test_cache_key_changes_with_every_part() -> None:
    key = cache_key("weights", 1, ("a", "b"), {"exact_spectra": False})
    assert key == cache_key("weights", 1, ("a", "b"), {"exact_spectra": False})
    assert len({
        key,
        cache_key("behaviour", 1, ("a", "b"), {"exact_spectra": False}),
        cache_key("weights", 2, ("a", "b"), {"exact_spectra": False}),
        cache_key("weights", 1, ("a", "c"), {"exact_spectra": False}),
        cache_key("weights", 1, ("b", "a"), {"exact_spectra": False}),
        cache_key("weights", 1, ("a", "b"), {"exact_spectra": True}),
    }) == 6


def test_corrupt_result_is_dropped_not_returned(store: RunStore) -> None:
    key = cache_key("inventory", 1, ("x",), {})
    store.put_result(None, key, "inventory", 1, {"ok": True})
    raw = sqlite3.connect(store.path, isolation_level=None)
    raw.execute("UPDATE results SET payload = ? WHERE cache_key = ?", (b"\x78\x9c garbage", key))
    assert store.get_result(key) is None
    assert raw.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    # A payload that decompresses but does not match its checksum (a torn or edited write).
    import zlib

    store.put_result(None, key, "inventory", 1, {"ok": True})
    raw.execute("UPDATE results SET payload = ? WHERE cache_key = ?", (zlib.compress(b'{"ok":false}'), key))
    assert store.get_result(key) is None


def test_store_of_an_older_schema_is_migrated_in_place(afterburn_home: Path) -> None:
    path = afterburn_home / STORE_FILENAME
    afterburn_home.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    old.execute("INSERT INTO runs (run_id, base_reference, trained_reference, config_json, status, created_at) "
                "VALUES ('r1', 'a', 'b', '{}', 'done', 1.0)")
    old.execute("INSERT INTO stages (run_id, position, stage, status, updated_at) VALUES ('r1', 0, 'resolve', 'done', 1)")
    old.commit()
    old.close()
    with RunStore(afterburn_home) as store:
        assert store.path == path
        assert store.get_run("r1").stages[0].seconds is None  # a stage timed before timings existed
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_unknown_run_and_newer_schema_are_clear_errors(afterburn_home: Path) -> None:
    with RunStore(afterburn_home) as store:
        with pytest.raises(RunNotFound, match="no run with id 'nope'"):
            store.get_run("nope")
        path = store.path
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this afterburn knows"):
        RunStore(afterburn_home)


def test_delete_run_drops_orphan_results_only(store: RunStore) -> None:
    shared, own = cache_key("k", 1, ("s",), {}), cache_key("k", 1, ("o",), {})
    first = store.create_run("a", "b", "{}", ("k",))
    second = store.create_run("a", "b", "{}", ("k",))
    store.put_result(first, own, "k", 1, {"v": 1})
    store.put_result(second, shared, "k", 1, {"v": 2})
    store.link_result(first, "k2", shared)
    store.delete_run(first)
    assert store.get_result(own) is None and store.get_result(shared) == {"v": 2}
    assert [r.run_id for r in store.list_runs()] == [second]


_WRITER = textwrap.dedent(
    """
    import sys
    from afterburn_core.store import RunStore, cache_key
    home, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with RunStore(home) as store:
        for i in range(count):
            run_id = store.create_run(f"{tag}-base", f"{tag}-trained", "{}", ("inventory",))
            store.update_stage(run_id, "inventory", "running", i, count, tag)
            store.put_result(run_id, cache_key("inventory", 1, (tag, str(i)), {}), "inventory", 1,
                             {"tag": tag, "i": i, "pad": "x" * 20000})
            store.finish_run(run_id, "done")
    """
)


def _writer(home: Path, tag: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(home), tag, str(count)], stderr=subprocess.PIPE)


def test_two_processes_writing_at_once_lose_nothing(afterburn_home: Path) -> None:
    RunStore(afterburn_home).close()
    writers = [_writer(afterburn_home, tag, 60) for tag in ("left", "right")]
    for writer in writers:
        _, stderr = writer.communicate(timeout=HANG_S)
        assert writer.returncode == 0, stderr.decode()
    with RunStore(afterburn_home) as store:
        records = store.list_runs(limit=1000)
        assert len(records) == 120 and all(r.status == "done" for r in records)
        for tag in ("left", "right"):
            for i in range(60):
                assert store.get_result(cache_key("inventory", 1, (tag, str(i)), {}))["i"] == i


def test_process_killed_mid_write_leaves_a_readable_store(afterburn_home: Path) -> None:
    RunStore(afterburn_home).close()
    writer = _writer(afterburn_home, "doomed", 100_000)
    deadline = time.time() + HANG_S  # the loop ends once 20 runs are written
    with RunStore(afterburn_home) as store:
        while len(store.list_runs(limit=50)) < 20 and time.time() < deadline:
            time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    with RunStore(afterburn_home) as store:
        assert store.integrity_ok()
        records = store.list_runs(limit=100_000)
        assert len(records) >= 20
        for record in records:
            for key in store.run_result_keys(record.run_id).values():
                assert store.get_result(key)["tag"] == "doomed"
        # And it still takes writes.
        store.create_run("after", "kill", "{}", ())
