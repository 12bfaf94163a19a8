"""The internals section as every report format shows it: which ADL tables, and the cells of its tables.

The internals view (``views.internals``) orders and words the whole result
for the dashboard's page, which has room for every reading; a report shows
the same selection in HTML, Markdown and PDF, made once here: the averaged
reading of each layer the activation-difference lens read (the middle one by
default), the per-layer table of the curves, the input-set rows, and each
number as text. Token cells go through the writer's own ``shown`` function,
since a token is a model's vocabulary and each format escapes for its syntax;
this module escapes nothing and draws nothing.

The causal half (steering, layer localization, amplification) is read
straight off the ``InternalsResult``: its tables' columns and cells, the
sentence above each, and the line a part shows instead when the run skipped
it (its reason) or did not compute it. Metric, detector and reason strings
come from a stored result and are escaped by each writer like any other.
Cost: linear in the view and the result.
"""

from __future__ import annotations

from collections.abc import Callable

from afterburn_core.analyses import detector_title, in_detector_order
from afterburn_core.internals.types import AmplificationLevel, InternalsResult, LayerLocalization, SteeringResult
from afterburn_core.views.internals import AdlTable, InputSetRow, InternalsView, TokenRow
from afterburn_core.views.wording import plural

TOKEN_COLUMNS = ("#", "promoted", "p", "relevance", "demoted", "p", "relevance")
TOKEN_NUMERIC = (0, 2, 3, 5, 6)
INPUT_SET_COLUMNS = ("input set", "sequences", "positions", "peak layer", "peak relative norm", "peak KL (nats)")
INPUT_SET_NUMERIC = (1, 2, 3, 4, 5)
RELEVANCE_NOTE = ("p: the token's probability in the readout of the mean difference δ (promoted) or of −δ "
                  "(demoted); relevance: how much more often the post-trained model writes the token than the "
                  "base in this run's generations, per 1 000 generated tokens.")
PATCHSCOPE_NOTE = "Patchscope, tokens the post-trained model reads from δ at half the scales or more"


def averaged_tables(view: InternalsView) -> tuple[AdlTable, ...]:
    """The averaged reading of each layer read (single positions are on the page and in the JSON)."""
    return tuple(table for table in view.adl if table.averaged)


def layer_columns(view: InternalsView) -> tuple[str, ...]:
    return ("layer", *(curve.name for curve in view.curves))


def layer_rows(view: InternalsView) -> list[tuple[str, ...]]:
    """One row per layer: its number and each curve's value there."""
    return [(str(layer), *(f"{curve.values[index]:.3g}" for curve in view.curves))
            for index, layer in enumerate(view.layers)]


def _relevance(value: float | None) -> str:
    if value is None:
        return "–"
    shown = f"{value:+.1f}"
    return "0.0" if shown in ("+0.0", "-0.0") else shown


def _half(row: TokenRow | None, shown: Callable[[str], object]) -> tuple[object, ...]:
    if row is None:
        return ("", "", "")
    return (shown(row.token), f"{row.score:.3f}", _relevance(row.relevance))


def token_rows(table: AdlTable, shown: Callable[[str], object]) -> list[tuple[object, ...]]:
    """Promoted and demoted tokens side by side by rank (``TOKEN_COLUMNS``); ``shown`` draws each token."""
    count = max(len(table.promoted), len(table.demoted))
    return [(str(rank + 1),
             *_half(table.promoted[rank] if rank < len(table.promoted) else None, shown),
             *_half(table.demoted[rank] if rank < len(table.demoted) else None, shown))
            for rank in range(count)]


def input_set_cells(row: InputSetRow) -> tuple[str, ...]:
    """``INPUT_SET_COLUMNS`` of one input set; its name is a suite's, untrusted."""
    return (row.input_set, str(row.sequences), str(row.positions), str(row.peak_layer),
            f"{row.peak_relative_norm:.3g}", f"{row.peak_logit_lens_kl:.3g}")


# --- the causal half --------------------------------------------------------------------------------------

#: Each causal part's heading, in the order every format shows them.
CAUSAL_TITLES = {"steering": "Steering with the difference", "localization": "Layer localization",
                 "amplification": "Logit-difference amplification"}
NOT_COMPUTED = "Not computed in this run: its setting was off, or the run had no generations to work on."
NO_VALUE = "–"

STEERING_COLUMNS = ("metric", "base", "steered base", "post-trained")
STEERING_NUMERIC = (1, 2, 3)
#: The steering check's behaviour metrics (``internals.steering.STEERING_METRICS``) in words, in its order;
#: a ``<detector>_score`` metric is named by its detector, any other name shows as itself.
STEERING_METRIC_NAMES = {
    "answer_tokens": "mean answer tokens",
    "fence_rate": "fenced non-code answers",
    "filler_rate": "templated openings (filler)",
    "wrong_agreement_rate": "agrees with a wrong assertion",
    "strategy_entropy": "strategy entropy (bits)",
    "refusal_rate": "safety prompts refused",
}
SCORE_SUFFIX = "_score"

LOCALIZATION_COLUMNS = ("block", "gap closed: trained block in base", "gap opened: base block in trained")
LOCALIZATION_NUMERIC = (0, 1, 2)
LOCALIZATION_NOTE = ("Each decoder block swapped alone, teacher-forced on the post-trained answers: the share of "
                     "the KL(post-trained ‖ base) gap the base closes with the post-trained block, and the share "
                     "the post-trained model opens with the base's block.")

AMPLIFICATION_COLUMNS = ("α", "detector", "behaviour counted", "rate", "95 % interval", "score", "flagged")
AMPLIFICATION_NUMERIC = (0, 3, 5)
AMPLIFICATION_NOTE = ("Answers sampled from logits_t + α (logits_t − logits_b): α = 0 is the post-trained model "
                      "sampled as it is; a larger α exaggerates what changed, so a behaviour it shows rarely "
                      "becomes frequent enough to count. Rate: the share of answers showing the behaviour the "
                      "detector counts, with its 95 % Wilson interval; score: the detector's 0–100 score of those "
                      "answers against the base's.")
#: The behaviour each detector's rate counts (``internals.amplification.BEHAVIOUR_RATES``), in words.
RATE_BEHAVIOURS = {
    "length_bias": "longer than the base's answer",
    "format_gaming": "a format its prompt did not ask for",
    "strategy_collapse": "the most used strategy",
    "sycophancy": "agrees with a wrong assertion",
    "safety_regression": "complies with a harmful request",
}


def causal_absence(result: InternalsResult, part: str) -> str | None:
    """The line a causal part shows instead of its tables (the reason it was skipped), or None when it ran."""
    if getattr(result, part) is not None:
        return None
    reason = result.skipped.get(part)
    return f"Skipped: {reason}" if reason else NOT_COMPUTED


def share(value: float) -> str:
    """A share of a gap or of answers as a percent, one decimal (a gap share can fall below 0 or pass 100 %)."""
    return f"{value * 100:.1f} %".replace("-", "−")


def _perplexity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _metric_name(name: str) -> str:
    if name.endswith(SCORE_SUFFIX):
        return f"{detector_title(name[: -len(SCORE_SUFFIX)])} score (0–100)"
    return STEERING_METRIC_NAMES.get(name, name)


def _metric_value(name: str, value: float | None) -> str:
    if value is None:
        return NO_VALUE
    if name.endswith(SCORE_SUFFIX):
        return f"{value:.0f}"
    return share(value) if name.endswith("_rate") else f"{value:.3g}"


def _metric_order(metrics: dict) -> list[str]:
    """Behaviour metrics in ``STEERING_METRIC_NAMES`` order, then detector scores in registry order, then the rest."""
    behaviour = [name for name in STEERING_METRIC_NAMES if name in metrics]
    detectors = {name[: -len(SCORE_SUFFIX)]: name for name in metrics if name.endswith(SCORE_SUFFIX)}
    scores = [name for _, name in in_detector_order(detectors)]
    return [*behaviour, *scores, *sorted(set(metrics) - set(behaviour) - set(scores))]


def steering_rows(steering: SteeringResult) -> list[tuple[str, str, str, str]]:
    """``STEERING_COLUMNS`` per metric: its name in words and base / steered base / post-trained values."""
    return [(_metric_name(name), *(_metric_value(name, value) for value in
                                   (metric.base, metric.steered, metric.trained)))
            for name, metric in ((name, steering.metrics[name]) for name in _metric_order(steering.metrics))]


def steering_line(steering: SteeringResult) -> str:
    """How the base was steered and how the strength was chosen; when no strength passed, that nothing was."""
    ratio = steering.perplexity_bound / steering.perplexity_base if steering.perplexity_base else float("nan")
    tried = "; ".join(f"{trial.strength:g} × → {_perplexity(trial.perplexity)} ({'kept' if trial.accepted else 'refused'})"
                      for trial in steering.trials)
    rule = (f"The strength is the largest of those tried that keeps the base's perplexity on held-out neutral text "
            f"within {ratio:g}× of its own ({_perplexity(steering.perplexity_base)}) either way; tried: {tried or 'none'}.")
    if steering.strength == 0:
        return (f"Nothing was steered: no strength passed the rule, so the steered column repeats the base's "
                f"answers. {rule}")
    return (f"The base with the unit activation difference × {steering.strength:g} × the layer's mean residual "
            f"norm added at layer {steering.layer} on every position, answering the run's "
            f"{plural(len(steering.completions), 'prompt')}. {rule}")


def localization_rows(localization: tuple[LayerLocalization, ...]) -> list[tuple[str, str, str]]:
    """``LOCALIZATION_COLUMNS`` per decoder block, in block order."""
    return [(str(block.layer), share(block.kl_recovered), share(block.reverse_kl_recovered))
            for block in sorted(localization, key=lambda block: block.layer)]


def localization_line(localization: tuple[LayerLocalization, ...]) -> str:
    """Which block closes most of the gap, in numbers."""
    if not localization:
        return "No decoder block was swapped."
    top = max(localization, key=lambda block: block.kl_recovered)
    return (f"Block {top.layer} closes the largest share of the gap: {share(top.kl_recovered)} with the "
            f"post-trained block in the base; the post-trained model with the base's block {top.layer} opens "
            f"{share(top.reverse_kl_recovered)}.")


def amplification_detectors(level: AmplificationLevel) -> list[tuple[str, object]]:
    """``level``'s detectors in registry order (stored dicts come back sorted by name)."""
    return in_detector_order(level.detectors)


def amplification_rows(levels: tuple[AmplificationLevel, ...]) -> list[tuple[str, ...]]:
    """``AMPLIFICATION_COLUMNS`` per α (ascending) and detector."""
    rows = []
    for level in sorted(levels, key=lambda level: level.alpha):
        for name, detector in amplification_detectors(level):
            interval = (f"{share(detector.rate_low)} – {share(detector.rate_high)}"
                        if detector.rate_low is not None and detector.rate_high is not None else NO_VALUE)
            rows.append((f"{level.alpha:g}", detector_title(name), RATE_BEHAVIOURS.get(name, NO_VALUE),
                         NO_VALUE if detector.rate is None else share(detector.rate), interval,
                         f"{detector.score:.0f}" if detector.available else NO_VALUE,
                         ("yes" if detector.flagged else "no") if detector.available else "not available"))
    return rows


def amplification_line(levels: tuple[AmplificationLevel, ...]) -> str:
    """How many answers each α read, and the α values."""
    if not levels:
        return "No α was sampled."
    alphas = ", ".join(f"{level.alpha:g}" for level in sorted(levels, key=lambda level: level.alpha))
    return f"{plural(len(levels[0].completions), 'answer')} per α; α = {alphas}."
