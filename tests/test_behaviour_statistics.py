"""The behaviour statistics: degenerate inputs, planted shifts, the BH correction, small n."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from afterburn_core.behaviour.statistics import (
    ALPHA,
    apply_fdr,
    benjamini_hochberg,
    cohens_d,
    length_shift,
    newcombe_paired_ci,
    proportion_shift,
    strategy_shift,
)
from afterburn_core.behaviour.strategy import STRATEGIES
from afterburn_core.behaviour.types import ProportionShift, SuiteStats


def lengths(n: int = 40, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(5, 60, size=n).astype(float)


def test_identical_samples_show_no_shift() -> None:
    base = lengths()
    shift = length_shift(base, base.copy())
    assert shift.p_value == 1.0 and shift.wilcoxon_p == 1.0
    assert shift.effect_size == 0.0 and shift.median_shift == 0.0
    assert shift.ci == (0.0, 0.0)
    constant = length_shift([7.0] * 10, [7.0] * 10)
    assert constant.p_value == 1.0 and constant.effect_size == 0.0
    flags = proportion_shift([True, False] * 10, [True, False] * 10)
    assert flags.p_value == 1.0 and flags.difference == 0.0 and flags.ci[0] <= 0.0 <= flags.ci[1]
    labels = ["direct", "step_by_step", "code_assisted"] * 5
    strategy = strategy_shift(labels, list(labels), STRATEGIES)
    assert strategy.p_value == 1.0 and strategy.effect_size == 0.0
    assert strategy.entropy_drop_ci == (0.0, 0.0)


def test_planted_length_shift_is_significant_with_the_right_sign() -> None:
    base = lengths()
    shift = length_shift(base, base + 30)
    assert shift.p_value < 1e-6 and shift.wilcoxon_p < 1e-6
    assert shift.effect_size > 1.5
    assert shift.median_shift == 30.0
    low, high = shift.ci
    assert 0 < low <= 30.0 <= high
    down = length_shift(base + 30, base)
    assert down.effect_size < 0 and down.ci[1] < 0


def test_mann_whitney_and_cohens_d_match_references() -> None:
    base, trained = lengths(seed=2), lengths(seed=3) + 5
    shift = length_shift(base, trained, paired=False)
    assert shift.p_value == pytest.approx(stats.mannwhitneyu(trained, base).pvalue)
    pooled = math.sqrt((39 * base.var(ddof=1) + 39 * trained.var(ddof=1)) / 78)
    assert shift.effect_size == pytest.approx((trained.mean() - base.mean()) / pooled)
    assert shift.wilcoxon_p is None
    assert cohens_d(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == math.inf


def test_paired_samples_are_tested_paired_with_mann_whitney_as_the_secondary() -> None:
    # The same prompts under both models: the headline is the signed-rank test of the per-prompt
    # differences, the rank-sum test (which ignores the pairing) is kept beside it, uncorrected.
    base = lengths(seed=4)
    trained = base + np.random.default_rng(5).integers(-2, 6, size=base.size)
    shift = length_shift(base, trained)
    reference = stats.wilcoxon(trained, base)
    assert shift.test == "wilcoxon_signed_rank"
    assert shift.p_value == pytest.approx(reference.pvalue) == shift.wilcoxon_p
    assert shift.statistic == pytest.approx(reference.statistic)
    assert shift.mann_whitney_p == pytest.approx(stats.mannwhitneyu(trained, base).pvalue)
    # A small consistent shift is plain to the paired test and lost in the spread to the unpaired one.
    assert shift.p_value < 0.01 and shift.mann_whitney_p > 0.5
    unpaired = length_shift(base, trained, paired=False)
    assert unpaired.test == "mann_whitney_u" and unpaired.p_value == shift.mann_whitney_p


def test_small_samples_do_not_crash() -> None:
    empty = length_shift([], [])
    assert empty.n == 0 and empty.p_value is None and empty.ci is None
    one = length_shift([3.0], [9.0])
    assert one.n == 1 and one.ci is None and 0.0 <= one.p_value <= 1.0
    two = length_shift([3.0, 4.0], [9.0, 10.0])
    assert two.ci is not None and two.p_value > ALPHA
    assert proportion_shift([], []).p_value is None
    assert proportion_shift([False], [True]).p_value == 1.0
    assert strategy_shift([], [], STRATEGIES).p_value is None
    assert strategy_shift(["direct"], ["tool_use"], STRATEGIES).p_value == 1.0
    with pytest.raises(ValueError, match="paired samples differ in size: 2 base, 1 trained"):
        length_shift([1, 2], [1])


def test_proportion_shift_is_mcnemar_exact_on_discordant_pairs() -> None:
    base = [False] * 30 + [True] * 10
    trained = [True] * 30 + [True] * 10
    shift = proportion_shift(base, trained)
    assert (shift.base_only, shift.trained_only) == (0, 30)
    assert shift.p_value == pytest.approx(stats.binomtest(30, 30, 0.5).pvalue)
    assert shift.difference == pytest.approx(0.75)
    assert 0.5 < shift.ci[0] < 0.75 < shift.ci[1] <= 1.0


def _reference_newcombe(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Newcombe (1998) method 10 written out independently (closed-form Wilson, corrected phi)."""
    n, z = a + b + c + d, 1.959963984540054

    def wilson(x: int) -> tuple[float, float]:
        p = x / n
        centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)

    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b), wilson(a + c)
    product = a * d - b * c
    phi_numerator = product - n / 2 if product > n / 2 else (min(0, product))
    phi = phi_numerator / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return low, high


@pytest.mark.parametrize("table", [(8, 5, 4, 14), (36, 12, 2, 0), (20, 9, 1, 30)])
def test_newcombe_interval_matches_an_independent_formula(table: tuple[int, int, int, int]) -> None:
    # (a, b, c, d): a both, b trained only (p1 = trained), c base only, d neither.
    a, b, c, d = table
    low, high = newcombe_paired_ci(both=a, base_only=c, trained_only=b, neither=d)
    assert (low, high) == pytest.approx(_reference_newcombe(a, b, c, d), abs=1e-9)
    assert low < (b - c) / (a + b + c + d) < high


def test_strategy_collapse_is_detected() -> None:
    base = ["direct", "step_by_step", "chain_of_thought", "code_assisted"] * 10
    trained = ["chain_of_thought"] * 40
    shift = strategy_shift(base, trained, STRATEGIES)
    assert shift.p_value < 0.001
    assert shift.effect_size == pytest.approx(0.75)
    assert shift.entropy_base == pytest.approx(2.0) and shift.entropy_trained == 0.0
    assert shift.entropy_drop_ci[0] > 0
    assert set(shift.base) == set(STRATEGIES)


def test_benjamini_hochberg_turns_a_raw_hit_into_a_miss() -> None:
    raw = [0.04, 0.30, 0.50, 0.70, 0.90]
    adjusted = benjamini_hochberg(raw)
    assert raw[0] < ALPHA and adjusted[0] >= ALPHA
    assert adjusted == pytest.approx(list(stats.false_discovery_control(raw)))


def test_apply_fdr_corrects_every_test_of_a_result() -> None:
    def record(p: float | None) -> ProportionShift:
        return ProportionShift(10, 0.1, 0.2, 0.1, None, 0, 1, "mcnemar_exact", p)

    tree = {"a": record(0.04), "b": record(0.30), "c": record(0.5), "d": record(None), "e": record(0.001)}
    corrected, n_tests, n_significant = apply_fdr(tree)
    assert n_tests == 4 and n_significant == 1
    assert corrected["a"].p_value == 0.04 and corrected["a"].p_adjusted == pytest.approx(0.08)
    assert corrected["a"].significant is False
    assert corrected["e"].significant is True and corrected["e"].p_adjusted == pytest.approx(0.004)
    assert corrected["d"].p_adjusted is None and corrected["d"].significant is False
    assert isinstance(apply_fdr(SuiteStats("s", None, {}))[0], SuiteStats)  # type: ignore[arg-type]


def test_set_metric_interval_contains_its_own_estimate() -> None:
    """Resampling repeats answers, which inflates repetition metrics; the interval is bias-corrected."""
    import random

    from afterburn_core.behaviour.diversity import DiversityIndex
    from afterburn_core.behaviour.statistics import set_metric_shift

    rng = random.Random(1)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau".split()
    base = [" ".join(rng.sample(words, 6)) for _ in range(31)]
    trained = [("Great question! Let me think. " if i % 2 == 0 else "") + text for i, text in enumerate(base)]
    index = DiversityIndex(base + trained)
    for metric in (lambda rows: index.distinct(rows, 2), index.repeated_openings):
        shift = set_metric_shift(metric, len(base))
        low, high = shift.ci
        assert low <= shift.difference <= high
