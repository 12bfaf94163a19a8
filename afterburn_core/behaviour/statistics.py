"""Tests, effect sizes and intervals for base-vs-trained behaviour, all through ``scipy.stats``.

Owns the statistics of every record in ``behaviour.types``:

- numbers per answer (``numeric_shift`` / ``length_shift``): the paired
  Wilcoxon signed-rank test (two-sided) as the headline, since both models
  answer the same prompts (the length-bias detector tests the same way);
  Mann-Whitney U, which ignores the pairing, as a secondary p that is not
  corrected (the only test of unpaired samples); Cohen's d with the pooled SD,
  a seeded bootstrap CI of the median shift that resamples prompts (pairs
  kept together);
- yes/no per answer (``proportion_shift``): McNemar's exact test
  (``binomtest`` on the discordant pairs), the rate difference with
  Newcombe's paired hybrid-score interval (Newcombe 1998, method 10);
- labels per answer (``strategy_shift``): a paired permutation test of the
  total variation distance, entropies in bits, a bootstrap CI of the
  entropy drop;
- set metrics (``set_metric_shift``): a paired permutation test and a
  bootstrap CI of the difference;
- ``apply_fdr``: Benjamini–Hochberg (``false_discovery_control``) over
  every test of one result, filling ``p_adjusted`` and ``significant``.

Degenerate inputs are answered, not crashed on: identical samples give p = 1
and effect 0; n = 0 gives ``p_value`` None (never significant); n = 1 gives no
interval. Does not decide which groups to test (``analysis``). Cost:
``BOOTSTRAP_RESAMPLES`` / ``PERMUTATION_RESAMPLES`` vectorized resamples per
test; milliseconds for hundreds of prompts.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import scipy
from scipy import stats

from afterburn_core.behaviour.types import (
    NumericShift,
    ProportionShift,
    SetMetricShift,
    StrategyShift,
)

#: Family-wise level: a test is significant when its BH-adjusted p is below it (convention).
ALPHA = 0.05
#: Bootstrap resamples per interval: 2000 gives percentile limits of a 95 % interval stable to
#: ~0.01 of the SD (Efron & Tibshirani 1993, ch. 19, recommend >= 1000 for percentile intervals).
BOOTSTRAP_RESAMPLES = 2000
#: Permutations per test: 1999 resolves p down to 1/2000, enough for a BH threshold of 0.05 over
#: ~50 tests (0.001); scipy enumerates all 2^n swaps exactly when that is fewer.
PERMUTATION_RESAMPLES = 1999
#: Default seed of every resampling, so one result is reproducible.
SEED = 0
#: The correction applied across one result's tests (named in ``BehaviourStats.correction``).
CORRECTION = "benjamini_hochberg"
#: The headline test of a per-answer number: paired by prompt (both models answer the same prompts) ...
WILCOXON = "wilcoxon_signed_rank"
#: ... or, for samples that are not paired, the rank-sum test (also every paired shift's secondary p).
MANN_WHITNEY = "mann_whitney_u"

_Record = TypeVar("_Record")


def _rng(seed: int) -> dict[str, Any]:
    # scipy 1.15 renamed ``random_state`` to ``rng``; the old name still works there but warns.
    generator = np.random.default_rng(seed)
    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    return {"rng": generator} if (major, minor) >= (1, 15) else {"random_state": generator}


def _finite_or(value: float, fallback: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else fallback


def cohens_d(base: np.ndarray, trained: np.ndarray) -> float:
    """(mean trained − mean base) / pooled SD; 0 when the means are equal, ±inf when both SDs are 0."""
    difference = float(np.mean(trained) - np.mean(base))
    if difference == 0.0:
        return 0.0
    dof = base.size + trained.size - 2
    if dof <= 0:
        return math.nan
    pooled_variance = ((base.size - 1) * np.var(base, ddof=1 if base.size > 1 else 0)
                       + (trained.size - 1) * np.var(trained, ddof=1 if trained.size > 1 else 0)) / dof
    if pooled_variance <= 0.0:
        return math.copysign(math.inf, difference)
    return difference / math.sqrt(pooled_variance)


def _median_shift(base: np.ndarray, trained: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(trained, axis=axis) - np.median(base, axis=axis)


def _bootstrap_ci(data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], paired: bool,
                  seed: int, bias_corrected_at: float | None = None) -> tuple[float, float] | None:
    if min(len(sample) for sample in data) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate (constant) bootstrap distribution is fine here
        result = stats.bootstrap(data, statistic, paired=paired, vectorized=True, method="percentile",
                                 n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=1 - ALPHA, **_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if bias_corrected_at is not None:
        # Percentile interval shifted by the bootstrap's bias estimate (mean of the resampled
        # statistics minus the observed one; Efron & Tibshirani 1993, §10.6).
        bias = float(np.nanmean(result.bootstrap_distribution)) - bias_corrected_at
        low, high = low - bias, high - bias
    return None if math.isnan(low) or math.isnan(high) else (low, high)


def numeric_shift(base: Sequence[float], trained: Sequence[float], paired: bool = True,
                  seed: int = SEED) -> NumericShift:
    """Shift of a per-answer number; ``paired`` means ``base[i]`` and ``trained[i]`` share a prompt."""
    base_values, trained_values = np.asarray(base, dtype=float), np.asarray(trained, dtype=float)
    if paired and base_values.size != trained_values.size:
        raise ValueError(f"paired samples differ in size: {base_values.size} base, {trained_values.size} trained")
    n = min(base_values.size, trained_values.size)
    headline = WILCOXON if paired else MANN_WHITNEY
    if base_values.size == 0 or trained_values.size == 0:
        return NumericShift(n, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, None,
                            headline, None, None, None)
    if np.array_equal(np.sort(base_values), np.sort(trained_values)):
        mann_whitney_statistic, mann_whitney_p = base_values.size * trained_values.size / 2.0, 1.0
    else:
        test = stats.mannwhitneyu(trained_values, base_values, alternative="two-sided")
        mann_whitney_statistic, mann_whitney_p = float(test.statistic), _finite_or(test.pvalue, 1.0)
    statistic, p_value, wilcoxon_p = mann_whitney_statistic, mann_whitney_p, None
    if paired:
        differences = trained_values - base_values
        if not np.any(differences):
            statistic, wilcoxon_p = 0.0, 1.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # small-n / ties notes; the p-value is still right
                signed_rank = stats.wilcoxon(trained_values, base_values)
            statistic, wilcoxon_p = float(signed_rank.statistic), _finite_or(signed_rank.pvalue, 1.0)
        p_value = wilcoxon_p
    return NumericShift(
        n=n,
        base_mean=float(np.mean(base_values)),
        trained_mean=float(np.mean(trained_values)),
        base_median=float(np.median(base_values)),
        trained_median=float(np.median(trained_values)),
        median_shift=float(_median_shift(base_values, trained_values)),
        effect_size=cohens_d(base_values, trained_values),
        ci=_bootstrap_ci((base_values, trained_values), _median_shift, paired, seed),
        test=headline,
        statistic=statistic,
        p_value=p_value,
        wilcoxon_p=wilcoxon_p,
        mann_whitney_p=mann_whitney_p,
    )


def length_shift(base_lengths: Sequence[float], trained_lengths: Sequence[float], paired: bool = True,
                 seed: int = SEED) -> NumericShift:
    """Output-length shift (tokens per answer): ``numeric_shift`` under the name the issue uses."""
    return numeric_shift(base_lengths, trained_lengths, paired=paired, seed=seed)


def _wilson(successes: int, n: int) -> tuple[float, float]:
    interval = stats.binomtest(successes, n).proportion_ci(confidence_level=1 - ALPHA, method="wilson")
    return float(interval.low), float(interval.high)


def newcombe_paired_ci(both: int, base_only: int, trained_only: int, neither: int) -> tuple[float, float]:
    """Newcombe's hybrid-score interval for trained rate − base rate on paired yes/no data."""
    n = both + base_only + trained_only + neither
    rate_trained, rate_base = (both + trained_only) / n, (both + base_only) / n
    low_t, high_t = _wilson(both + trained_only, n)
    low_b, high_b = _wilson(both + base_only, n)
    denominator = (both + trained_only) * (base_only + neither) * (both + base_only) * (trained_only + neither)
    # Newcombe's phi with his correction: a positive association is shrunk by n/2 (and to 0 below
    # it), a negative one kept as is (as in biostatUZH::confIntPairedProportion).
    association = both * neither - base_only * trained_only
    corrected = association - n / 2 if association > n / 2 else (association if association < 0 else 0.0)
    phi = corrected / math.sqrt(denominator) if denominator > 0 else 0.0
    difference = rate_trained - rate_base
    low = difference - math.sqrt(max(0.0, (rate_trained - low_t) ** 2 - 2 * phi * (rate_trained - low_t)
                                     * (high_b - rate_base) + (high_b - rate_base) ** 2))
    high = difference + math.sqrt(max(0.0, (high_t - rate_trained) ** 2 - 2 * phi * (high_t - rate_trained)
                                      * (rate_base - low_b) + (rate_base - low_b) ** 2))
    return max(-1.0, low), min(1.0, high)


def proportion_shift(base_flags: Sequence[bool], trained_flags: Sequence[bool]) -> ProportionShift:
    """Shift of a yes/no property, paired by prompt (McNemar exact, Newcombe interval)."""
    base_values, trained_values = np.asarray(base_flags, dtype=bool), np.asarray(trained_flags, dtype=bool)
    if base_values.size != trained_values.size:
        raise ValueError(f"paired flags differ in size: {base_values.size} base, {trained_values.size} trained")
    n = int(base_values.size)
    if n == 0:
        return ProportionShift(0, math.nan, math.nan, math.nan, None, 0, 0, "mcnemar_exact", None)
    both = int(np.sum(base_values & trained_values))
    base_only = int(np.sum(base_values & ~trained_values))
    trained_only = int(np.sum(~base_values & trained_values))
    neither = n - both - base_only - trained_only
    discordant = base_only + trained_only
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(trained_only, discordant, 0.5).pvalue)
    rate_base, rate_trained = float(base_values.mean()), float(trained_values.mean())
    return ProportionShift(
        n=n, base=rate_base, trained=rate_trained, difference=rate_trained - rate_base,
        ci=newcombe_paired_ci(both, base_only, trained_only, neither),
        base_only=base_only, trained_only=trained_only, test="mcnemar_exact", p_value=min(1.0, p_value),
    )


def _distribution(codes: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    one_hot = codes[..., None] == np.arange(k)
    return one_hot.mean(axis=axis - 1 if axis < 0 else axis)


def entropy_bits(probabilities: Sequence[float]) -> float:
    """Shannon entropy in bits (0 for an empty or one-label distribution)."""
    total = float(np.sum(probabilities))
    return float(stats.entropy(probabilities, base=2)) if total > 0 else 0.0


def strategy_shift(base_labels: Sequence[str], trained_labels: Sequence[str], labels: Sequence[str],
                   seed: int = SEED) -> StrategyShift:
    """Shift of a label distribution, paired by prompt (permutation test of the TV distance)."""
    if len(base_labels) != len(trained_labels):
        raise ValueError(f"paired labels differ in size: {len(base_labels)} base, {len(trained_labels)} trained")
    vocabulary = list(labels) + sorted(set(base_labels) | set(trained_labels) - set(labels))
    index = {label: i for i, label in enumerate(vocabulary)}
    k, n = len(vocabulary), len(base_labels)
    base_codes = np.array([index[label] for label in base_labels], dtype=int)
    trained_codes = np.array([index[label] for label in trained_labels], dtype=int)
    if n == 0:
        empty = {label: 0.0 for label in vocabulary}
        return StrategyShift(0, empty, dict(empty), 0.0, 0.0, None, 0.0, "paired_permutation_tvd", None)

    def total_variation(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return 0.5 * np.abs(_distribution(y, k, axis) - _distribution(x, k, axis)).sum(axis=-1)

    def entropy_drop(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return stats.entropy(_distribution(x, k, axis), base=2, axis=-1) - \
            stats.entropy(_distribution(y, k, axis), base=2, axis=-1)

    observed = float(total_variation(base_codes, trained_codes))
    if np.array_equal(base_codes, trained_codes) or n < 2:
        p_value = 1.0  # one pair: both of its 2 relabelings are as extreme, the exact p is 1
    else:
        test = stats.permutation_test((base_codes, trained_codes), total_variation, permutation_type="samples",
                                      vectorized=True, n_resamples=PERMUTATION_RESAMPLES, alternative="greater",
                                      **_rng(seed))
        p_value = min(1.0, _finite_or(test.pvalue, 1.0))
    base_distribution, trained_distribution = _distribution(base_codes, k), _distribution(trained_codes, k)
    return StrategyShift(
        n=n,
        base={label: float(base_distribution[i]) for i, label in enumerate(vocabulary)},
        trained={label: float(trained_distribution[i]) for i, label in enumerate(vocabulary)},
        entropy_base=entropy_bits(base_distribution),
        entropy_trained=entropy_bits(trained_distribution),
        entropy_drop_ci=_bootstrap_ci((base_codes, trained_codes), entropy_drop, True, seed),
        effect_size=observed,
        test="paired_permutation_tvd",
        p_value=p_value,
    )


def information_drop_ci(groups: Sequence[str], base_labels: Sequence[str], trained_labels: Sequence[str],
                        seed: int = SEED) -> tuple[float, float] | None:
    """Paired bootstrap 95 % interval of I(S; C)_base − I(S; C)_trained in bits, resampling prompts.

    ``groups[i]`` is prompt i's category C, ``base_labels[i]`` / ``trained_labels[i]`` its strategy S
    in each model. I(S; C) = H(S) + H(C) − H(C, S); H(C) is the same for both models in every
    resample, so the drop is ΔH(S) − ΔH(C, S). None with fewer than two prompts.
    """
    if not len(groups) == len(base_labels) == len(trained_labels):
        raise ValueError(f"paired labels differ in size: {len(groups)} groups, {len(base_labels)} base, "
                         f"{len(trained_labels)} trained")
    labels = {label: i for i, label in enumerate(sorted(set(base_labels) | set(trained_labels)))}
    group_ids = {group: i for i, group in enumerate(sorted(set(groups)))}
    k = max(1, len(labels))
    group_codes = np.array([group_ids[g] for g in groups], dtype=int)
    base_codes = np.array([labels[label] for label in base_labels], dtype=int)
    trained_codes = np.array([labels[label] for label in trained_labels], dtype=int)
    joint_k = k * max(1, len(group_ids))

    def row_entropies(codes: np.ndarray, size: int) -> np.ndarray:
        rows = np.atleast_2d(codes)
        offsets = size * np.arange(rows.shape[0])[:, None]
        counts = np.bincount((rows + offsets).ravel(), minlength=rows.shape[0] * size).reshape(rows.shape[0], size)
        probabilities = counts / rows.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(probabilities > 0, -probabilities * np.log2(probabilities), 0.0)
        return terms.sum(axis=1)

    def information_drop(g: np.ndarray, b: np.ndarray, t: np.ndarray, axis: int = -1) -> np.ndarray:
        drop = (row_entropies(b, k) - row_entropies(g * k + b, joint_k)) \
            - (row_entropies(t, k) - row_entropies(g * k + t, joint_k))
        return drop if np.ndim(g) > 1 else drop[0]

    return _bootstrap_ci((group_codes, base_codes, trained_codes), information_drop, True, seed)


def set_metric_shift(metric: Callable[[np.ndarray], np.ndarray], n: int, seed: int = SEED) -> SetMetricShift:
    """Shift of a set-level metric over ``n`` paired answers.

    ``metric(rows)`` takes index rows of shape (resamples, n) into a combined
    list of 2n answers (0..n-1 base, n..2n-1 trained, pair i = (i, n+i)) and
    returns one value per row.
    """
    if n == 0:
        return SetMetricShift(0, math.nan, math.nan, math.nan, None, "paired_permutation", None)
    base_rows, trained_rows = np.arange(n), np.arange(n, 2 * n)

    def difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        x, y = np.atleast_2d(x), np.atleast_2d(y)
        flat_x, flat_y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        return (metric(flat_y) - metric(flat_x)).reshape(x.shape[:-1])

    base_value = float(metric(base_rows[None, :])[0])
    trained_value = float(metric(trained_rows[None, :])[0])
    observed = trained_value - base_value
    if math.isnan(observed):
        return SetMetricShift(n, base_value, trained_value, observed, None, "paired_permutation", None)
    if n < 2:  # one pair: the exact permutation p is 1 and there is no interval
        return SetMetricShift(n, base_value, trained_value, observed, None, "paired_permutation", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = stats.permutation_test((base_rows, trained_rows), difference, permutation_type="samples",
                                      vectorized=True, n_resamples=PERMUTATION_RESAMPLES, **_rng(seed))
    p_value = 1.0 if observed == 0.0 else min(1.0, _finite_or(test.pvalue, 1.0))
    return SetMetricShift(n, base_value, trained_value, observed,
                          # A resample repeats answers, which a set-level metric (distinct-n, repeated
                          # openings) counts as repetition: the plain percentile interval is biased and
                          # missed its own estimate on the demo run; correct it by the bootstrap bias.
                          _bootstrap_ci((base_rows, trained_rows), difference, True, seed,
                                        bias_corrected_at=observed),
                          "paired_permutation", p_value)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (``scipy.stats.false_discovery_control``), in the input's order."""
    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def _is_test(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and hasattr(value, "p_value") and hasattr(value, "p_adjusted")


def _rebuild(value: Any, visit: Callable[[Any], Any]) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _rebuild(getattr(value, f.name), visit) for f in dataclasses.fields(value) if f.init}
        rebuilt = dataclasses.replace(value, **changes)
        return visit(rebuilt) if _is_test(rebuilt) else rebuilt
    if isinstance(value, dict):
        return {key: _rebuild(item, visit) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_rebuild(item, visit) for item in value)
    return value


def apply_fdr(result: _Record, alpha: float = ALPHA) -> tuple[_Record, int, int]:
    """``result`` with every test's ``p_adjusted`` / ``significant`` set by BH over all its tests.

    Returns (the new result, tests corrected, tests significant). Tests with
    ``p_value`` None keep ``p_adjusted`` None and are not significant.
    """
    raw: list[float] = []

    def collect(test: Any) -> Any:
        if test.p_value is not None:
            raw.append(test.p_value)
        return test

    _rebuild(result, collect)
    adjusted = iter(benjamini_hochberg(raw))
    significant = 0

    def assign(test: Any) -> Any:
        nonlocal significant
        if test.p_value is None:
            return dataclasses.replace(test, p_adjusted=None, significant=False)
        p_adjusted = next(adjusted)
        is_significant = p_adjusted < alpha
        significant += is_significant
        return dataclasses.replace(test, p_adjusted=p_adjusted, significant=is_significant)

    return _rebuild(result, assign), len(raw), significant
