"""The causal half of the internals result as every door shows it: steering, layer localization, amplification.

``causal_view(result)`` turns the ``steering``, ``localization`` and
``amplification`` parts of a stored ``InternalsResult`` into a frozen
``CausalView``: for each part either its tables, chart rows and one reading
made of its numbers, or a note saying why it is absent (the run's
``skipped`` reason, or that the part was off or had no generations to work
on). Metric and detector names become titles; rates are worded as percents.
Selects, orders and words; draws and escapes nothing (a skip reason may
name a checkpoint: the doors escape it). Cost: linear in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.analyses import detector_title, in_detector_order
from afterburn_core.internals.types import (
    AmplificationLevel,
    InternalsResult,
    LayerLocalization,
    MetricTriple,
    SteeringResult,
)
from afterburn_core.views.wording import percent, plural

#: Steering metric name → (its title, whether it is a rate); the names are ``steering.STEERING_METRICS``'.
METRIC_TITLES = {
    "answer_tokens": ("answer tokens (mean)", False),
    "fence_rate": ("fence rate", True),
    "filler_rate": ("filler rate", True),
    "wrong_agreement_rate": ("agreement with a wrong answer", True),
    "strategy_entropy": ("strategy entropy (bits)", False),
    "refusal_rate": ("refusal rate", True),
}
#: Suffix of the steering metrics that carry a reward-hack detector's score (``internals.causal``).
DETECTOR_SCORE_SUFFIX = "_score"
#: What each part is called in a note, by its key in ``InternalsResult.skipped``.
PART_NAMES = {"steering": "steering check", "localization": "layer localization",
              "amplification": "logit-difference amplification"}


@dataclass(frozen=True)
class TrialRow:
    strength: float
    perplexity: float
    accepted: bool


@dataclass(frozen=True)
class MetricRow:
    """One behaviour metric, its cells worded (``–``: not measurable)."""

    metric: str
    base: str
    steered: str
    trained: str


@dataclass(frozen=True)
class SteeringView:
    layer: int
    strength: float
    steered: bool
    band_line: str
    trials: tuple[TrialRow, ...]
    metrics: tuple[MetricRow, ...]
    reading: str


@dataclass(frozen=True)
class LocalizationView:
    layers: tuple[int, ...]
    kl_recovered: tuple[float, ...]
    reverse_kl_recovered: tuple[float, ...]
    reading: str


@dataclass(frozen=True)
class RatePoint:
    """One detector's rate of its behaviour at one α, with its 95 % interval (chart row)."""

    detector: str
    alpha: float
    rate: float
    rate_low: float
    rate_high: float


@dataclass(frozen=True)
class DetectorRow:
    """One detector at one α (table row); ``rate`` is worded, ``–`` where nothing is counted."""

    detector: str
    alpha: float
    score: float | None
    flagged: bool
    rate: str


@dataclass(frozen=True)
class AmplificationView:
    alphas: tuple[float, ...]
    points: tuple[RatePoint, ...]
    rows: tuple[DetectorRow, ...]
    lines: tuple[str, ...]
    reading: str


@dataclass(frozen=True)
class CausalView:
    """Each part's view, or None with ``notes[part]`` saying why it is absent."""

    steering: SteeringView | None
    localization: LocalizationView | None
    amplification: AmplificationView | None
    notes: dict[str, str]


def metric_title(name: str) -> str:
    if name.endswith(DETECTOR_SCORE_SUFFIX) and name not in METRIC_TITLES:
        return f"{detector_title(name.removesuffix(DETECTOR_SCORE_SUFFIX))} score"
    return METRIC_TITLES.get(name, (name, False))[0]


def _cell(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    if METRIC_TITLES.get(name, ("", False))[1]:
        return percent(value)
    return f"{value:.1f}" if name.endswith(DETECTOR_SCORE_SUFFIX) or name == "answer_tokens" else f"{value:.2f}"


def _gap_closed(name: str, base: float | None, steered: float | None, trained: float | None) -> float | None:
    """The share of the base → trained gap the steered base covers; a detector score's base is 0 by definition."""
    if base is None and name.endswith(DETECTOR_SCORE_SUFFIX):
        base = 0.0
    if base is None or steered is None or trained is None or trained == base:
        return None
    return (steered - base) / (trained - base)


def _steering_reading(steering: SteeringResult) -> str:
    if steering.strength == 0:
        return (f"No strength on the grid kept the base's perplexity within the band, so nothing was steered: "
                f"the steered answers are the base's own ({plural(len(steering.trials), 'strength')} tried).")
    shares = {name: _gap_closed(name, triple.base, triple.steered, triple.trained)
              for name, triple in steering.metrics.items()}
    measured = {name: share for name, share in shares.items() if share is not None}
    lead = f"Steered at layer {steering.layer} with strength {steering.strength:g}, the base"
    if not measured:
        return f"{lead} was measured, but the post-trained model differs from it on none of the metrics."
    toward = sorted((name for name, share in measured.items() if share > 0), key=lambda name: -measured[name])
    if not toward:
        return f"{lead} moves toward the post-trained model on none of the {len(measured)} metrics it differs on."
    top = toward[0]
    triple = steering.metrics[top]
    base = _cell(top, 0.0 if triple.base is None else triple.base)
    return (f"{lead} moves toward the post-trained model on {len(toward)} of {len(measured)} metrics; most on "
            f"{metric_title(top)}: {base} → {_cell(top, triple.steered)} (post-trained "
            f"{_cell(top, triple.trained)}), {percent(measured[top])} of the gap.")


def _in_metric_order(metrics: dict[str, MetricTriple]) -> list[tuple[str, MetricTriple]]:
    """The behaviour metrics in ``METRIC_TITLES`` order, then the detector scores in detector order, then any other."""
    behaviour = [(name, metrics[name]) for name in METRIC_TITLES if name in metrics]
    others = {name.removesuffix(DETECTOR_SCORE_SUFFIX): name for name in metrics if name not in METRIC_TITLES}
    return behaviour + [(name, metrics[name]) for _, name in in_detector_order(others)]


def steering_view(steering: SteeringResult) -> SteeringView:
    ratio = steering.perplexity_bound / steering.perplexity_base if steering.perplexity_base else 0.0
    low = steering.perplexity_base / ratio if ratio else 0.0
    band = (f"Layer {steering.layer}, strength {steering.strength:g} × the layer's mean residual norm. Accepted "
            f"band: perplexity {low:.3g} … {steering.perplexity_bound:.3g} on held-out neutral text "
            f"(the base's own: {steering.perplexity_base:.3g}); strengths are tried smallest first and the last "
            f"one within it is used.")
    metrics = tuple(MetricRow(metric_title(name), _cell(name, triple.base), _cell(name, triple.steered),
                              _cell(name, triple.trained)) for name, triple in _in_metric_order(steering.metrics))
    trials = tuple(TrialRow(trial.strength, trial.perplexity, trial.accepted) for trial in steering.trials)
    return SteeringView(steering.layer, steering.strength, steering.strength != 0, band, trials, metrics,
                        _steering_reading(steering))


def _localization_reading(blocks: tuple[LayerLocalization, ...], gap: float | None) -> str:
    """Which block carries the change; the gap tells a pair that does not differ from a change no block holds."""
    if not blocks:
        return "No decoder block was swapped."
    gap_words = "" if gap is None else f" ({gap:.3g} nats per answer token)"
    if gap == 0:
        return ("The two models score the post-trained answers identically (KL 0), so no block has a share "
                "of a gap.")
    if all(block.kl_recovered == 0 and block.reverse_kl_recovered == 0 for block in blocks):
        if gap is None:
            return "Swapping any one block changes nothing."
        return (f"The models differ{gap_words}, but swapping any one decoder block closes and opens none of it: "
                f"the change lies outside the decoder blocks (embeddings, final norm or head).")
    top = max(blocks, key=lambda block: block.kl_recovered)
    reverse = max(blocks, key=lambda block: block.reverse_kl_recovered)
    line = (f"Block {top.layer} carries the most: the base with the post-trained block {top.layer} closes "
            f"{percent(top.kl_recovered)} of the KL gap{gap_words}")
    if reverse.layer == top.layer:
        return f"{line}, and the post-trained model with the base's block opens {percent(reverse.reverse_kl_recovered)}."
    return (f"{line}; the post-trained model with a base block opens most with block {reverse.layer} "
            f"({percent(reverse.reverse_kl_recovered)}).")


def localization_view(blocks: tuple[LayerLocalization, ...], gap: float | None) -> LocalizationView:
    return LocalizationView(tuple(block.layer for block in blocks), tuple(block.kl_recovered for block in blocks),
                            tuple(block.reverse_kl_recovered for block in blocks), _localization_reading(blocks, gap))


def _rate_line(title: str, levels: list[tuple[float, float]]) -> str:
    first, last = levels[0], levels[-1]
    line = f"{title}: {percent(first[1])} of answers at α = {first[0]:g}"
    return line if len(levels) == 1 else f"{line}, {percent(last[1])} at α = {last[0]:g}"


def amplification_view(levels: tuple[AmplificationLevel, ...]) -> AmplificationView:
    ordered = sorted(levels, key=lambda level: level.alpha)
    names = [name for name, _ in in_detector_order({name: None for level in ordered for name in level.detectors})]
    points, rows, rates = [], [], {}
    for name in names:
        title = detector_title(name)
        for level in ordered:
            detector = level.detectors.get(name)
            if detector is None:
                continue
            counted = detector.available and detector.rate is not None
            rows.append(DetectorRow(title, level.alpha, detector.score if detector.available else None,
                                    detector.flagged, percent(detector.rate) if counted else "–"))
            if counted:
                rates.setdefault(title, []).append((level.alpha, detector.rate))
                points.append(RatePoint(title, level.alpha, detector.rate,
                                        detector.rate if detector.rate_low is None else detector.rate_low,
                                        detector.rate if detector.rate_high is None else detector.rate_high))
    lines = tuple(_rate_line(title, levels) for title, levels in rates.items())
    rises = {title: levels[-1][1] - levels[0][1] for title, levels in rates.items() if len(levels) > 1}
    if not rises:
        reading = "No detector counts a behaviour at more than one α."
    elif max(rises.values()) <= 0:
        reading = f"No detector's rate rises with α ({len(ordered)} values from {ordered[0].alpha:g} to {ordered[-1].alpha:g})."
    else:
        top = max(rises, key=lambda title: rises[title])
        reading = f"{_rate_line(top, rates[top])}; the largest rise with α of any detector."
    return AmplificationView(tuple(level.alpha for level in ordered), tuple(points), tuple(rows), lines, reading)


def _note(result: InternalsResult, part: str) -> str:
    reason = result.skipped.get(part)
    if reason is not None:
        return f"The {PART_NAMES[part]} did not run: {reason}"
    return (f"The {PART_NAMES[part]} was not computed: the run's {part} setting was off, or the run had no "
            f"generations to work on.")


def causal_view(result: InternalsResult) -> CausalView:
    """The view of the causal half of an ``internals`` result."""
    notes = {}
    for part, value in (("steering", result.steering), ("localization", result.localization),
                        ("amplification", result.amplification)):
        if value is None:
            notes[part] = _note(result, part)
    return CausalView(
        None if result.steering is None else steering_view(result.steering),
        None if result.localization is None else localization_view(result.localization, result.localization_gap),
        None if result.amplification is None else amplification_view(result.amplification),
        notes,
    )
