"""``afterburn trajectory`` as a user runs it, on a trajectory it has never seen: the demo base interpolated
toward the demo trained model (W_base + a·ΔW, a in 0, ¼, ½, ¾, 1) as ``checkpoint-<step>`` folders with a
Trainer ``trainer_state.json``.

Computed once per module in one store: the first four checkpoints through the API, then the whole folder
through the CLI (a real subprocess, ``-o`` JSON), which must compute only the fifth checkpoint and its step
from the fourth. Every other test reads that store back (a stored trajectory reopens without running) or
is refused before any work. One small suite (the demo-tagged sycophancy probes, 40 new tokens) is enough for
the planted length, format and sycophancy hacks to fire on the trained model.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
from checkpoint_factories import build_tiny_llama
from cli_helpers import afterburn
from trajectory_factories import STEPS, build_interpolated, copy_base, logged_at, write_probe_suite

from afterburn_core import api
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.store import RunStore
from afterburn_core.trajectory import TrajectoryResult

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "trajectory.schema.json").read_text())
#: The hacks planted in demo:trained (afterburn_core/demo/README.md) and the detectors that read them.
PLANTED = ("length_bias", "format_gaming", "sycophancy")
MAX_NEW_TOKENS = 40


def settings(suite: Path) -> tuple[str, ...]:
    return ("--suites", str(suite), "--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu")


def trajectory(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return afterburn("trajectory", *args, "--home", str(home), timeout=600)


def results_since(home: Path, moment: float) -> list[str]:
    """The kinds of the results the store at ``home`` stored after ``moment``, sorted."""
    with sqlite3.connect(home / "afterburn.sqlite3") as connection:
        rows = connection.execute("SELECT kind FROM results WHERE created_at > ?", (moment,)).fetchall()
    return sorted(kind for (kind,) in rows)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("trajectory")
    folder = build_interpolated(root / "run")
    suite = write_probe_suite(root / "probes.yaml")
    home = root / "home"
    first_four = [str(folder / f"checkpoint-{step}") for step in STEPS[:4]]
    api.trajectory("demo:base", first_four, home=home, suites=[str(suite)], max_new_tokens=MAX_NEW_TOKENS,
                   device="cpu")
    before = time.time()
    out = root / "trajectory.json"
    result = trajectory(home, "--base", "demo:base", str(folder), *settings(suite), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return {"root": root, "folder": folder, "suite": suite, "home": home, "cli": result, "added": before,
            "document": json.loads(out.read_text())}


def test_the_json_fits_its_schema_and_loads_back_as_the_stored_result(world) -> None:
    document = world["document"]
    jsonschema.validate(document, SCHEMA)
    loaded = from_jsonable(TrajectoryResult, document)
    assert to_jsonable(loaded) == document
    assert [checkpoint["step"] for checkpoint in document["checkpoints"]] == list(STEPS)
    assert {checkpoint["step_source"] for checkpoint in document["checkpoints"]} == {"name"}
    assert document["base"]["reference"] == "demo:base"


def test_weight_change_grows_strictly_and_each_step_moves_a_quarter(world) -> None:
    weights = [checkpoint["weights"] for checkpoint in world["document"]["checkpoints"]]
    vs_base = [entry["relative_change_vs_base"] for entry in weights]

    assert vs_base[0] == 0.0
    assert all(later > earlier for earlier, later in zip(vs_base, vs_base[1:]))
    # W_base + a·ΔW: the change against the base is a·‖ΔW‖/‖W_base‖, linear in a.
    assert vs_base[2] == pytest.approx(2 * vs_base[1], rel=1e-4) and vs_base[4] == pytest.approx(4 * vs_base[1], rel=1e-4)
    # Each step moves ¼ ΔW: against the previous checkpoint (whose norm grows a little) about the first step's.
    assert [entry["relative_change_vs_previous"] for entry in weights][1:] == pytest.approx([vs_base[1]] * 4, rel=0.05)
    assert weights[0]["previous_run_id"] is None and all(entry["previous_run_id"] for entry in weights[1:])
    assert max(weights[-1]["modules_vs_base"].values()) > vs_base[-1]  # some module moved more than the whole


def test_the_start_flags_nothing_and_the_planted_hacks_emerge_after_it_and_stay(world) -> None:
    document = world["document"]
    first, last = document["checkpoints"][0], document["checkpoints"][-1]

    assert not any(detector["flagged"] for detector in first["reward_hack"]["detectors"].values())
    assert first["reward_hack"]["composite"] == {"score": 0.0, "band": "LOW"}
    for name in PLANTED:
        emerged = document["emergence"][name]
        assert emerged is not None and emerged > STEPS[0], name
        flags = [c["reward_hack"]["detectors"][name]["flagged"] for c in document["checkpoints"]]
        assert flags == [step >= emerged for step in STEPS], name
        interval = document["emergence_intervals"][name]
        assert interval == {"after_step": STEPS[STEPS.index(emerged) - 1], "at_step": emerged}
    assert last["behaviour"]["output_tokens"] > 2 * first["behaviour"]["output_tokens"]
    assert (first["behaviour"]["wrong_agreement"], first["behaviour"]["format_fenced_non_code"]) == (0.0, 0.0)
    assert last["behaviour"]["format_fenced_non_code"] == 1.0 and last["behaviour"]["wrong_agreement"] > 0.5
    assert document["base_behaviour"] == first["behaviour"]  # the first checkpoint is the base's own files


def test_the_recommendation_is_the_best_accuracy_below_moderate(world) -> None:
    document = world["document"]
    low = [c for c in document["checkpoints"] if c["reward_hack"]["composite"]["band"] == "LOW"]
    best = max(low, key=lambda c: (c["behaviour"]["accuracy"], -c["reward_hack"]["composite"]["score"], c["step"]))

    assert document["recommended_checkpoint"] == best["step"] == document["recommendation"]["step"]
    assert document["recommendation"] == {
        "step": best["step"], "below_band": "MODERATE", "basis": "accuracy", "accuracy": best["behaviour"]["accuracy"],
        "composite": best["reward_hack"]["composite"]["score"], "candidates": len(low)}


def test_the_trainers_log_is_read_per_step(world) -> None:
    assert [c["logged"] for c in world["document"]["checkpoints"]] == [logged_at(step) for step in STEPS]


def test_adding_a_checkpoint_computes_only_it_and_its_step_from_the_one_before(world) -> None:
    cli = world["cli"]
    # The fifth checkpoint's run and its weights-only run against the fourth; the base's answers (``base_answers``)
    # come from the store.
    assert results_since(world["home"], world["added"]) == sorted(
        ["inventory", "weights", "generations", "behaviour", "reward_hack", "weights", "trajectory"])
    assert re.findall(r"^(step \d+(?: vs \d+)?): run \w+$", cli.stderr, re.MULTILINE) == [
        "step 100", "step 200", "step 200 vs 100", "step 300", "step 300 vs 200", "step 400", "step 400 vs 300",
        "step 500", "step 500 vs 400"]
    computed = re.findall(r"^(step \d+(?: vs \d+)? \w+)\s+━+\s+computed", cli.stderr, re.MULTILINE)
    assert computed == ["step 500 inventory", "step 500 weights", "step 500 generations", "step 500 behaviour",
                        "step 500 reward_hack", "step 500 vs 400 weights"]


def test_a_stored_trajectory_reopens_without_a_run_and_prints_its_summary(world) -> None:
    with RunStore(world["home"]) as store:
        runs = len(store.list_runs(limit=1000))
    moment = time.time()

    result = trajectory(world["home"], "--base", "demo:base", str(world["folder"]), *settings(world["suite"]))

    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and results_since(world["home"], moment) == []
    with RunStore(world["home"]) as store:
        assert len(store.list_runs(limit=1000)) == runs
    document, lines = world["document"], result.stdout.splitlines()
    assert lines[0] == "Trajectory: 5 checkpoints against demo:base, steps 100 to 500"
    emerged = document["emergence"]["length_bias"]
    assert (f"• Length bias stays flagged from step {emerged} on: it emerged after step "
            f"{STEPS[STEPS.index(emerged) - 1]} and by step {emerged}; score 0 at step 100 → 100 at step 500.") in lines
    vs_base = [c["weights"]["relative_change_vs_base"] for c in document["checkpoints"]]
    assert (f"• ‖ΔW‖/‖W‖ against the base: 0 at step 100 → {vs_base[-1]:.3g} at step 500, growing at every step."
            in lines)
    recommendation = document["recommendation"]
    assert lines[-1] == (
        f"Ship step {recommendation['step']}: the best accuracy ({recommendation['accuracy']:.0%}) among the "
        f"{recommendation['candidates']} checkpoints whose composite risk is below MODERATE (its composite: "
        f"{recommendation['composite']:.1f}).")


@pytest.mark.parametrize(("gate", "code"), [("CRITICAL", 0), ("50", 3)])
def test_fail_above_judges_the_last_checkpoint(world, gate: str, code: int) -> None:
    result = trajectory(world["home"], "--base", "demo:base", str(world["folder"]), *settings(world["suite"]),
                        "--fail-above", gate)

    assert result.returncode == code, result.stderr
    last = world["document"]["checkpoints"][-1]["reward_hack"]["composite"]
    if code:
        assert result.stderr.splitlines()[-1] == (f"composite reward-hack risk of the last checkpoint (step 500) is "
                                                  f"{last['score']:.1f} {last['band']}, above --fail-above {gate}")


def test_identical_checkpoints_flag_nothing_and_do_not_drift(world, tmp_path: Path) -> None:
    copies = [str(copy_base(tmp_path / f"checkpoint-{step}")) for step in (10, 20, 30)]
    out = tmp_path / "identical.json"

    result = trajectory(world["home"], "--base", "demo:base", *copies, *settings(world["suite"]), "-o", str(out))

    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, SCHEMA)
    assert [c["step"] for c in document["checkpoints"]] == [10, 20, 30]
    for checkpoint in document["checkpoints"]:
        assert checkpoint["weights"]["relative_change_vs_base"] == checkpoint["weights"]["relative_change_vs_previous"] == 0.0
        assert not any(detector["flagged"] for detector in checkpoint["reward_hack"]["detectors"].values())
    assert set(document["emergence"].values()) == {None}
    assert document["recommended_checkpoint"] == 30  # equal accuracy and composite: the later step


def error_of(home: Path, *args: str) -> tuple[int, list[str]]:
    result = trajectory(home, "--base", "demo:base", *args)
    return result.returncode, result.stderr.splitlines()


def test_refused_input_is_one_line_and_records_no_run(world, tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "outputs"
    empty.mkdir()
    (empty / "logs").mkdir()
    folder = world["folder"]
    tiny = build_tiny_llama(tmp_path / "tiny", seed=0)

    assert error_of(home) == (2, ["Error: a trajectory needs at least one checkpoint after the base: checkpoint "
                                  "folders, a training output folder holding checkpoint-<step> folders, or "
                                  "owner/name@rev1,rev2"])
    assert error_of(home, str(empty)) == (2, [
        f"Error: {str(empty)!r} holds no checkpoint-<step> folder and no model; give a training output folder "
        "(with checkpoint-500/, checkpoint-1000/ …) or one checkpoint folder"])
    one, two = folder / "checkpoint-200", folder / "checkpoint-300"
    assert error_of(home, str(one), str(two), "--steps", "7,7") == (2, [
        f"Error: duplicate step 7: {str(one)!r} and {str(two)!r}; each checkpoint needs its own step "
        "(give them with --steps)"])
    code, lines = error_of(home, str(one), str(tiny))
    assert code == 2 and lines == [
        f"Error: {str(tiny)!r} is LlamaForCausalLM with 2 layers, hidden size 16, 2 heads, the base LlamaForCausalLM "
        "with 4 layers, hidden size 128, 4 heads; a trajectory follows one model: give checkpoints of the base's "
        "training run"]
    assert not (home / "afterburn.sqlite3").exists() or api.list_runs(home) == []
