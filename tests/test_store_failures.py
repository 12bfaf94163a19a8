"""Nothing is written for refused input, and a failure of the store says why.

A checkpoint or suite refused while the inputs are checked leaves no run and
no result; a full disk (the store capped at its size with SQLite's
``max_page_count``, in a real ``afterburn`` subprocess) is named as such,
the run ends failed and ``runs list`` still works; a stored result whose
checksum holds but whose content does not fit its type is dropped and
computed again.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from cli_helpers import afterburn

from afterburn_core import api
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import BadCheckpoint, BadPromptSuite, UnsafeCheckpoint
from afterburn_core.jobs import create_run
from afterburn_core.runner import execute_run
from afterburn_core.store import RunStore


def _stored(home: Path) -> tuple[list, int]:
    """The runs and the number of results the store at ``home`` holds (it may not exist yet)."""
    with RunStore(home) as store:
        return store.list_runs(), store._read("SELECT COUNT(*) FROM results")[0][0]


def test_a_missing_checkpoint_records_no_run(afterburn_home: Path, tmp_path: Path) -> None:
    result = afterburn("weight-diff", "--base", "demo", "--trained", str(tmp_path / "nope"))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"Error: no folder or file at {tmp_path / 'nope'}; check the path "
                                          "(a Hugging Face model is written owner/name)."]
    assert _stored(afterburn_home) == ([], 0)
    assert "no runs yet" in afterburn("runs", "list").stdout


def test_a_refused_pickle_or_config_records_no_run(afterburn_home: Path, tmp_path: Path, tiny_pair) -> None:
    from checkpoint_factories import write_malicious_pickle

    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "config.json").write_text((tiny_pair[0] / "config.json").read_text())
    marker = tmp_path / "pwned"
    write_malicious_pickle(evil / "pytorch_model.bin", marker)
    with pytest.raises(UnsafeCheckpoint, match="pytorch_model.bin"):
        api.weight_diff(tiny_pair[0], evil)
    assert not marker.exists()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((tiny_pair[1] / "model.safetensors").read_bytes())
    (broken / "config.json").write_text("{")
    with pytest.raises(BadCheckpoint, match="config.json"):
        api.diagnose(tiny_pair[0], broken)

    assert _stored(afterburn_home) == ([], 0)


@pytest.fixture
def bad_suite(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nversion: 1\nprompts: 5\n")
    return path


def test_a_bad_suite_is_refused_before_any_stage(afterburn_home: Path, tiny_pair, bad_suite: Path) -> None:
    with pytest.raises(BadPromptSuite, match="bad.yaml"):
        api.diagnose(tiny_pair[0], tiny_pair[1], suites=str(bad_suite))
    assert _stored(afterburn_home) == ([], 0)  # inventory and weights were computed and stored before


def test_check_resolves_the_pair_and_records_nothing(afterburn_home: Path, tiny_pair, bad_suite: Path) -> None:
    checked = api.Diagnoser(*tiny_pair).check("weights")  # what the New run page can call before launching
    assert (checked.base.root, checked.trained.root) == tuple(map(str, tiny_pair))
    with pytest.raises(BadPromptSuite, match="bad.yaml"):
        api.Diagnoser(*tiny_pair, suites=str(bad_suite)).check()
    api.Diagnoser(*tiny_pair, suites=str(bad_suite)).check("weights")  # a weight diff reads no suite
    assert not afterburn_home.exists()


def test_a_worker_checks_the_suite_before_any_stage(store: RunStore, tiny_pair, bad_suite: Path) -> None:
    run_id = create_run(store, str(tiny_pair[0]), str(tiny_pair[1]), AnalysisConfig(suites=(str(bad_suite),)))

    assert execute_run(store, run_id) == "failed"

    record = store.get_run(run_id)
    assert "bad.yaml" in record.error
    assert [stage.status for stage in record.stages] == ["failed"] + ["skipped"] * (len(record.stages) - 1)
    assert store._read("SELECT COUNT(*) FROM results")[0][0] == 0


# --- a full disk --------------------------------------------------------------------------------------

#: Loaded by every Python started with it on PYTHONPATH: each SQLite connection may not grow its file,
#: as on a disk with no room left (SQLITE_FULL, the error a full disk gives).
_FULL_DISK = textwrap.dedent(
    """
    import sqlite3

    _connect = sqlite3.connect

    def _full(*args, **kwargs):
        connection = _connect(*args, **kwargs)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return connection

    sqlite3.connect = _full
    """
)


def test_a_full_disk_is_named_and_the_run_ends_failed(afterburn_home: Path, tmp_path: Path, tiny_pair,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    RunStore(afterburn_home).close()  # an empty store: its tables have room for a run, not for a result
    site = tmp_path / "full-disk-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_FULL_DISK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))

    result = afterburn("weight-diff", "--base", str(tiny_pair[0]), "--trained", str(tiny_pair[1]))

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: run store write failed: the database or the disk holding it is full "
                      f"({afterburn_home / 'afterburn.sqlite3'}); free space on that disk (or set AFTERBURN_HOME "
                      "to a folder on another) and run again"], result.stderr
    listed = afterburn("runs", "list")  # still on the full disk
    assert listed.returncode == 0 and "failed" in listed.stdout and "running" not in listed.stdout
    monkeypatch.delenv("PYTHONPATH")
    (run,), _ = _stored(afterburn_home)
    assert run.status == "failed" and "is full" in run.error


# --- stored results that do not fit their type --------------------------------------------------------


def _damaged(document: dict, how: str) -> dict:
    if how == "missing field":
        return {key: value for key, value in document.items() if key != "tensors"}
    return {**document, "tensors": "not a list"}


@pytest.mark.parametrize("how", ["missing field", "wrong type"])
def test_a_result_that_does_not_fit_its_type_is_recomputed(afterburn_home: Path, tiny_pair, how: str) -> None:
    from afterburn_core.weights.types import WeightDiffResult

    first = api.Diagnoser(*tiny_pair).run("weights")
    with RunStore(afterburn_home) as store:
        key = store.run_result_keys(first.run_id)["weights"]
        document = store.get_result(key)
        # Written through the store, so its sha256 matches: only its content is wrong.
        store.put_result(None, key, "weights", WeightDiffResult.SCHEMA_VERSION, _damaged(document, how))

    assert api.load_run(first.run_id).weights is None  # a KeyError / TypeError before
    second = api.Diagnoser(*tiny_pair).run("weights")

    stages = {stage.stage: stage for stage in second.report.run.stages}
    assert stages["weights"].message == "computed"
    assert [tensor.name for tensor in second.weights.tensors] == [tensor.name for tensor in first.weights.tensors]
