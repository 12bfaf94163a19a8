"""A trajectory as every door shows it: a table row per checkpoint, a series per chart, readings made of numbers.

``trajectory_view(result)`` returns a frozen ``TrajectoryView``: the per-step table (cells already worded),
the composite and each detector as a series with its band and flag per step and its emergence marked,
the weight drift against the base and the previous checkpoint and per module type, the behaviour metrics
(a format rate only where it leaves 0%) and the trainer's logged values per step, a reading per series,
and the recommendation as one finding. Each point carries its run id, so a chart's point opens that
checkpoint's run; a table of the checkpoints names each one's reference, where its step came from and its
runs. ``trajectory_label`` names a stored trajectory in a picker, ``command_line`` the CLI call that makes
one. The terminal, the page and the reports draw these and add no sentence of their own.
Words and orders what the result holds; computes nothing new. Cost: linear in checkpoints × series.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from afterburn_core.analyses import detector_title
from afterburn_core.reward_hack.scoring import CRITICAL_FROM, HIGH_FROM, MODERATE_FROM
from afterburn_core.trajectory.emergence import detector_names_of
from afterburn_core.trajectory.metrics import BEHAVIOUR_METRICS
from afterburn_core.trajectory.stored import StoredTrajectory
from afterburn_core.trajectory.types import EmergenceInterval, TrajectoryCheckpoint, TrajectoryResult
from afterburn_core.views.wording import percent, plural, when, words

#: Behaviour metrics that are rates (shown as percents); the others are shown as numbers with their unit.
RATE_METRICS = frozenset(name for name in BEHAVIOUR_METRICS if name.startswith("format_")) | {
    "accuracy", "wrong_agreement", "refusal_rate"}
#: How each behaviour metric is titled (format features: "Format: " and the feature in words).
METRIC_TITLES = {
    "output_tokens": "Mean output tokens", "strategy_entropy_bits": "Strategy entropy (bits)",
    "accuracy": "Accuracy", "wrong_agreement": "Agrees with a wrong assertion",
    "refusal_rate": "Refusal rate, harmful prompts",
}
#: Marks a flagged detector in a table cell (the Behaviour tables mark significant tests the same way).
FLAG_MARK = "✱"
#: The score ranges of the bands (``reward_hack.scoring``), drawn behind the risk charts.
BAND_RANGES = ((0.0, MODERATE_FROM, "LOW"), (MODERATE_FROM, HIGH_FROM, "MODERATE"),
               (HIGH_FROM, CRITICAL_FROM, "HIGH"), (CRITICAL_FROM, 100.0, "CRITICAL"))
#: The parts every door shows, in order, and their titles.
SECTION_TITLES = {
    "risk": "Reward-hack risk per step", "logged": "What the trainer logged", "weights": "Weight drift",
    "behaviour": "Behaviour per step", "checkpoints": "Checkpoints and their runs",
}
#: The checkpoints table: each checkpoint, where its step was read, its run and its run against the previous one.
CHECKPOINT_COLUMNS = ("step", "checkpoint", "step read from", "run", "run vs previous")
#: Where a step came from (``trajectory.types.StepSource``), in words.
STEP_SOURCES = {"name": "its name", "trainer_state": "trainer_state.json", "given": "--steps",
                "position": "its place in the list"}


@dataclass(frozen=True)
class Point:
    """One checkpoint on one chart: its value (None: not measured), flag and band where the series has them."""

    step: int
    run_id: str
    value: float | None
    flagged: bool = False
    band: str | None = None


@dataclass(frozen=True)
class Series:
    """One line of a chart, with the reading under it; ``emergence`` marks where a detector emerged."""

    name: str
    title: str
    points: tuple[Point, ...]
    reading: str
    is_rate: bool = False
    base_value: float | None = None
    emergence: EmergenceInterval | None = None


@dataclass(frozen=True)
class TrajectoryView:
    """Everything the doors show of a trajectory, in the order they show it."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    run_ids: tuple[str, ...]
    composite: Series
    detectors: tuple[Series, ...]
    drift: tuple[Series, ...]
    modules: tuple[Series, ...]
    behaviour: tuple[Series, ...]
    logged: tuple[Series, ...]
    recommendation: str
    checkpoints: tuple[tuple[str, ...], ...]


def metric_title(name: str) -> str:
    return METRIC_TITLES.get(name) or f"Format: {words(name.removeprefix('format_'))}"


def _number(value: float | None, is_rate: bool = False) -> str:
    if value is None:
        return "–"
    return percent(value) if is_rate else f"{value:.3g}"


def value_span(points: tuple[Point, ...], is_rate: bool = False) -> str:
    """``0.05 at step 100 → 0.22 at step 500`` over the measured points, and the peak or low between them when
    one lies outside both ends (a metric that rises and falls back must not read as flat)."""
    measured = [point for point in points if point.value is not None]
    first, last = measured[0], measured[-1]
    if first is last:
        return f"{_number(first.value, is_rate)} at step {first.step}"
    span = f"{_number(first.value, is_rate)} at step {first.step} → {_number(last.value, is_rate)} at step {last.step}"
    inner = measured[1:-1]
    ends = (first.value, last.value)
    shown_ends = {_number(value, is_rate) for value in ends}
    peak = max(inner, key=lambda point: point.value, default=None)
    low = min(inner, key=lambda point: point.value, default=None)
    if peak is not None and peak.value > max(ends) and _number(peak.value, is_rate) not in shown_ends:
        span += f", peaking at {_number(peak.value, is_rate)} at step {peak.step}"
    if low is not None and low.value < min(ends) and _number(low.value, is_rate) not in shown_ends:
        span += f", lowest at {_number(low.value, is_rate)} at step {low.step}"
    return span


def _after(interval: EmergenceInterval) -> str:
    return "the base" if interval.after_step is None else f"step {interval.after_step}"


def detector_series(name: str, checkpoints: tuple[TrajectoryCheckpoint, ...],
                    interval: EmergenceInterval | None) -> Series:
    title = detector_title(name)
    steps = [(c, c.reward_hack.detectors.get(name)) for c in checkpoints]
    points = tuple(Point(c.step, c.run_id, d.score if d and d.available else None, bool(d and d.flagged),
                         d.band if d else None) for c, d in steps)
    if all(point.value is None for point in points):
        reading = f"{title} could not be measured on these suites at any checkpoint."
    elif interval is not None:
        reading = (f"{title} stays flagged from step {interval.at_step} on: it emerged after {_after(interval)} "
                   f"and by step {interval.at_step}; score {value_span(points)}.")
    else:
        flagged = [str(point.step) for point in points if point.flagged]
        reading = (f"{title} is never flagged; score {value_span(points)}." if not flagged else
                   f"{title} is flagged at step {', '.join(flagged)} but not at the last checkpoint: it did not "
                   f"emerge; score {value_span(points)}.")
    return Series(name, title, points, reading, emergence=interval)


def composite_series(checkpoints: tuple[TrajectoryCheckpoint, ...]) -> Series:
    points = tuple(Point(c.step, c.run_id, c.reward_hack.composite.score, band=c.reward_hack.composite.band)
                   for c in checkpoints)
    last = checkpoints[-1].reward_hack.composite
    return Series("composite", "Composite reward-hack risk", points,
                  f"Composite risk {value_span(points)}; {last.band} at the last checkpoint.")


def drift_series(checkpoints: tuple[TrajectoryCheckpoint, ...]) -> tuple[Series, ...]:
    vs_base = tuple(Point(c.step, c.run_id, c.weights.relative_change_vs_base) for c in checkpoints)
    vs_previous = tuple(Point(c.step, c.weights.previous_run_id or c.run_id, c.weights.relative_change_vs_previous)
                        for c in checkpoints)
    values = [point.value for point in vs_base]
    falls = [(a.step, b.step) for a, b in zip(vs_base, vs_base[1:]) if b.value <= a.value]
    if len(vs_base) == 1:
        shape = ""
    elif not falls:
        shape = ", growing at every step"
    else:
        shape = f", not growing between steps {falls[0][0]} and {falls[0][1]}"
    reading = f"‖ΔW‖/‖W‖ against the base: {value_span(vs_base)}{shape}."
    if max(values) == 0:
        reading = "The weights equal the base's at every checkpoint (‖ΔW‖/‖W‖ = 0)."
    measured = [point for point in vs_previous if point.value is not None]
    largest = max(measured, key=lambda point: point.value) if measured else None
    previous_reading = (f"The largest move from one checkpoint to the next is {largest.value:.3g}, into step "
                        f"{largest.step} (the first checkpoint's previous is the base)." if largest else
                        "No step-to-step weight diff was computed.")
    missing = [c for c in checkpoints if c.weights.previous_reason]
    if missing:
        previous_reading += (f" Not computed into step {', '.join(str(c.step) for c in missing)}: "
                             f"{missing[0].weights.previous_reason}.")
    return (Series("vs_base", "‖ΔW‖/‖W‖ vs base", vs_base, reading),
            Series("vs_previous", "‖ΔW‖/‖W‖ vs previous checkpoint", vs_previous, previous_reading))


def module_series(checkpoints: tuple[TrajectoryCheckpoint, ...]) -> tuple[Series, ...]:
    modules = sorted({module for c in checkpoints for module in c.weights.modules_vs_base},
                     key=lambda module: -checkpoints[-1].weights.modules_vs_base.get(module, 0.0))
    series = []
    for module in modules:
        points = tuple(Point(c.step, c.run_id, c.weights.modules_vs_base.get(module)) for c in checkpoints)
        moves = [(c.weights.modules_vs_previous.get(module) or 0.0, c.step) for c in checkpoints]
        most, step = max(moves)
        when = f"; it moved most into step {step} ({most:.3g})" if most > 0 else ""
        series.append(Series(module, module, points, f"{module}: {value_span(points)} against the base{when}."))
    return tuple(series)


def behaviour_series(result: TrajectoryResult) -> tuple[Series, ...]:
    series = []
    for name in BEHAVIOUR_METRICS:
        points = tuple(Point(c.step, c.run_id, c.behaviour.get(name)) for c in result.checkpoints)
        is_rate, base = name in RATE_METRICS, result.base_behaviour.get(name)
        # Not measured anywhere, or a format rate at 0% throughout: a chart with nothing on it.
        if all(point.value is None for point in points) or (
                name.startswith("format_") and not base and not any(point.value for point in points)):
            continue
        title = metric_title(name)
        series.append(Series(name, title, points, f"{title}: {_number(base, is_rate)} at the base, "
                             f"{value_span(points, is_rate)}.", is_rate, base))
    return tuple(series)


def logged_series(checkpoints: tuple[TrajectoryCheckpoint, ...]) -> tuple[Series, ...]:
    keys = sorted({key for c in checkpoints for key in c.logged})
    series = []
    for key in keys:
        points = tuple(Point(c.step, c.run_id, c.logged.get(key)) for c in checkpoints)
        series.append(Series(key, f"Trainer's {key}", points, f"The trainer logged {key} {value_span(points)}."))
    return tuple(series)


def recommendation_line(result: TrajectoryResult) -> str:
    """Which checkpoint to ship, said with the numbers that chose it."""
    chosen, below = result.recommendation, result.recommendation.below_band
    if chosen.step is None:
        lowest = min(result.checkpoints, key=lambda c: (c.reward_hack.composite.score, c.step))
        composite = lowest.reward_hack.composite
        return (f"No checkpoint's composite risk is below {below}; the lowest is step {lowest.step} "
                f"({composite.score:.1f}, {composite.band}). Ship none as it is, or accept a higher band.")
    among = plural(chosen.candidates, "checkpoint")
    if chosen.basis == "accuracy":
        return (f"Ship step {chosen.step}: the best accuracy ({percent(chosen.accuracy)}) among the {among} whose "
                f"composite risk is below {below} (its composite: {chosen.composite:.1f}).")
    return (f"Ship step {chosen.step}: no suite measured accuracy, so of the {among} whose composite risk is below "
            f"{below} it has the lowest composite ({chosen.composite:.1f}).")


def _row(checkpoint: TrajectoryCheckpoint, detectors: list[str], logged: list[str]) -> tuple[str, ...]:
    weights, hack = checkpoint.weights, checkpoint.reward_hack
    cells = [str(checkpoint.step), f"{weights.relative_change_vs_base:.3g}",
             _number(weights.relative_change_vs_previous), f"{hack.composite.score:.1f} {hack.composite.band}"]
    for name in detectors:
        detector = hack.detectors.get(name)
        if detector is None or not detector.available:
            cells.append("–")
        else:
            cells.append(f"{detector.score:.0f}{' ' + FLAG_MARK if detector.flagged else ''}")
    cells.append(_number(checkpoint.behaviour.get("accuracy"), is_rate=True))
    cells += [_number(checkpoint.logged.get(key)) for key in logged]
    return tuple(cells)


def trajectory_view(result: TrajectoryResult) -> TrajectoryView:
    checkpoints = result.checkpoints
    names = detector_names_of(checkpoints)
    logged = logged_series(checkpoints)
    columns = ("step", "Δ vs base", "Δ vs previous", "composite", *(detector_title(name) for name in names),
               "accuracy", *(series.name for series in logged))
    return TrajectoryView(
        title=(f"{plural(len(checkpoints), 'checkpoint')} against {result.base.reference}, steps "
               f"{checkpoints[0].step} to {checkpoints[-1].step}"),
        columns=columns,
        rows=tuple(_row(c, names, [series.name for series in logged]) for c in checkpoints),
        run_ids=tuple(c.run_id for c in checkpoints),
        composite=composite_series(checkpoints),
        detectors=tuple(detector_series(name, checkpoints, result.emergence_intervals.get(name)) for name in names),
        drift=drift_series(checkpoints),
        modules=module_series(checkpoints),
        behaviour=behaviour_series(result),
        logged=logged,
        recommendation=recommendation_line(result),
        checkpoints=tuple((str(c.step), c.reference, STEP_SOURCES[c.step_source], c.run_id,
                           c.weights.previous_run_id or "–") for c in checkpoints),
    )


def trajectory_label(stored: StoredTrajectory) -> str:
    """``demo:base · 5 checkpoints, steps 100–500 · 2025-11-23 14:05`` (plain text, for pickers)."""
    checkpoints = stored.result.checkpoints
    return (f"{stored.result.base.reference} · {plural(len(checkpoints), 'checkpoint')}, steps "
            f"{checkpoints[0].step}–{checkpoints[-1].step} · {when(stored.stored_at)}")


def command_line(base: str, checkpoints: Sequence[str]) -> str:
    """The ``afterburn trajectory`` call for ``base`` and ``checkpoints``, quoted for a POSIX shell."""
    return shlex.join(["afterburn", "trajectory", "--base", base or "BASE", *(checkpoints or ["TRAINING_OUTPUT_FOLDER"])])
