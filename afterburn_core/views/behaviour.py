"""The behaviour statistics as every door shows them: tests as ranked rows, paired rates, the run's significance line.

``behaviour_view(stats)`` turns a stored ``BehaviourStats`` into a frozen
``BehaviourView``: every test of every suite's overall group as a row
(significant first, then by corrected p), the median lengths per suite and
category, and the one line that says how many tests are significant (on whole
suites, which the tables list, and within categories), with the tables'
headings counted the same way. The per-group readings the Behaviour page
shows are ``behaviour_readings``'.
Selects, ranks and words what the analysis stored; draws and escapes
nothing. Cost: linear in the tests, plus a sort.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.behaviour.listing import Shift, group_tests, shift_cells
from afterburn_core.behaviour.types import BehaviourStats, GroupStats
from afterburn_core.views.theme import BASE_LABEL, TRAINED_LABEL
from afterburn_core.views.wording import correction_name, p_value, words

#: How each statistical test the analysis runs (behaviour/statistics.py) is named.
TEST_NAMES = {
    "wilcoxon_signed_rank": "Wilcoxon signed-rank (paired)",
    "mann_whitney_u": "Mann–Whitney U",
    "mcnemar_exact": "McNemar exact",
    "paired_permutation_tvd": "paired permutation (total variation)",
    "paired_permutation": "paired permutation",
}
#: Marks a significant measure in chart labels (after the correction).
SIGNIFICANT_MARK = " ✱"


@dataclass(frozen=True)
class Paired:
    """One measure for both models (a rate, a median), flagged when its test is significant."""

    label: str
    base: float
    trained: float
    significant: bool = False

    @property
    def marked(self) -> str:
        """The label with ``SIGNIFICANT_MARK`` when significant."""
        return self.label + (SIGNIFICANT_MARK if self.significant else "")


@dataclass(frozen=True)
class ShiftRow:
    """One behaviour test as a table row."""

    suite: str
    area: str
    measure: str
    base: str
    trained: str
    change: str
    p_adjusted: float | None
    significant: bool
    shift: Shift

    def cells(self) -> tuple[str, ...]:
        """The row as text, in ``SHIFT_COLUMNS`` order."""
        return (self.suite, self.area, self.measure, self.base, self.trained, self.change, p_value(self.p_adjusted))


#: The columns of a behaviour-tests table, and which of them hold numbers.
SHIFT_COLUMNS = ("suite", "area", "measure", BASE_LABEL, TRAINED_LABEL, "change", "p (corrected)")
SHIFT_NUMERIC = (6,)


@dataclass(frozen=True)
class BehaviourView:
    """What the doors show of the whole run's behaviour statistics."""

    significance: str
    caption: str
    rows: tuple[ShiftRow, ...]
    median_lengths: tuple[Paired, ...]


def named_test(shift: Shift) -> str:
    """The display name of the test behind ``shift``."""
    return TEST_NAMES.get(shift.test, shift.test)


def ranked_tests(suite: str, group: GroupStats) -> tuple[ShiftRow, ...]:
    """Every test of ``group``: significant first, then by corrected p (untested last)."""
    rows = [ShiftRow(suite, area, measure, *shift_cells(shift), shift.p_adjusted, shift.significant, shift)
            for area, measure, shift in group_tests(group)]
    return tuple(sorted(rows, key=lambda row: (not row.significant, 1.0 if row.p_adjusted is None else row.p_adjusted)))


def shift_rows(stats: BehaviourStats) -> tuple[ShiftRow, ...]:
    """Every test of every suite's overall group: significant first, then by corrected p."""
    rows = [row for suite, suite_stats in stats.suites.items() for row in ranked_tests(suite, suite_stats.overall)]
    return tuple(sorted(rows, key=lambda row: (not row.significant, 1.0 if row.p_adjusted is None else row.p_adjusted)))


def median_lengths(stats: BehaviourStats) -> tuple[Paired, ...]:
    """Median output tokens per suite (overall, then each category)."""
    return tuple(
        Paired(f"{suite}" if category is None else f"{suite} · {category}", group.length.base_median,
               group.length.trained_median, group.length.significant)
        for suite, suite_stats in stats.suites.items()
        for category, group in ((None, suite_stats.overall), *suite_stats.categories.items())
    )


def strategy_shares(group: GroupStats) -> tuple[Paired, ...]:
    """Each strategy's share of answers, for both models (significance is the whole mix's test)."""
    labels = sorted(set(group.strategy.base) | set(group.strategy.trained))
    return tuple(Paired(words(label), group.strategy.base.get(label, 0.0), group.strategy.trained.get(label, 0.0),
                        group.strategy.significant) for label in labels)


def format_rates(group: GroupStats) -> tuple[Paired, ...]:
    """Each format feature's rate of use, for both models."""
    return tuple(Paired(words(feature), shift.base, shift.trained, shift.significant)
                 for feature, shift in group.format.items())


@dataclass(frozen=True)
class Tally:
    """How many tests (those with a p value) one part of the run holds, and how many are significant."""

    tests: int
    significant: int


def _count(groups: list[GroupStats]) -> Tally:
    shifts = [shift for group in groups for _, _, shift in group_tests(group) if shift.p_value is not None]
    return Tally(len(shifts), sum(shift.significant for shift in shifts))


def suite_count(stats: BehaviourStats) -> Tally:
    """The tests on whole suites: the ones ``shift_rows`` lists and the reports' tables show."""
    return _count([suite_stats.overall for suite_stats in stats.suites.values()])


def significance_fact(stats: BehaviourStats) -> tuple[str, str]:
    """``("45 of 252", "tests significant after … (α = 0.05): 15 of the 41 on whole suites, 30 of the 211
    within categories")``: the run's count and what it counts, which the summary card shows as value and note
    and the behaviour section as one line, so every door counts the same tests the same way."""
    suites = suite_count(stats)
    categories = _count([group for suite_stats in stats.suites.values() for group in suite_stats.categories.values()])
    parts = [f"{suites.significant} of the {suites.tests} on whole suites"]
    if categories.tests:
        parts.append(f"{categories.significant} of the {categories.tests} within categories")
    return (f"{stats.n_significant} of {stats.n_tests}",
            f"tests significant after {correction_name(stats.correction)} correction (α = {stats.alpha:g}): "
            + ", ".join(parts))


def significance(stats: BehaviourStats) -> str:
    """``45 of 252 tests significant after … (α = 0.05): 15 of the 41 on whole suites, …`` (no full stop)."""
    return " ".join(significance_fact(stats))


def suite_tests_title(stats: BehaviourStats, *, significant_only: bool) -> str:
    """The heading of a table of ``shift_rows``: ``Significant shifts: 15 of the 41 tests on whole suites`` or
    ``All 41 tests on whole suites``, counted as ``significance`` counts them."""
    suites = suite_count(stats)
    if significant_only:
        return f"Significant shifts: {suites.significant} of the {suites.tests} tests on whole suites"
    return f"All {suites.tests} tests on whole suites"


def behaviour_view(stats: BehaviourStats) -> BehaviourView:
    """The run's behaviour statistics as the doors show them (the registry's view of the ``behaviour`` kind)."""
    caption = (f"{stats.n_prompts} prompts in {len(stats.suites)} suites · {stats.n_tests} tests, "
               f"{stats.n_significant} significant after {correction_name(stats.correction)} at α = {stats.alpha:g} "
               f"· seed {stats.seed}")
    return BehaviourView(significance(stats), caption, shift_rows(stats), median_lengths(stats))
