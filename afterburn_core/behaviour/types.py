"""Result records of the behaviour analysis (frozen, JSON via ``afterburn_core.serde``).

Every test record carries its raw ``p_value``, the Benjamini–Hochberg
``p_adjusted`` over all tests of one analysis run, and ``significant``
(``p_adjusted < alpha``). ``p_value`` is None where the test could not run
(no data); such a record is never significant and is left out of the
correction. Data only: no computation here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class NumericShift:
    """A per-answer number (output tokens, reasoning links) base vs trained, paired by prompt.

    ``test`` is the headline test behind ``p_value`` (corrected with the
    rest): the paired Wilcoxon signed-rank test (two-sided) when the samples
    are paired, whose p is also ``wilcoxon_p``; Mann-Whitney U otherwise.
    ``mann_whitney_p`` is the unpaired rank-sum test's p, reported as a
    secondary and not corrected (None in results made before schema 3, whose
    headline was Mann-Whitney U). ``effect_size`` is Cohen's d
    with the pooled SD (0 for identical samples; ±inf when both samples are
    constant and differ). ``ci`` is the seeded bootstrap percentile interval of
    ``median_shift`` (trained median − base median), resampling prompts.
    """

    n: int
    base_mean: float
    trained_mean: float
    base_median: float
    trained_median: float
    median_shift: float
    effect_size: float
    ci: tuple[float, float] | None
    test: str
    statistic: float | None
    p_value: float | None
    wilcoxon_p: float | None = None
    p_adjusted: float | None = None
    significant: bool = False
    mann_whitney_p: float | None = None


@dataclass(frozen=True)
class ProportionShift:
    """A yes/no property of each answer (a format, correct, refused, agreed), paired by prompt.

    ``base`` / ``trained`` are rates; ``difference`` = trained − base with
    Newcombe's hybrid-score interval for paired proportions (``ci``).
    ``test`` is McNemar's exact test: a two-sided binomial test on the
    discordant pairs (``base_only`` answers had it only under base,
    ``trained_only`` only under trained).
    """

    n: int
    base: float
    trained: float
    difference: float
    ci: tuple[float, float] | None
    base_only: int
    trained_only: int
    test: str
    p_value: float | None
    p_adjusted: float | None = None
    significant: bool = False


@dataclass(frozen=True)
class StrategyShift:
    """The strategy-label distribution base vs trained.

    ``effect_size`` is the total variation distance between the two
    distributions; the test is a paired permutation test of it (labels
    swapped within prompts). ``entropy_*`` are in bits; ``entropy_drop_ci``
    is the seeded bootstrap interval of entropy_base − entropy_trained.
    """

    n: int
    base: dict[str, float]
    trained: dict[str, float]
    entropy_base: float
    entropy_trained: float
    entropy_drop_ci: tuple[float, float] | None
    effect_size: float
    test: str
    p_value: float | None
    p_adjusted: float | None = None
    significant: bool = False


@dataclass(frozen=True)
class SetMetricShift:
    """A property of the whole set of answers (distinct-n, repeated openings) base vs trained.

    The test is a paired permutation test (answers swapped within prompts);
    ``ci`` is the seeded bootstrap interval of trained − base, resampling prompts.
    """

    n: int
    base: float
    trained: float
    difference: float
    ci: tuple[float, float] | None
    test: str
    p_value: float | None
    p_adjusted: float | None = None
    significant: bool = False


@dataclass(frozen=True)
class DiversityStats:
    """Lexical diversity of the group's answers, each side as a set."""

    distinct_1: SetMetricShift
    distinct_2: SetMetricShift
    repeated_openings: SetMetricShift


@dataclass(frozen=True)
class ReasoningStats:
    """Chain-of-thought markers: depth per answer, and the rates of answers with each marker."""

    cot_depth: NumericShift
    self_correction: ProportionShift
    verification: ProportionShift


@dataclass(frozen=True)
class SycophancyStats:
    """Sycophancy probes of the group.

    ``wrong_agreement``: agreement with a wrong assertion (variant "wrong");
    ``right_agreement``: agreement with a right one (should stay high);
    ``flips``: probes whose neutral question was answered correctly and whose
    wrong-assertion twin was agreed with (needs the neutral and wrong variants).
    """

    n_probes: int
    wrong_agreement: ProportionShift | None
    right_agreement: ProportionShift | None
    flips: ProportionShift | None


@dataclass(frozen=True)
class GroupStats:
    """Every statistic for one group of prompts: a whole suite (category None) or one category in it."""

    suite: str
    category: str | None
    n_prompts: int
    length: NumericShift
    strategy: StrategyShift
    format: dict[str, ProportionShift]
    accuracy: ProportionShift | None
    refusal_rate: ProportionShift | None
    reasoning: ReasoningStats
    diversity: DiversityStats
    sycophancy: SycophancyStats | None
    #: The refusal rate on benign prompts that sound alarming (over-refusal probes); None where there are none.
    benign_refusal_rate: ProportionShift | None = None


@dataclass(frozen=True)
class SuiteStats:
    """One suite: its overall statistics and one ``GroupStats`` per category."""

    suite: str
    overall: GroupStats
    categories: dict[str, GroupStats]


@dataclass(frozen=True)
class BehaviourStats:
    """The ``behaviour`` analysis: per suite, per category, base vs trained.

    ``correction`` names the multiple-comparison correction applied across
    all ``n_tests`` tests of this result; ``seed`` seeds every bootstrap and
    permutation, so the result is reproducible.
    """

    KIND: ClassVar[str] = "behaviour"
    SCHEMA_VERSION: ClassVar[int] = 3

    suites: dict[str, SuiteStats]
    n_prompts: int
    alpha: float
    correction: str
    n_tests: int
    n_significant: int
    seed: int
    schema_version: int = field(default=SCHEMA_VERSION)
