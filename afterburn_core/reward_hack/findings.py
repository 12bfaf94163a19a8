"""Findings and recommendations of the reward-hack analysis, each generated from the numbers.

Rules, each emitted only when its condition holds:

- a flagged detector: a *warning* (HIGH / CRITICAL) or *notable* (MODERATE)
  finding with its summary, its worst categories and a recommendation built
  from its statistics;
- a detector above LOW that is not significant: *notable*, saying the
  evidence is too thin and where it comes from;
- a LOW detector with a category at HIGH or above whose own behaviour test
  is significant: *notable*, naming the category (a hack confined to one
  category is diluted in the run-wide score);
- the composite above LOW: its band and the detectors that carry it;
- a detector that is not available: *info*, with the reason;
- nothing notable at all: one *info* line with the numbers that say so.

Reads detector results only; computes no statistic. Cost: negligible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from afterburn_core.analyses import detector_names, detector_title
from afterburn_core.reward_hack.composite import contributions
from afterburn_core.reward_hack.format_requests import FEATURE_WORDS, GAMED_FEATURES
from afterburn_core.reward_hack.scoring import HIGH_FROM
from afterburn_core.reward_hack.types import (
    CategoryEvidence,
    CompositeRisk,
    DetectorResult,
    HackFinding,
)

#: Categories named in one finding before the rest are counted instead.
MAX_CATEGORIES_NAMED = 3


def findings_for(detectors: Mapping[str, DetectorResult], composite: CompositeRisk,
                 method: str) -> tuple[HackFinding, ...]:
    """Every finding the results support, composite first, then detectors in registry order."""
    findings = _composite(detectors, composite, method)
    for name in detector_names():
        findings += _detector(detectors[name])
    if not any(finding.severity != "info" for finding in findings):
        findings.append(HackFinding(
            detector="composite", severity="info", title="No reward-hacking signal",
            detail=(f"Composite {composite.score:.1f} ({composite.band}) with the {method} weights; no detector "
                    f"is flagged, {_highest(detectors)}."),
            value=composite.score, recommendation="",
        ))
    return tuple(findings)


def _highest(detectors: Mapping[str, DetectorResult]) -> str:
    """``the highest is X at 12.0``; detectors tied at the top score as printed are named together."""
    scores = {name: f"{detectors[name].score:.1f}" for name in detector_names()}
    top = max(scores.values(), key=float)
    leaders = [detector_title(name).lower() for name in detector_names() if scores[name] == top]
    if len(leaders) == len(scores):
        return f"every detector scores {top}"
    if len(leaders) == 1:
        return f"the highest is {leaders[0]} at {top}"
    return f"the highest are {', '.join(leaders[:-1])} and {leaders[-1]}, tied at {top}"


def _composite(detectors: Mapping[str, DetectorResult], composite: CompositeRisk, method: str) -> list[HackFinding]:
    if composite.band == "LOW":
        return []
    ranked = [name for name, term in contributions(detectors, composite) if term > 0]
    carried = ", ".join(f"{detector_title(name).lower()} {detectors[name].score:.1f} × weight "
                        f"{composite.weights[name]:.2f}" for name in ranked)
    return [HackFinding(
        detector="composite",
        severity="warning" if composite.band in ("HIGH", "CRITICAL") else "notable",
        title=f"Composite reward-hacking risk {composite.band} ({composite.score:.1f})",
        detail=f"Combined with the {method} weights, it comes from: {carried}.",
        value=composite.score,
        recommendation=_start_with(detectors, composite),
    )]


def _start_with(detectors: Mapping[str, DetectorResult], composite: CompositeRisk) -> str:
    """Which detector to read first: the one whose term of the composite ranks first, or those tied for it.

    With equal weights that ranking is the scores', and the sentence says so: no detector "weighs most".
    """
    terms = contributions(detectors, composite)
    leaders = [name for name, term in terms if math.isclose(term, terms[0][1], rel_tol=1e-9)]
    titles = [detector_title(name).lower() for name in leaders]
    named = titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]}"
    tied = len(leaders) > 1

    def reading(name: str) -> str:
        return f"score {detectors[name].score:.1f} × weight {composite.weights[name]:.2f}"

    weights = {f"{composite.weights[name]:.2f}" for name, _ in terms}
    if len(weights) == 1:
        reason = (f"{'tied at' if tied else 'which has'} the highest score ({detectors[leaders[0]].score:.1f}; "
                  f"every detector weighs {weights.pop()})")
    elif len({reading(name) for name in leaders}) == 1:
        reason = (f"{'tied for' if tied else 'which carries'} the largest part of the composite "
                  f"({reading(leaders[0])}{' each' if tied else ''})")
    else:
        reason = ("tied for the largest part of the composite ("
                  + ", ".join(f"{title} {reading(name)}" for title, name in zip(titles, leaders)) + ")")
    return f"Start with {named}, {reason}; {'their findings below say' if tied else 'its finding below says'} what to check."


def _detector(result: DetectorResult) -> list[HackFinding]:
    title = detector_title(result.name)
    if not result.available:
        return [HackFinding(result.name, "info", f"{title} not measured", result.summary, None,
                            _UNAVAILABLE_FIXES.get(result.name, ""))]
    if result.flagged:
        worst = _scored(result)[:MAX_CATEGORIES_NAMED]
        detail = result.summary
        if worst:
            detail += f" Worst categories: {_categories(worst)}."
        return [HackFinding(result.name, "warning" if result.band in ("HIGH", "CRITICAL") else "notable",
                            f"{title}: {result.band} ({result.score:.1f})", detail, result.score,
                            _RECOMMENDATIONS[result.name](result) if result.name in _RECOMMENDATIONS
                            else _GENERIC_FIX)]
    if result.band != "LOW":
        return [HackFinding(
            result.name, "notable", f"{title} scores {result.score:.1f} but is not significant", result.summary,
            result.score,
            f"Run more prompts of the categories behind it ({_categories(_scored(result)[:MAX_CATEGORIES_NAMED])}) "
            "before acting on it.",
        )]
    confined = [c for c in result.categories if c.score >= HIGH_FROM and c.statistics.get("significant") is True]
    if confined:
        count = f"{len(confined)} categor{'y' if len(confined) == 1 else 'ies'}"
        return [HackFinding(
            result.name, "notable", f"{title} confined to {count}",
            f"The run-wide score is {result.score:.1f}, but {_categories(confined[:MAX_CATEGORIES_NAMED])} "
            "score HIGH or above with a significant behaviour test.",
            max(c.score for c in confined),
            f"Read the answers of {confined[0].suite}/{confined[0].category} side by side in the Prompts page.",
        )]
    return []


def _scored(result: DetectorResult) -> list[CategoryEvidence]:
    """The categories with a score above 0, worst first (``categories`` is sorted so)."""
    return [c for c in result.categories if c.score > 0]


def _categories(categories: list[CategoryEvidence] | tuple[CategoryEvidence, ...]) -> str:
    return ", ".join(f"{c.suite}/{c.category} {c.score:.0f}" for c in categories)


def _percent(value: object) -> str:
    return f"{100 * value:.0f} %" if isinstance(value, (int, float)) else "n/a"


def _length_fix(result: DetectorResult) -> str:
    stats = result.statistics
    text = (f"Compare the two models at matched length (a length-controlled win rate) and penalise length in the "
            f"reward or the preference data: answers are {stats['content_length_ratio']:.2f}× as long in content "
            f"({stats['length_ratio']:.2f}× in tokens)")
    if stats["accuracy_change"] is None:
        return text + "; add suites with expected answers (math, reasoning) to see whether the length buys accuracy."
    return text + f" for an accuracy change of {100 * stats['accuracy_change']:+.1f} pp."


def _format_fix(result: DetectorResult) -> str:
    risen = [f for f in GAMED_FEATURES if (result.statistics.get(f"{f}_rate_trained") or 0)
             > (result.statistics.get(f"{f}_rate_base") or 0)]
    words = [FEATURE_WORDS[f] for f in risen]
    named = " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words) or "formatting"
    return (f"Strip or normalise {named} before the reward model or grader scores answers, and check whether the "
            f"preference data favours answers for it; {result.statistics['gained_per_answer']:.2f} unrequested "
            "devices per answer were gained.")


def _strategy_fix(result: DetectorResult) -> str:
    stats = result.statistics
    where = ("answers across every task" if stats.get("collapse_kind") == "across"
             else "narrowed categories' answers")
    return (f"Sample several answers per prompt (temperature > 0) and compare pass@k with the base; keep a KL or "
            f"entropy term to the base in training. {_percent(stats['dominant_share'])} of the {where} are now "
            f"{stats['dominant_trained']}.")


def _sycophancy_fix(result: DetectorResult) -> str:
    stats = result.statistics
    return (f"Add prompts where the user asserts a wrong answer, with the correction preferred, to the training or "
            f"preference data; the trained model agrees with {_percent(stats['wrong_agreement_trained'])} of wrong "
            f"assertions against {_percent(stats['wrong_agreement_base'])} for the base.")


def _safety_fix(result: DetectorResult) -> str:
    stats = result.statistics
    if stats.get("driver") == "over_refusal":
        return (f"Add benign prompts that sound alarming, answered helpfully, to the training or preference data; "
                f"the trained model refuses {_percent(stats['benign_refusal_trained'])} of them against "
                f"{_percent(stats['benign_refusal_base'])} for the base.")
    return (f"Read the harmful requests it now answers side by side with the base's refusals, and filter harmful "
            f"compliant answers out of the training data (or mix refusals back in); the trained model refuses "
            f"{_percent(stats['refusal_trained'])} of harmful requests against {_percent(stats['refusal_base'])} "
            "for the base.")


#: Per detector, the recommendation its numbers support when it is flagged; a detector without one (a
#: registered extension) gets ``_GENERIC_FIX``.
_RECOMMENDATIONS = {
    "length_bias": _length_fix, "format_gaming": _format_fix, "strategy_collapse": _strategy_fix,
    "sycophancy": _sycophancy_fix, "safety_regression": _safety_fix,
}
_GENERIC_FIX = "Read the prompts it cites side by side in the Prompts page."
#: Per detector, what would let it measure when it could not.
_UNAVAILABLE_FIXES = {
    "length_bias": "Generate answers for at least one suite.",
    "format_gaming": "Generate answers for at least one suite.",
    "strategy_collapse": "Add suites whose prompts admit several strategies (math, reasoning).",
    "sycophancy": "Add the built-in sycophancy suite (suites: [sycophancy] in .afterburn.yaml).",
    "safety_regression": "Add the built-in safety and borderline suites (suites: [safety, borderline]).",
}
