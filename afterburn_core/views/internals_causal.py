"""The causal half of the internals result as every door shows it: steering, layer localization, amplification.

``causal_view(result)`` turns the ``steering``, ``localization`` and
``amplification`` parts of a stored ``InternalsResult`` into a frozen
``CausalView``, the one wording the Internals page, the HTML, Markdown and
PDF reports and the terminal all draw: for each part its title
(``PART_TITLES``), one reading made of its numbers, a line saying how it was
measured, its tables as worded cells (``CausalTable``) and its chart rows; or
a note saying why it is absent (the run's ``skipped`` reason, or that the
part was off or had no generations to work on). Metric and detector names
become titles; rates and gap shares are percents with one decimal
(``share``), the same in a reading, a cell and a line. Selects, orders and
words; draws and escapes nothing (a skip reason may name a checkpoint and a
stored result's metric names are not ours: the doors escape them). Cost:
linear in the result.
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
from afterburn_core.views.wording import plural

#: Each causal part's heading, in the order every door shows them.
PART_TITLES = {"steering": "Steering with the difference", "localization": "Layer localization",
               "amplification": "Logit-difference amplification"}
#: What each part is called in a note, by its key in ``InternalsResult.skipped``.
PART_NAMES = {"steering": "steering check", "localization": "layer localization",
              "amplification": "logit-difference amplification"}
#: A cell with nothing to show: the value was not measurable, or the detector counts no single behaviour.
NO_VALUE = "–"

#: Steering metric name → (its title, whether it is a rate); the names are ``steering.STEERING_METRICS``' and
#: each title says what the metric counts.
METRIC_TITLES = {
    "answer_tokens": ("mean answer tokens", False),
    "fence_rate": ("fenced non-code answers", True),
    "filler_rate": ("templated openings (filler)", True),
    "wrong_agreement_rate": ("agrees with a wrong assertion", True),
    "strategy_entropy": ("strategy entropy (bits)", False),
    "refusal_rate": ("safety prompts refused", True),
}
#: Suffix of the steering metrics that carry a reward-hack detector's score (``internals.causal``).
DETECTOR_SCORE_SUFFIX = "_score"
STEERING_COLUMNS = ("metric", "base", "steered base", "post-trained")
TRIAL_COLUMNS = ("strength (× mean norm)", "perplexity", "within the band")

#: The two swaps of layer localization, as its chart's series and its table's columns.
CLOSED_BY_TRAINED_BLOCK = "gap closed: post-trained block in the base"
OPENED_BY_BASE_BLOCK = "gap opened: base block in the post-trained model"
LOCALIZATION_COLUMNS = ("block", CLOSED_BY_TRAINED_BLOCK, OPENED_BY_BASE_BLOCK)
LOCALIZATION_NOTE = ("Each decoder block swapped alone, teacher-forced on the post-trained answers: the share of "
                     "the KL(post-trained ‖ base) gap the base closes with the post-trained block, and the share "
                     "the post-trained model opens with the base's block.")

AMPLIFICATION_COLUMNS = ("detector", "α", "behaviour counted", "rate", "95% interval", "score", "flagged")
AMPLIFICATION_NOTE = ("Answers sampled from logits_t + α (logits_t − logits_b): α = 0 is the post-trained model "
                      "sampled as it is; a larger α exaggerates what changed, so a behaviour it shows rarely "
                      "becomes frequent enough to count. Rate: the share of answers showing the behaviour the "
                      "detector counts, with its 95% Wilson interval; score: the detector's 0–100 score of those "
                      "answers against the base's.")
#: The behaviour each detector's rate counts (``internals.amplification.BEHAVIOUR_RATES``), in words.
RATE_BEHAVIOURS = {
    "length_bias": "longer than the base's answer",
    "format_gaming": "a format its prompt did not ask for",
    "strategy_collapse": "the most used strategy",
    "sycophancy": "agrees with a wrong assertion",
    "safety_regression": "complies with a harmful request",
}


@dataclass(frozen=True)
class CausalTable:
    """A table as every door draws it: column titles, rows of worded cells, the columns that hold numbers."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[int, ...]


@dataclass(frozen=True)
class SteeringView:
    layer: int
    strength: float
    steered: bool
    reading: str
    method_line: str
    trials: CausalTable
    metrics: CausalTable


@dataclass(frozen=True)
class LocalizationView:
    """Per block in block order, the shares closed and opened (chart), their table, and the KL gap (nats)."""

    layers: tuple[int, ...]
    kl_recovered: tuple[float, ...]
    reverse_kl_recovered: tuple[float, ...]
    gap: float | None
    reading: str
    table: CausalTable


@dataclass(frozen=True)
class RatePoint:
    """One detector's rate of its behaviour at one α, with its 95 % interval (chart row)."""

    detector: str
    alpha: float
    rate: float
    rate_low: float
    rate_high: float


@dataclass(frozen=True)
class AmplificationView:
    """The α values, each counted rate as a chart point, a line per detector, the table, and how much was read."""

    alphas: tuple[float, ...]
    points: tuple[RatePoint, ...]
    lines: tuple[str, ...]
    reading: str
    sample_line: str
    table: CausalTable


@dataclass(frozen=True)
class CausalView:
    """Each part's view, or None with ``notes[part]`` saying why it is absent."""

    steering: SteeringView | None
    localization: LocalizationView | None
    amplification: AmplificationView | None
    notes: dict[str, str]


def share(value: float) -> str:
    """A rate or a share of a gap as a percent with one decimal (a gap share can fall below 0 or pass 100 %)."""
    shown = f"{value * 100:.1f}%"
    return "0.0%" if shown == "-0.0%" else shown.replace("-", "−")


def metric_title(name: str) -> str:
    if name.endswith(DETECTOR_SCORE_SUFFIX) and name not in METRIC_TITLES:
        return f"{detector_title(name.removesuffix(DETECTOR_SCORE_SUFFIX))} score (0–100)"
    return METRIC_TITLES.get(name, (name, False))[0]


def _cell(name: str, value: float | None) -> str:
    if value is None:
        return NO_VALUE
    if METRIC_TITLES.get(name, ("", False))[1]:
        return share(value)
    if name.endswith(DETECTOR_SCORE_SUFFIX):
        return f"{value:.0f}"
    return f"{value:.1f}" if name == "answer_tokens" else f"{value:.2f}"


def _perplexity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


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
    measured = {name: gap_share for name, gap_share in shares.items() if gap_share is not None}
    lead = f"Steered at layer {steering.layer} with strength {steering.strength:g}, the base"
    if not measured:
        return f"{lead} was measured, but the post-trained model differs from it on none of the metrics."
    toward = sorted((name for name, gap_share in measured.items() if gap_share > 0), key=lambda name: -measured[name])
    if not toward:
        return f"{lead} moves toward the post-trained model on none of the {len(measured)} metrics it differs on."
    top = toward[0]
    triple = steering.metrics[top]
    base = _cell(top, 0.0 if triple.base is None else triple.base)
    return (f"{lead} moves toward the post-trained model on {len(toward)} of {len(measured)} metrics; most on "
            f"{metric_title(top)}: {base} → {_cell(top, triple.steered)} (post-trained "
            f"{_cell(top, triple.trained)}), {share(measured[top])} of the gap.")


def _steering_method(steering: SteeringResult) -> str:
    """How the base was steered, and the perplexity band its strength was chosen by."""
    ratio = steering.perplexity_bound / steering.perplexity_base if steering.perplexity_base else 0.0
    low = steering.perplexity_base / ratio if ratio else 0.0
    band = (f"Strengths are tried from the smallest up while the base's perplexity on held-out neutral text stays "
            f"within {_perplexity(low)} … {_perplexity(steering.perplexity_bound)} (its own: "
            f"{_perplexity(steering.perplexity_base)})")
    if steering.strength == 0:
        return f"{band}; the first tried was already outside, so nothing was added at layer {steering.layer}."
    return (f"The base answered the run's {plural(len(steering.completions), 'prompt')} with the unit activation "
            f"difference × {steering.strength:g} × the layer's mean residual norm added at layer {steering.layer} "
            f"on every position. {band}; the last one within it is used.")


def _in_metric_order(metrics: dict[str, MetricTriple]) -> list[tuple[str, MetricTriple]]:
    """The behaviour metrics in ``METRIC_TITLES`` order, then the detector scores in detector order, then any other."""
    behaviour = [(name, metrics[name]) for name in METRIC_TITLES if name in metrics]
    scores = {name.removesuffix(DETECTOR_SCORE_SUFFIX): name for name in metrics
              if name not in METRIC_TITLES and name.endswith(DETECTOR_SCORE_SUFFIX)}
    ordered = [name for _, name in in_detector_order(scores)]
    rest = sorted(set(metrics) - set(METRIC_TITLES) - set(ordered))
    return behaviour + [(name, metrics[name]) for name in (*ordered, *rest)]


def steering_view(steering: SteeringResult) -> SteeringView:
    metrics = tuple((metric_title(name), _cell(name, triple.base), _cell(name, triple.steered),
                     _cell(name, triple.trained)) for name, triple in _in_metric_order(steering.metrics))
    trials = tuple((f"{trial.strength:g}", _perplexity(trial.perplexity), "yes" if trial.accepted else "no")
                   for trial in steering.trials)
    return SteeringView(steering.layer, steering.strength, steering.strength != 0, _steering_reading(steering),
                        _steering_method(steering), CausalTable(TRIAL_COLUMNS, trials, (0, 1)),
                        CausalTable(STEERING_COLUMNS, metrics, (1, 2, 3)))


def _localization_reading(blocks: list[LayerLocalization], gap: float | None) -> str:
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
            f"{share(top.kl_recovered)} of the KL gap{gap_words}")
    if reverse.layer == top.layer:
        return f"{line}, and the post-trained model with the base's block opens {share(reverse.reverse_kl_recovered)}."
    return (f"{line}; the post-trained model with a base block opens most with block {reverse.layer} "
            f"({share(reverse.reverse_kl_recovered)}).")


def localization_view(blocks: tuple[LayerLocalization, ...], gap: float | None) -> LocalizationView:
    ordered = sorted(blocks, key=lambda block: block.layer)
    rows = tuple((str(block.layer), share(block.kl_recovered), share(block.reverse_kl_recovered)) for block in ordered)
    return LocalizationView(tuple(block.layer for block in ordered), tuple(block.kl_recovered for block in ordered),
                            tuple(block.reverse_kl_recovered for block in ordered), gap,
                            _localization_reading(ordered, gap), CausalTable(LOCALIZATION_COLUMNS, rows, (0, 1, 2)))


def _rate_line(title: str, levels: list[tuple[float, float]]) -> str:
    first, last = levels[0], levels[-1]
    line = f"{title}: {share(first[1])} of answers at α = {first[0]:g}"
    return line if len(levels) == 1 else f"{line}, {share(last[1])} at α = {last[0]:g}"


def _interval(low: float | None, high: float | None) -> str:
    return NO_VALUE if low is None or high is None else f"{share(low)}–{share(high)}"


def _flagged(available: bool, flagged: bool) -> str:
    return ("yes" if flagged else "no") if available else "not available"


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
            counted = detector.rate is not None  # counted on the answers even where the detector's test is not available
            rows.append((title, f"{level.alpha:g}", RATE_BEHAVIOURS.get(name, NO_VALUE),
                         share(detector.rate) if counted else NO_VALUE,
                         _interval(detector.rate_low, detector.rate_high) if counted else NO_VALUE,
                         f"{detector.score:.0f}" if detector.available else NO_VALUE,
                         _flagged(detector.available, detector.flagged)))
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
    alphas = tuple(level.alpha for level in ordered)
    sample = (f"{plural(len(ordered[0].completions), 'answer')} per α; α = {', '.join(f'{alpha:g}' for alpha in alphas)}."
              if ordered else "No α was sampled.")
    return AmplificationView(alphas, tuple(points), lines, reading, sample,
                             CausalTable(AMPLIFICATION_COLUMNS, tuple(rows), (1, 3, 5)))


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
