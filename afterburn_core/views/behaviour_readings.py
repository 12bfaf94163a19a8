"""One group of the behaviour statistics as the Behaviour page reads it: each chart's line, made of its numbers.

``group_view(group, stats)`` returns a frozen ``GroupView`` for one suite or
category: its tests ranked, and one reading per section (overview, length,
strategy, formats, reasoning, accuracy, refusals, diversity, sycophancy)
with the rows each chart draws in the order it draws them. The run-wide
tables are ``behaviour``'s. Words and orders what the analysis stored;
draws nothing. Cost: linear in the group's tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.behaviour.listing import Shift
from afterburn_core.behaviour.statistics import MANN_WHITNEY
from afterburn_core.behaviour.types import BehaviourStats, GroupStats, ProportionShift, SetMetricShift
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.views.behaviour import Paired, ShiftRow, named_test, ranked_tests
from afterburn_core.views.ranking import direction, leaders, listed
from afterburn_core.views.theme import MODEL_LABELS
from afterburn_core.views.wording import correction_name, p_value, percent, points

Rate = ProportionShift | SetMetricShift

#: What each test behind a verdict compares (behaviour/statistics.py): said when a test and its interval
#: disagree, since the interval measures something else.
TESTED = {
    "wilcoxon_signed_rank": "the per-prompt differences (their signed ranks)",
    "mann_whitney_u": "the ranks of the two samples, ignoring the pairing",
    "mcnemar_exact": "only the prompts whose answer changed (an exact binomial test)",
    "paired_permutation": "the difference against answers swapped within prompts",
    "paired_permutation_tvd": "the whole mix (total variation) against labels swapped within prompts",
}


@dataclass(frozen=True)
class Section:
    """One chart of the page: its reading and the paired values it draws (empty: a reading only)."""

    reading: str
    bars: tuple[Paired, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class GroupView:
    """Everything the Behaviour page shows of one group; a None section has nothing to show."""

    tests: tuple[ShiftRow, ...]
    overview: Section
    length: Section
    strategy: Section
    formats: Section | None
    reasoning: Section
    accuracy: Section | None
    refusal: Section | None
    diversity: Section
    sycophancy: Section | None


def verdict(shift: Shift, stats: BehaviourStats) -> str:
    """``McNemar exact: significant after Benjamini–Hochberg (p_adj 4.2e-05)`` and the like."""
    if shift.p_value is None or shift.p_adjusted is None:
        return f"{named_test(shift)}: not tested (no data)"
    word = "significant" if shift.significant else "not significant"
    return f"{named_test(shift)}: {word} after {correction_name(stats.correction)} (p_adj {shift.p_adjusted:.2g})"


def reconciled(shift: Shift, stats: BehaviourStats, interval_of: str, ci: tuple[float, float] | None) -> str:
    """Why the verdict and the 95% interval of ``interval_of`` disagree, as a sentence ("" when they agree).

    The interval is uncorrected and may measure another statistic than the test compares, so an interval
    that excludes 0 beside a test that is not significant (or the reverse) is no contradiction: say which.
    """
    if ci is None or shift.p_value is None or shift.p_adjusted is None:
        return ""
    excludes_zero = ci[0] > 0 or ci[1] < 0
    if excludes_zero == shift.significant:
        return ""
    tested = TESTED.get(shift.test, f"what the {named_test(shift)} test compares")
    if shift.significant:
        return (f" The test is significant though the 95% CI of {interval_of} includes 0: the test compares "
                f"{tested}, the interval measures {interval_of}.")
    if shift.p_value < stats.alpha:
        return (f" The 95% CI of {interval_of} excludes 0 but the test is not significant: its p is "
                f"{p_value(shift.p_value)} alone, {p_value(shift.p_adjusted)} after the "
                f"{correction_name(stats.correction)} correction over all {stats.n_tests} tests, which the "
                "interval does not take.")
    return (f" The 95% CI of {interval_of} excludes 0 but the test is not significant even before the correction "
            f"(p {p_value(shift.p_value)}): the interval measures {interval_of}, the test compares {tested}.")


def interval(ci: tuple[float, float] | None, fmt) -> str:
    return "" if ci is None else f", 95% CI {fmt(ci[0])} to {fmt(ci[1])}"




def rate_change(shift: Rate, *, as_rate: bool = True, of: str = "") -> str:
    """``0% → 94%{of} (+94 points, 95% CI +76 to +98)``; ``as_rate=False`` for plain numbers."""
    if as_rate:
        return (f"{percent(shift.base)} → {percent(shift.trained)}{of} ({points(shift.difference)}"
                f"{interval(shift.ci, lambda value: f'{value * 100:+.0f}')})")
    return (f"{shift.base:.3g} → {shift.trained:.3g} ({shift.difference:+.3g}"
            f"{interval(shift.ci, lambda value: f'{value:+.3g}')})")


def _paired(items: list[tuple[str, Rate]]) -> tuple[Paired, ...]:
    return tuple(Paired(label, shift.base, shift.trained, shift.significant) for label, shift in items)


def overview(tests: tuple[ShiftRow, ...], stats: BehaviourStats) -> Section:
    significant = [row.measure for row in tests if row.significant]
    line = (f"{len(significant)} of {len(tests)} tests in this group are significant after the "
            f"{correction_name(stats.correction)} correction (α = {stats.alpha:g}, over all {stats.n_tests} tests "
            "of the run)")
    note = (f"Significant = {correction_name(stats.correction)}-adjusted p below α = {stats.alpha:g}; the correction "
            f"runs over every test of every suite and category in this run ({stats.n_tests} tests, "
            f"{stats.n_significant} significant). ✱ marks the significant measures in the charts below.")
    return Section(line + (f": {', '.join(significant)}." if significant else "."), note=note)


def length(group: GroupStats, stats: BehaviourStats) -> Section:
    shift = group.length
    change = f"{shift.median_shift:+.3g}"
    secondary = ("" if shift.mann_whitney_p is None or shift.test == MANN_WHITNEY else
                 f" Mann–Whitney U, which ignores that both models answered the same prompts: p "
                 f"{p_value(shift.mann_whitney_p)} (secondary, not corrected).")
    return Section(
        f"Post-trained answers are {direction(float(change), 'longer', 'shorter', 'as long')}: median "
        f"{shift.base_median:.3g} → {shift.trained_median:.3g} tokens ({change}"
        f"{interval(shift.ci, lambda value: f'{value:+.3g}')}), Cohen's d {shift.effect_size:.2f}; "
        f"{verdict(shift, stats)}.{reconciled(shift, stats, 'the median shift', shift.ci)}",
        (Paired("median", shift.base_median, shift.trained_median, shift.significant),),
        f"{shift.n} answers per model; dashed lines are the medians. Means {shift.base_mean:.3g} → "
        f"{shift.trained_mean:.3g} tokens.{secondary}")


def strategy(group: GroupStats, stats: BehaviourStats) -> Section:
    shift = group.strategy
    labels = list(dict.fromkeys([*shift.base, *shift.trained]))
    entropy = (f"entropy {direction(round(shift.entropy_trained, 2) - round(shift.entropy_base, 2), 'rose', 'fell', 'held')}"
               f" {shift.entropy_base:.2f} → {shift.entropy_trained:.2f} bits")
    if shift.effect_size == 0:
        used = sorted((label for label in labels if shift.base.get(label)), key=lambda label: -shift.base[label])
        mix = ", ".join(f"{label} {percent(shift.base[label])}" for label in used)
        line = (f"The strategy mix did not change: {mix} under both models "
                f"(entropy {shift.entropy_base:.2f} bits); {verdict(shift, stats)}.")
    else:
        # Every label whose share moved most as printed: tied labels are named together.
        moved = leaders(labels, lambda label: abs(shift.trained.get(label, 0.0) - shift.base.get(label, 0.0)),
                        lambda change: f"{change:.0%}")
        shares = ", ".join(f"{label} {percent(shift.base.get(label, 0.0))} → {percent(shift.trained.get(label, 0.0))}"
                           for label in moved)
        line = (f"Strategy mix: total variation {shift.effect_size:.2f} between base and post-trained "
                f"({shares}); {entropy}; {verdict(shift, stats)}.")
    note = ("" if shift.entropy_drop_ci is None else
            f"Entropy drop (base − post-trained) 95% CI {shift.entropy_drop_ci[0]:.2f} to "
            f"{shift.entropy_drop_ci[1]:.2f} bits; a collapse onto one strategy shows as a drop.")
    # Unmarked labels: the mix has one test, its verdict is in the reading.
    bars = tuple(Paired(label, shift.base.get(label, 0.0), shift.trained.get(label, 0.0)) for label in labels)
    return Section(line + reconciled(shift, stats, "the entropy drop", shift.entropy_drop_ci), bars, note)


def formats(group: GroupStats, stats: BehaviourStats) -> Section | None:
    if not group.format:
        return None
    items = sorted(group.format.items(), key=lambda item: -abs(item[1].difference))
    n_significant = sum(shift.significant for _, shift in items)
    # The features whose rate moved most as printed (whole points): tied features are named together.
    top = leaders(items, lambda item: abs(item[1].difference), lambda change: f"{change * 100:.0f}")
    if top[0][1].difference == 0:
        line = f"No format's use changed: all {len(items)} features have the same rate under both models."
    else:
        verbs = {direction(shift.difference, "rose", "fell", "held") for _, shift in top}
        verb = verbs.pop() if len(verbs) == 1 else "changed"
        if len(top) == 1:
            changes = f", in {rate_change(top[0][1], of=' of answers')}, {verdict(top[0][1], stats)}"
        else:
            changes = (f", tied at {abs(top[0][1].difference) * 100:.0f} points: "
                       + "; ".join(f"{feature} {rate_change(shift, of=' of answers')}, {verdict(shift, stats)}"
                                   for feature, shift in top))
        line = (f"{listed([feature for feature, _ in top])} use {verb} most{changes}; "
                f"{n_significant} of {len(items)} format features shifted significantly."
                + "".join(reconciled(shift, stats, f"{feature}'s rate difference", shift.ci) for feature, shift in top))
    shown = [(name, shift) for name, shift in items if shift.base or shift.trained] or items
    hidden = len(items) - len(shown)
    note = (f"{hidden} features used by neither model are left out of the chart (they are in the table above)."
            if hidden else "")
    return Section(line, _paired(shown), note)


def reasoning(group: GroupStats, stats: BehaviourStats) -> Section:
    markers = group.reasoning
    depth = markers.cot_depth
    rates = [("self-correction", markers.self_correction), ("verification", markers.verification)]
    n_significant = sum(shift.significant for shift in (depth, *(shift for _, shift in rates)))
    return Section(
        f"Reasoning links per answer: mean {depth.base_mean:.2f} → {depth.trained_mean:.2f} "
        f"({verdict(depth, stats)}); self-correction {percent(markers.self_correction.base)} → "
        f"{percent(markers.self_correction.trained)}, verification {percent(markers.verification.base)} → "
        f"{percent(markers.verification.trained)}; {n_significant} of 3 significant.", _paired(rates))


def accuracy(group: GroupStats, stats: BehaviourStats) -> Section | None:
    shift = group.accuracy
    if shift is None:
        return None
    return Section(f"Accuracy on {shift.n} graded prompts: {rate_change(shift)}; {shift.base_only} answered "
                   f"right only by base, {shift.trained_only} only by post-trained; {verdict(shift, stats)}."
                   f"{reconciled(shift, stats, 'the accuracy difference', shift.ci)}",
                   _paired([("accuracy", shift)]))


def refusal(group: GroupStats, stats: BehaviourStats) -> Section | None:
    """Refusals where they belong (harmful requests) and where they do not (benign prompts that sound alarming)."""
    harmful, benign = group.refusal_rate, group.benign_refusal_rate
    parts, items = [], []
    if harmful is not None:
        parts.append(f"Refusal rate on {harmful.n} prompts that should be refused: {rate_change(harmful)}; "
                     f"{verdict(harmful, stats)}.{reconciled(harmful, stats, 'the refusal rate difference', harmful.ci)}")
        items.append(("refusal rate", harmful))
    if benign is not None:
        parts.append(f"Refusal rate on {benign.n} benign prompts that sound alarming: {rate_change(benign)}; "
                     f"{verdict(benign, stats)}."
                     f"{reconciled(benign, stats, 'the benign refusal rate difference', benign.ci)}")
        items.append(("refusal rate, benign prompts", benign))
    if not items:
        return None
    return Section(" ".join(parts), _paired(items))


def diversity(group: GroupStats, stats: BehaviourStats) -> Section:
    measures = group.diversity
    items = [("distinct-1", measures.distinct_1), ("distinct-2", measures.distinct_2),
             ("repeated openings", measures.repeated_openings)]
    n_significant = sum(shift.significant for _, shift in items)
    return Section(f"Distinct-2 {rate_change(measures.distinct_2, as_rate=False)}, repeated openings "
                   f"{rate_change(measures.repeated_openings)}; {n_significant} of 3 significant after "
                   f"{correction_name(stats.correction)}.", _paired(items))


def sycophancy(group: GroupStats, stats: BehaviourStats) -> Section | None:
    probes = group.sycophancy
    if probes is None:
        return None
    items = [(label, shift) for label, shift in (("agrees with a wrong assertion", probes.wrong_agreement),
                                                 ("agrees with a right assertion", probes.right_agreement),
                                                 ("flips to the wrong assertion", probes.flips))
             if shift is not None]
    if not items:
        return Section("", note=f"{probes.n_probes} probes, but none could be scored.")
    parts = []
    if probes.wrong_agreement is not None:
        parts.append(f"agreement with wrong assertions {rate_change(probes.wrong_agreement)}, "
                     f"{verdict(probes.wrong_agreement, stats)}")
    if probes.flips is not None:
        flips = probes.flips
        parts.append(f"flips {round(flips.base * flips.n)} → {round(flips.trained * flips.n)} of {flips.n} probes "
                     "(right when asked plainly, then agreeing with the wrong claim)")
    if probes.right_agreement is not None:
        parts.append(f"agreement with right assertions {percent(probes.right_agreement.base)} → "
                     f"{percent(probes.right_agreement.trained)}")
    agreement = ("" if probes.wrong_agreement is None else
                 reconciled(probes.wrong_agreement, stats, "the difference in agreement with wrong assertions",
                            probes.wrong_agreement.ci))
    return Section(f"Over {probes.n_probes} probes: " + "; ".join(parts) + "." + agreement, _paired(items))


@dataclass(frozen=True)
class Evidence:
    """A prompt to open (``suite/prompt_id``) and the line that says why."""

    link: str
    label: str


def group_lengths(generations: GenerationsResult, suite: str, category: str | None) -> tuple[tuple[str, int], ...]:
    """The stored output length of every answer of the group's prompts: (model label, tokens)."""
    return tuple((model, completion.n_tokens)
                 for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained)
                 if prompt.suite == suite and (category is None or prompt.category == category)
                 for model, completion in zip(MODEL_LABELS, (base, trained)))


def largest_length_change(generations: GenerationsResult, suite: str, category: str | None) -> Evidence | None:
    """The group's prompt whose answer length changed most, longer or shorter (None: no prompt)."""
    members = [(trained.n_tokens - base.n_tokens, prompt)
               for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained)
               if prompt.suite == suite and (category is None or prompt.category == category)]
    if not members:
        return None
    change, prompt = max(members, key=lambda member: abs(member[0]))
    link = f"{prompt.suite}/{prompt.prompt_id}"
    return Evidence(link, f"Open {link}, the answer whose length changed most ({change:+d} tokens)")


def group_view(suite: str, group: GroupStats, stats: BehaviourStats) -> GroupView:
    """One suite's group (overall or a category) as the Behaviour page shows it."""
    tests = ranked_tests(suite, group)
    return GroupView(tests, overview(tests, stats), length(group, stats), strategy(group, stats),
                     formats(group, stats), reasoning(group, stats), accuracy(group, stats), refusal(group, stats),
                     diversity(group, stats), sycophancy(group, stats))
