"""The trajectory's parts that need no model: discovering checkpoints and steps on a real disk, emergence
points and the recommendation over hand-made records, and the readings the view words from them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from afterburn_core.errors import BadCheckpoint, BadInput
from afterburn_core.trajectory import discover
from afterburn_core.trajectory.emergence import emergence, recommend
from afterburn_core.trajectory.types import (
    CheckpointSpec, CompositeStep, DetectorStep, EmergenceInterval, RewardHackStep, TrajectoryCheckpoint,
    TrajectoryResult, WeightDrift,
)
from afterburn_core.reward_hack.scoring import band_of
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.types import CheckpointRef
from afterburn_core.views.trajectory import Point, trajectory_view, value_span


def model_folder(folder: Path, state: dict | None = None) -> Path:
    """A folder that looks like one checkpoint (discovery reads names, not weights)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    if state is not None:
        (folder / "trainer_state.json").write_text(json.dumps(state))
    return folder


def test_a_training_folder_expands_to_its_checkpoints_by_step_with_what_the_trainer_logged(tmp_path: Path) -> None:
    history = [{"step": 5, "loss": 2.0, "learning_rate": 1e-4}, {"step": 10, "loss": 1.5, "rewards/chosen": 0.2},
               {"step": 15, "loss": 1.2}, {"step": 20, "eval_loss": 1.4, "loss": 1.0}]
    for step in (20, 5, 100):  # listed out of order on purpose: checkpoint-100 after checkpoint-20
        model_folder(tmp_path / "out" / f"checkpoint-{step}")
    (tmp_path / "out" / "runs").mkdir()
    (tmp_path / "out" / "trainer_state.json").write_text(json.dumps({"global_step": 100, "log_history": history}))

    specs = discover([str(tmp_path / "out")])

    assert specs == (
        CheckpointSpec(str(tmp_path / "out" / "checkpoint-5"), 5, "name", {"loss": 2.0}),
        CheckpointSpec(str(tmp_path / "out" / "checkpoint-20"), 20, "name",
                       {"loss": 1.0, "rewards/chosen": 0.2, "eval_loss": 1.4}),
        CheckpointSpec(str(tmp_path / "out" / "checkpoint-100"), 100, "name",
                       {"loss": 1.0, "rewards/chosen": 0.2, "eval_loss": 1.4}),
    )


def test_steps_come_from_names_trainer_state_given_or_place(tmp_path: Path) -> None:
    named = model_folder(tmp_path / "global_step300")
    stated = model_folder(tmp_path / "final", {"global_step": 450, "log_history": []})
    plain = model_folder(tmp_path / "plain")

    assert [(s.step, s.step_source) for s in discover([str(named), str(stated)])] == [(300, "name"),
                                                                                      (450, "trainer_state")]
    assert [(s.step, s.step_source) for s in discover([str(named), str(plain)])] == [(1, "position"), (2, "position")]
    assert [(s.step, s.step_source) for s in discover([str(plain), "demo:trained"], [0, 7])] == [(0, "given"),
                                                                                                 (7, "given")]


def test_hub_revisions_of_one_repository_expand_in_the_order_given() -> None:
    specs = discover(["EleutherAI/pythia-70m@step1000,step2000, step3000"])

    assert [(s.reference, s.step) for s in specs] == [("EleutherAI/pythia-70m@step1000", 1000),
                                                      ("EleutherAI/pythia-70m@step2000", 2000),
                                                      ("EleutherAI/pythia-70m@step3000", 3000)]


@pytest.mark.parametrize(("references", "steps", "message"), [
    ([], None, "a trajectory needs at least one checkpoint after the base: checkpoint folders, a training output "
               "folder holding checkpoint-<step> folders, or owner/name@rev1,rev2"),
    (["demo:base", "demo:trained"], [1], "1 steps given for 2 checkpoints; give one step per checkpoint"),
    (["demo:base", "demo:trained"], [3, -1], "step -1 of 'demo:trained' is negative; steps count from 0"),
    (["org/model@a,,b"], None, "'org/model@a,,b' has an empty revision; write owner/name@rev1,rev2 without blanks"),
    (["org/model@step200", "org/model@step100"], None,
     "step 100 ('org/model@step100') is listed after step 200 ('org/model@step200'); list the checkpoints in "
     "training order"),
])
def test_refused_lists_say_why(references, steps, message: str) -> None:
    with pytest.raises(BadInput) as refused:
        discover(references, steps)
    assert str(refused.value) == message


def test_an_unreadable_trainer_state_is_named(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "final")
    (folder / "trainer_state.json").write_text("[1, 2")

    with pytest.raises(BadCheckpoint, match=r"^.*final/trainer_state.json is not valid JSON \(.*\); remove or repair it$"):
        discover([str(folder)])


# --- across checkpoints -------------------------------------------------------------------------------


def checkpoint(step: int, flags: dict[str, bool], composite: float, accuracy: float | None,
               vs_base: float = 0.1) -> TrajectoryCheckpoint:
    detectors = {name: DetectorStep(90.0 if flagged else 10.0, flagged, "CRITICAL" if flagged else "LOW", True)
                 for name, flagged in flags.items()}
    return TrajectoryCheckpoint(
        f"ckpt-{step}", step, f"run{step}", "0" * 64, "name",
        WeightDrift(vs_base, vs_base / 2, {"q": vs_base}, {"q": vs_base / 2}),
        {"output_tokens": 10.0 + step, "accuracy": accuracy}, RewardHackStep(CompositeStep(composite, band_of(composite)), detectors),
    )


def test_a_detector_emerges_where_it_starts_to_stay_flagged() -> None:
    steps = [checkpoint(100, {"length_bias": False, "sycophancy": True, "format_gaming": True}, 10, 1.0),
             checkpoint(200, {"length_bias": True, "sycophancy": False, "format_gaming": True}, 10, 1.0),
             checkpoint(300, {"length_bias": True, "sycophancy": True, "format_gaming": False}, 10, 1.0),
             checkpoint(400, {"length_bias": True, "sycophancy": True, "format_gaming": False}, 10, 1.0)]

    assert emergence(steps) == {"length_bias": EmergenceInterval(100, 200), "format_gaming": None,
                                "sycophancy": EmergenceInterval(200, 300)}
    assert emergence(steps[2:]) == {"length_bias": EmergenceInterval(None, 300), "format_gaming": None,
                                    "sycophancy": EmergenceInterval(None, 300)}


def test_the_recommendation_takes_the_best_accuracy_below_the_band() -> None:
    steps = [checkpoint(100, {}, 5.0, 0.70), checkpoint(200, {}, 20.0, 0.80), checkpoint(300, {}, 10.0, 0.80),
             checkpoint(400, {}, 30.0, 0.95)]

    chosen = recommend(steps)
    assert (chosen.step, chosen.basis, chosen.accuracy, chosen.composite, chosen.candidates) == (300, "accuracy", 0.8, 10.0, 3)
    assert recommend(steps, "HIGH").step == 400
    assert recommend(steps[3:]).basis == "none" and recommend(steps[3:]).step is None
    unmeasured = [checkpoint(100, {}, 12.0, None), checkpoint(200, {}, 3.0, None), checkpoint(300, {}, 3.0, None)]
    assert (recommend(unmeasured).step, recommend(unmeasured).basis) == (300, "composite")


def result_of(steps: list[TrajectoryCheckpoint]) -> TrajectoryResult:
    intervals = emergence(steps)
    chosen = recommend(steps)
    return TrajectoryResult(CheckpointRef("org/base", "f" * 64, "hub"), tuple(steps),
                            {name: i.at_step if i else None for name, i in intervals.items()}, chosen.step, intervals,
                            chosen, {"output_tokens": 9.0, "accuracy": 1.0}, "dpo", ("weights",))


def test_the_result_survives_json_and_the_view_words_its_numbers() -> None:
    steps = [checkpoint(100, {"length_bias": False, "sycophancy": True}, 10.0, 1.0, 0.1),
             checkpoint(200, {"length_bias": True, "sycophancy": False}, 60.0, 0.5, 0.2),
             checkpoint(300, {"length_bias": True, "sycophancy": False}, 80.0, 0.25, 0.15)]
    result = result_of(steps)
    assert from_jsonable(TrajectoryResult, json.loads(json.dumps(to_jsonable(result)))) == result

    view = trajectory_view(result)

    assert view.title == "3 checkpoints against org/base, steps 100 to 300"
    assert view.columns == ("step", "Δ vs base", "Δ vs previous", "composite", "Length bias", "Sycophancy", "accuracy")
    assert view.rows[1] == ("200", "0.2", "0.1", "60.0 HIGH", "90 ✱", "10", "50%")
    assert [series.reading for series in view.detectors] == [
        "Length bias stays flagged from step 200 on: it emerged after step 100 and by step 200; score 10 at step 100 "
        "→ 90 at step 300.",
        "Sycophancy is flagged at step 100 but not at the last checkpoint: it did not emerge; score 90 at step 100 → "
        "10 at step 300."]
    assert view.drift[0].reading == ("‖ΔW‖/‖W‖ against the base: 0.1 at step 100 → 0.15 at step 300, peaking at 0.2 at step 200, not growing "
                                     "between steps 200 and 300.")
    assert view.drift[1].reading == ("The largest move from one checkpoint to the next is 0.1, into step 200 (the "
                                     "first checkpoint's previous is the base).")
    assert [series.reading for series in view.behaviour] == [
        "Mean output tokens: 9 at the base, 110 at step 100 → 310 at step 300.",
        "Accuracy: 100% at the base, 100% at step 100 → 25% at step 300."]
    assert view.recommendation == ("Ship step 100: the best accuracy (100%) among the 1 checkpoint whose composite "
                                   "risk is below MODERATE (its composite: 10.0).")
    assert [point.run_id for point in view.composite.points] == ["run100", "run200", "run300"]


def test_no_checkpoint_below_the_band_is_said_with_the_lowest() -> None:
    result = result_of([checkpoint(100, {}, 55.0, 1.0), checkpoint(200, {}, 40.0, 1.0)])

    assert trajectory_view(result).recommendation == (
        "No checkpoint's composite risk is below MODERATE; the lowest is step 200 (40.0, MODERATE). Ship none as it "
        "is, or accept a higher band.")


def test_a_step_without_a_weight_diff_from_the_one_before_says_why() -> None:
    first, second = checkpoint(1, {}, 5.0, 1.0), checkpoint(2, {}, 5.0, 1.0)
    reason = "LoRA adapters are each compared with their base; two adapters are not compared with each other"
    second = replace(second, weights=replace(second.weights, relative_change_vs_previous=None, modules_vs_previous={},
                                             previous_reason=reason))

    view = trajectory_view(result_of([first, second]))

    assert view.rows[1][2] == "–"
    assert view.drift[1].reading == (
        "The largest move from one checkpoint to the next is 0.05, into step 1 (the first checkpoint's previous is "
        "the base). Not computed into step 2: LoRA adapters are each compared with their base; two adapters are not "
        "compared with each other.")


def test_a_span_names_a_peak_or_low_between_its_ends() -> None:
    def points(*values):
        return tuple(Point(100 * (index + 1), f"r{index}", value) for index, value in enumerate(values))

    assert value_span(points(0.0, 0.22, 0.0)) == "0 at step 100 → 0 at step 300, peaking at 0.22 at step 200"
    assert value_span(points(0.5, 0.1, 0.4, 0.6)) == "0.5 at step 100 → 0.6 at step 400, lowest at 0.1 at step 200"
    assert value_span(points(0.1, 0.2, 0.3)) == "0.1 at step 100 → 0.3 at step 300"  # monotone: the ends say it
    assert value_span(points(None, 0.3, None)) == "0.3 at step 200"
    assert value_span(points(0.5, 0.5001, 0.5), True) == "50% at step 100 → 50% at step 300"  # equal as shown
