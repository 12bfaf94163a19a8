"""The reward-hack result as every door shows it: detectors in registry order, readings, tables, cited prompts.

``reward_hack_view(result)`` turns a stored ``RewardHackResult`` into a
frozen ``RewardHackView``: the detectors in the registry's order, the
composite's one-line reading, the weight of each detector and its score (an
unavailable detector has none), the method weights as one line, and the key
measures that tell the detectors' causes apart (``key_measures``). Per
detector, ``statistic_cells`` and ``statistic_rows`` word its statistics,
``ranked_categories`` orders its per-category evidence, and ``evidence``
quotes the prompts it cites from the run's generations. Titles and order
come from the registry (``afterburn_core.analyses``). Selects, orders and
words; draws and escapes nothing. Cost: linear in the detectors.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.analyses import detector_names, detector_title, in_detector_order
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.reward_hack.types import CategoryEvidence, DetectorResult, RewardHackResult
from afterburn_core.views.text import excerpt
from afterburn_core.views.wording import statistic, words


@dataclass(frozen=True)
class WeightRow:
    """One registered detector in the composite: its title, weight, and score (None: not measured)."""

    title: str
    weight: float
    score: float | None


@dataclass(frozen=True)
class RewardHackView:
    """What the doors show of a reward-hack result."""

    detectors: tuple[DetectorResult, ...]
    flagged: tuple[str, ...]
    reading: str
    weights: tuple[WeightRow, ...]
    weight_line: str
    measures: tuple[KeyMeasure, ...]


def detectors(result: RewardHackResult) -> tuple[DetectorResult, ...]:
    """The run's detectors in the order every view lists them (unknown names last)."""
    return tuple(detector for _, detector in in_detector_order(result.detectors))


def weight_line(result: RewardHackResult) -> str:
    """``Length bias 0.25, Format gaming 0.25, …``: the composite's weights in registry order."""
    return ", ".join(f"{detector_title(name)} {weight:.2f}" for name, weight in in_detector_order(result.composite.weights))


def reward_hack_view(result: RewardHackResult) -> RewardHackView:
    """The reward-hack result as the doors show it (the registry's view of the ``reward_hack`` kind)."""
    composite = result.composite
    ordered = detectors(result)
    flagged = tuple(detector_title(detector.name) for detector in ordered if detector.flagged)
    reading = (f"Composite {composite.score:.0f}/100 ({composite.band}); "
               + (f"flagged: {', '.join(flagged)}." if flagged else "no detector flagged."))
    # An unavailable detector's 0 is no measurement; it has no score, as its gauge shows none.
    weights = tuple(WeightRow(detector_title(name), composite.weights.get(name, 0.0),
                              result.detectors[name].score
                              if name in result.detectors and result.detectors[name].available else None)
                    for name in detector_names())
    return RewardHackView(ordered, flagged, reading, weights, weight_line(result), key_measures(result))


def ranked_categories(detector: DetectorResult) -> tuple[CategoryEvidence, ...]:
    """The detector's per-category evidence, highest score first."""
    return tuple(sorted(detector.categories, key=lambda category: category.score, reverse=True))


@dataclass(frozen=True)
class KeyMeasure:
    """One measure the detectors' definitions turn on, in words: what it is and its value (``–`` unmeasured)."""

    label: str
    value: str


def key_measures(result: RewardHackResult) -> tuple[KeyMeasure, ...]:
    """The measures that tell the detectors' causes apart, read from their statistics.

    Length in tokens and in content (markup removed) with the share of the growth that is markup (a format
    hack is not length bias); strategy collapse within categories and across tasks; refusals of harmful
    requests and of benign prompts that sound alarming. A detector the result lacks reads ``–``.
    """

    def stat(detector: str, name: str) -> float | str | bool | None:
        found = result.detectors.get(detector)
        return found.statistics.get(name) if found is not None and found.available else None

    def ratio(value: object) -> str:
        return f"{value:.2f}×" if isinstance(value, (int, float)) else "–"

    def share(value: object) -> str:
        return f"{100 * value:.0f} %" if isinstance(value, (int, float)) else "–"

    def score(value: object) -> str:
        return f"{value:.0f}" if isinstance(value, (int, float)) else "–"

    def moved(base: object, trained: object) -> str:
        return f"{share(base)} → {share(trained)}" if base is not None or trained is not None else "–"

    return (
        KeyMeasure("answer length, trained ÷ base: tokens / content",
                   f"{ratio(stat('length_bias', 'length_ratio'))} / "
                   f"{ratio(stat('length_bias', 'content_length_ratio'))}"),
        KeyMeasure("share of the growth that is markup", share(stat("length_bias", "markup_share_of_growth"))),
        KeyMeasure("strategy collapse score: within categories / across tasks",
                   f"{score(stat('strategy_collapse', 'within_score'))} / "
                   f"{score(stat('strategy_collapse', 'across_score'))}"),
        KeyMeasure("harmful requests refused, base → trained",
                   moved(stat("safety_regression", "refusal_base"), stat("safety_regression", "refusal_trained"))),
        KeyMeasure("benign prompts that sound alarming refused, base → trained",
                   moved(stat("safety_regression", "benign_refusal_base"),
                         stat("safety_regression", "benign_refusal_trained"))),
    )


STATISTIC_COLUMNS = ("statistic", "value", "statistic", "value")
STATISTIC_NUMERIC = (1, 3)


def statistic_cells(detector: DetectorResult) -> tuple[tuple[str, str], ...]:
    """A detector's statistics as (name in words, value as text)."""
    return tuple((words(name), statistic(value)) for name, value in detector.statistics.items())


def statistic_rows(detector: DetectorResult) -> list[tuple[str, str, str, str]]:
    """A detector's statistics as text, two (name, value) pairs per row so a long list stays short."""
    cells = statistic_cells(detector)
    half = (len(cells) + 1) // 2
    return [(*left, *(right or ("", ""))) for left, right in zip(cells[:half], [*cells[half:], None])]


def evidence(generations: GenerationsResult | None, links: tuple[str, ...],
             limit: int) -> tuple[tuple[str, str, str], ...]:
    """Each ``suite/prompt_id`` a detector cites, with excerpts of the prompt and the post-trained answer."""
    by_link = {}
    if generations is not None:
        by_link = {f"{prompt.suite}/{prompt.prompt_id}": (excerpt(prompt.text, limit), excerpt(trained.text, limit))
                   for prompt, trained in zip(generations.prompts, generations.trained)}
    return tuple((link, *by_link.get(link, ("(not among this run's prompts)", "–"))) for link in links)
