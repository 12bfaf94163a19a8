"""The API's function per CLI verb: typed results, one store shared with the CLI, no second resolution.

Each function runs on the real demo pair in a store of this module; the CLI
verb of the same name then runs the same pair and settings against that store
and must find its analyses cached and write the same document.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import afterburn

from afterburn_core import api
from afterburn_core.behaviour.report import BehaviourReport
from afterburn_core.errors import BadInput, RunNotFound
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.serde import to_jsonable
from afterburn_core.types import CheckpointSummary
from afterburn_core.weights.types import WeightDiffResult

GENERATION = {"suites": ("math",), "max_new_tokens": 16}
CLI_GENERATION = ("--suites", "math", "--max-new-tokens", "16")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-verbs-home")


def bars(stderr: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)\s+━+\s+(\w+)", stderr, re.MULTILINE))


def test_weight_diff_is_typed_and_the_cli_reads_the_same_result(home: Path, tmp_path: Path) -> None:
    started: list[tuple[str, Path]] = []
    result = api.weight_diff("demo", "demo:control", home=home, spectrum_top_k=8,
                             on_start=lambda run_id, path: started.append((run_id, path)))

    assert isinstance(result, WeightDiffResult) and result.tensors
    assert result.base.reference == "demo:base" and result.trained.reference == "demo:control"
    assert len(started) == 1 and started[0][1].parent == home
    out = tmp_path / "weights.json"
    cli = afterburn("weight-diff", "--base", "demo", "--trained", "demo:control", "--top-k", "8", "--home", str(home),
                    "-o", str(out))
    assert cli.returncode == 0, cli.stderr
    assert bars(cli.stderr)["weights"] == "cached"
    assert json.loads(out.read_text()) == json.loads(json.dumps(to_jsonable(result)))


def test_behaviour_names_the_checkpoints_its_run_resolved_once(home: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import afterburn_core.checkpoints as checkpoints

    resolutions: list[tuple[str, str]] = []
    resolve_pair = checkpoints.resolve_pair

    def counted(base: str, trained: str, **kwargs):
        resolutions.append((base, trained))
        return resolve_pair(base, trained, **kwargs)

    monkeypatch.setattr(checkpoints, "resolve_pair", counted)
    report = api.behaviour("demo", "demo", home=home, **GENERATION)

    # The run's own resolution, not a second one for the document; a bare "demo" is recorded spelled out.
    assert resolutions == [("demo:base", "demo:trained")]
    assert isinstance(report, BehaviourReport) and set(report.suites) == {"math"}
    assert (report.base.reference, report.base.kind) == ("demo:base", "local_dir")
    assert report.trained.reference == "demo:trained" and len(report.trained.fingerprint) == 64
    runs = api.list_runs(home)
    assert (runs[0].base_fingerprint, runs[0].trained_fingerprint) == (report.base.fingerprint,
                                                                       report.trained.fingerprint)
    out = tmp_path / "behaviour.json"
    cli = afterburn("behaviour", "--base", "demo", "--trained", "demo", *CLI_GENERATION, "--home", str(home),
                    "-o", str(out))
    assert cli.returncode == 0, cli.stderr
    assert set(bars(cli.stderr).values()) <= {"resolved", "cached"}
    assert json.loads(out.read_text()) == json.loads(json.dumps(to_jsonable(report)))


def test_hack_check_is_typed_and_shares_the_store(home: Path) -> None:
    result = api.hack_check("demo", "demo", home=home, method="sft", **GENERATION)

    assert isinstance(result, RewardHackResult) and result.method == "sft"
    listed = afterburn("runs", "list", "--home", str(home))
    assert all(run.run_id in listed.stdout for run in api.list_runs(home))


def test_inspect_returns_the_summary_the_cli_prints() -> None:
    summary = api.inspect("demo:base")

    assert isinstance(summary, CheckpointSummary) and summary.checkpoint.kind == "local_dir"
    shown = json.loads(afterburn("inspect", "demo:base", "--json").stdout)
    assert shown == json.loads(json.dumps(to_jsonable(summary)))


def test_delete_run_forgets_a_finished_run_and_refuses_an_active_one(tmp_path: Path) -> None:
    from afterburn_core.config import AnalysisConfig
    from afterburn_core.jobs import create_run
    from afterburn_core.store import RunStore

    with RunStore(tmp_path) as store:
        queued = create_run(store, "demo", "demo", AnalysisConfig(), ("inventory",))
    with pytest.raises(BadInput, match=f"run {queued} is still working; cancel it first"):
        api.delete_run(queued, tmp_path)
    with RunStore(tmp_path) as store:
        store.finish_run(queued, "cancelled", "test")
    api.delete_run(queued, tmp_path)
    with pytest.raises(RunNotFound):
        api.delete_run(queued, tmp_path)


def test_every_pair_verb_of_the_cli_is_an_api_function_of_its_name() -> None:
    import afterburn_core
    from afterburn_core.cli import main

    # A pair verb takes --base and --trained (``trajectory`` takes a base and many checkpoints).
    pair_verbs = {name for name, command in main.commands.items()
                  if {"base_reference", "trained_reference"} <= {param.name for param in command.params}}
    assert {verb.replace("-", "_") for verb in pair_verbs} == set(api.VERB_ANALYSES)
    for name in (*api.VERB_ANALYSES, "inspect", "list_runs", "delete_run"):
        assert callable(getattr(api, name))
        if name not in ("behaviour", "internals"):  # afterburn_core.<name> is the package that computes it
            assert getattr(afterburn_core, name) is getattr(api, name)
