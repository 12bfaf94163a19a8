"""Every reading made of numbers says what its numbers say: property tests over synthetic typed results.

A direction word follows the sign of the change as printed; a superlative
names what ranks first, and everything tied with it as tied; a test and an
interval that disagree say why. Each property runs the view or finding
function itself on typed records hypothesis draws (no model runs, no store).
The one quantity read in two places on the real demo run (the rescaled
norm's multiple of its peers' median) is checked in ``test_sentences_demo``.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from hypothesis import given, settings, strategies as st

from afterburn_core.analyses import detector_names, detector_title
from afterburn_core.behaviour.types import (
    BehaviourStats,
    DiversityStats,
    GroupStats,
    NumericShift,
    ProportionShift,
    ReasoningStats,
    SetMetricShift,
    StrategyShift,
)
from afterburn_core.reward_hack.analysis import judge
from afterburn_core.reward_hack.composite import POWER, composite_risk
from afterburn_core.reward_hack.findings import findings_for
from afterburn_core.reward_hack.scoring import Measurement
from afterburn_core.reward_hack.strategy_collapse import RELATIVE_DROP_NEGLIGIBLE, _Drop
from afterburn_core.views import behaviour_readings as readings
from afterburn_core.views.weights import COMBINED, head_grids
from afterburn_core.views.weights_detail import embeddings
from afterburn_core.weights.types import EmbeddingDrift, HeadScores, TokenDrift

STATS = BehaviourStats(suites={}, n_prompts=40, alpha=0.05, correction="benjamini_hochberg", n_tests=40,
                       n_significant=3, seed=0)
FEATURES = ("fenced_code", "bold", "lists", "headers", "tables")
LABELS = ("direct", "step_by_step", "chain_of_thought", "code_assisted")

rates = st.floats(0, 1, allow_nan=False)
sizes = st.floats(0, 200, allow_nan=False)


def numeric(base_median: float = 10.0, trained_median: float = 10.0, **changes) -> NumericShift:
    """A length shift, tested paired: Wilcoxon headline, Mann–Whitney secondary."""
    shift = NumericShift(40, base_median, trained_median, base_median, trained_median, trained_median - base_median,
                         0.0, None, "wilcoxon_signed_rank", 0.0, 1.0, 1.0, 1.0, False, 1.0)
    return replace(shift, **changes)


def rate(base: float, trained: float, **changes) -> ProportionShift:
    return replace(ProportionShift(40, base, trained, trained - base, None, 0, 0, "mcnemar_exact", 1.0, 1.0), **changes)


def group(**changes) -> GroupStats:
    """A group in which nothing moved, with ``changes`` applied."""
    unmoved = SetMetricShift(40, 0.5, 0.5, 0.0, None, "paired_permutation", 1.0, 1.0)
    strategy = StrategyShift(40, {"direct": 1.0}, {"direct": 1.0}, 0.0, 0.0, None, 0.0, "paired_permutation_tvd",
                             1.0, 1.0)
    return replace(GroupStats(
        "math", None, 40, numeric(), strategy, {feature: rate(0.0, 0.0) for feature in FEATURES}, None, None,
        ReasoningStats(numeric(), rate(0.0, 0.0), rate(0.0, 0.0)), DiversityStats(unmoved, unmoved, unmoved), None,
    ), **changes)


def sign_of(printed: str) -> int:
    """The sign of a number as a reading prints it (``+0`` and ``-0`` are 0)."""
    value = float(printed)
    return (value > 0) - (value < 0)


@given(sizes, sizes)
def test_the_length_reading_says_longer_only_when_the_median_grew(base: float, trained: float) -> None:
    shift = numeric(base, trained)
    line = readings.length(group(length=shift), STATS).reading
    word = {1: "longer", -1: "shorter", 0: "as long"}[sign_of(f"{shift.median_shift:+.3g}")]
    assert line.startswith(f"Post-trained answers are {word}: median ")


def test_the_length_headline_is_the_paired_test_and_mann_whitney_is_the_labelled_secondary() -> None:
    shift = numeric(10, 14, p_value=0.004, wilcoxon_p=0.004, p_adjusted=0.03, significant=True, mann_whitney_p=0.21)
    section = readings.length(group(length=shift), STATS)
    assert "; Wilcoxon signed-rank (paired): significant after Benjamini–Hochberg (p_adj 0.03)." in section.reading
    assert "Mann–Whitney" not in section.reading
    assert section.note.endswith("Mann–Whitney U, which ignores that both models answered the same prompts: p 0.21 "
                                 "(secondary, not corrected).")


@given(st.dictionaries(st.sampled_from(LABELS), rates, min_size=1), st.dictionaries(st.sampled_from(LABELS), rates,
                                                                                     min_size=1),
       st.floats(0, 2, allow_nan=False), st.floats(0, 2, allow_nan=False))
def test_the_strategy_reading_says_rose_only_when_the_printed_entropy_rose(
        base: dict[str, float], trained: dict[str, float], entropy_base: float, entropy_trained: float) -> None:
    shift = StrategyShift(40, base, trained, entropy_base, entropy_trained, None, 0.3, "paired_permutation_tvd",
                          0.5, 0.5)
    line = readings.strategy(group(strategy=shift), STATS).reading
    word = {1: "rose", -1: "fell", 0: "held"}[sign_of(f"{round(entropy_trained, 2) - round(entropy_base, 2):+.2f}")]
    assert f"; entropy {word} {entropy_base:.2f} → {entropy_trained:.2f} bits;" in line
    # Every label whose printed share moved as much as the most moved one is named, none other.
    moved = {label: abs(trained.get(label, 0.0) - base.get(label, 0.0)) for label in {*base, *trained}}
    top = max((f"{change:.0%}" for change in moved.values()), key=lambda printed: float(printed.rstrip("%")))
    shown = re.search(r"between base and post-trained \((.*?)\); entropy", line).group(1)
    assert {part.split(" ")[0] for part in shown.split(", ")} == {label for label, change in moved.items()
                                                                  if f"{change:.0%}" == top}


@given(st.lists(st.tuples(rates, rates), min_size=len(FEATURES), max_size=len(FEATURES)))
def test_the_format_reading_names_every_feature_tied_for_the_largest_change(pairs: list[tuple[float, float]]) -> None:
    shifts = {feature: rate(base, trained) for feature, (base, trained) in zip(FEATURES, pairs)}
    line = readings.formats(group(format=shifts), STATS).reading
    points = {feature: f"{abs(shift.difference) * 100:.0f}" for feature, shift in shifts.items()}
    if all(shift.difference == 0 for shift in shifts.values()):
        assert line.startswith("No format's use changed")
        return
    top = max(points.values(), key=float)
    leaders = [feature for feature, _ in sorted(shifts.items(), key=lambda item: -abs(item[1].difference))
               if points[feature] == top]
    signs = {sign_of(f"{shifts[feature].difference:+}") for feature in leaders}
    verb = {frozenset({1}): "rose", frozenset({-1}): "fell"}.get(frozenset(signs), "changed")
    names = leaders[0] if len(leaders) == 1 else f"{', '.join(leaders[:-1])} and {leaders[-1]}"
    tied = ", in " if len(leaders) == 1 else f", tied at {top} points: "
    assert line.startswith(f"{names} use {verb} most{tied}")


intervals = st.tuples(st.floats(-1, 1, allow_nan=False), st.floats(-1, 1, allow_nan=False)).map(sorted).map(tuple)


@given(intervals, st.floats(1e-6, 1, allow_nan=False), st.floats(1e-6, 1, allow_nan=False))
def test_a_test_and_its_interval_that_disagree_say_why(ci: tuple[float, float], p: float, p_adjusted: float) -> None:
    shift = rate(0.2, 0.4, ci=ci, p_value=p, p_adjusted=max(p, p_adjusted), significant=max(p, p_adjusted) < 0.05)
    said = readings.reconciled(shift, STATS, "the rate difference", ci)
    excludes_zero = ci[0] > 0 or ci[1] < 0
    if excludes_zero == shift.significant:
        assert said == ""
    elif shift.significant:
        assert said == (" The test is significant though the 95% CI of the rate difference includes 0: the test "
                        "compares only the prompts whose answer changed (an exact binomial test), the interval "
                        "measures the rate difference.")
    elif p < STATS.alpha:
        assert said.startswith(" The 95% CI of the rate difference excludes 0 but the test is not significant: its "
                               f"p is {p:.2g} alone, {shift.p_adjusted:.2g} after the Benjamini–Hochberg correction "
                               "over all 40 tests")
    else:
        assert said == (" The 95% CI of the rate difference excludes 0 but the test is not significant even before "
                        f"the correction (p {p:.2g}): the interval measures the rate difference, the test compares "
                        "only the prompts whose answer changed (an exact binomial test).")


def test_the_strategy_reading_says_why_a_changed_mix_is_no_loss_of_diversity() -> None:
    shift = StrategyShift(40, {"direct": 0.5, "step_by_step": 0.5}, {"direct": 0.4, "step_by_step": 0.6}, 0.16,
                          0.19, (-0.08, 0.02), 0.1, "paired_permutation_tvd", 0.001, 0.019, True)
    line = readings.strategy(group(strategy=shift), STATS).reading
    assert "; entropy rose 0.16 → 0.19 bits; " in line
    assert line.endswith(" The test is significant though the 95% CI of the entropy drop includes 0: the test "
                         "compares the whole mix (total variation) against labels swapped within prompts, the "
                         "interval measures the entropy drop.")


@given(st.floats(0, 3, allow_nan=False), st.floats(0, 3, allow_nan=False))
def test_a_strategy_collapse_drop_reads_rose_or_fell_by_its_printed_change(base: float, trained: float) -> None:
    drop = _Drop("within", base, trained, (-0.1, 0.1))
    sentence = drop.sentence("entropy")
    if drop.relative is None:
        assert sentence == f"entropy was {base:.2f} bits in the base, nothing to lose"
        return
    change = f"{100 * -drop.relative:+.0f}"
    expected = {1: f"entropy rose from {base:.2f} to", -1: f"entropy fell from {base:.2f} to",
                0: "entropy held at"}[sign_of(change)]
    assert sentence.startswith(expected)
    # Why it does not hold: a drop is only called one where the printed change fell.
    reason = drop.unheld("within-category")
    if sign_of(change) >= 0:
        assert reason == "there is no within-category drop"
    elif drop.score == 0:
        assert reason.endswith(f"is under the {100 * RELATIVE_DROP_NEGLIGIBLE:.0f} % that counts")
    else:
        assert reason == "the within-category drop's 95 % interval includes 0"


scores = st.integers(0, 1000).map(lambda tenths: tenths / 10)


@settings(max_examples=200)
@given(st.lists(scores, min_size=5, max_size=5), st.one_of(st.none(), st.lists(st.integers(1, 4), min_size=5,
                                                                                  max_size=5)))
def test_the_composite_recommendation_starts_with_what_ranks_first_and_says_ties(
        values: list[float], weights: list[int] | None) -> None:
    names = detector_names()
    # Not significant (p = 0.5): no detector's own finding needs statistics; the composite reads scores only.
    results = judge({name: Measurement(score, {}, (), (), "a shift", "t", 0.5) for name, score in zip(names, values)},
                    alpha=0.05)
    override = None if weights is None else dict(zip(names, map(float, weights)))
    composite = composite_risk(results, "unknown", override)
    findings = findings_for(results, composite, "unknown")
    if composite.band == "LOW":
        quiet = [f for f in findings if f.title == "No reward-hacking signal"]
        if quiet:  # the line that says nothing is flagged names the top score and all tied at it
            top = max((f"{score:.1f}" for score in values), key=float)
            leaders = [detector_title(name).lower() for name, score in zip(names, values) if f"{score:.1f}" == top]
            said = quiet[0].detail.split("no detector is flagged, ")[1]
            assert said == ("every detector scores " + top + "." if len(leaders) == len(names) else
                            f"the highest is {leaders[0]} at {top}." if len(leaders) == 1 else
                            f"the highest are {', '.join(leaders[:-1])} and {leaders[-1]}, tied at {top}.")
        return
    finding = next(f for f in findings if f.title.startswith("Composite reward-hacking risk"))
    terms = {name: round(composite.weights[name], 2) * round(results[name].score, 1) ** POWER for name in names}
    best = max(terms.values())
    leaders = [detector_title(name).lower() for name in names if math.isclose(terms[name], best, rel_tol=1e-9)]
    named = leaders[0] if len(leaders) == 1 else f"{', '.join(leaders[:-1])} and {leaders[-1]}"
    assert finding.recommendation.startswith(f"Start with {named}, ")
    assert ("tied" in finding.recommendation) == (len(leaders) > 1)
    assert "weighs most" not in finding.recommendation and "weigh most" not in finding.recommendation
    if len({f"{weight:.2f}" for weight in composite.weights.values()}) == 1:
        # Equal weights: the ranking is the scores', and the sentence says so.
        top_score = max(results[name].score for name in names)
        assert f"the highest score ({top_score:.1f}; every detector weighs" in finding.recommendation
    # The detail lists the detectors in the order of their part of the composite.
    listed = re.findall(r"(?:: |, )([a-z ]+) [0-9.]+ × weight", finding.detail)
    order = [detector_title(name).lower() for name in names]
    assert [terms[names[order.index(title)]] for title in listed] == sorted(
        (terms[names[order.index(title)]] for title in listed), reverse=True)


@given(st.lists(st.floats(0.01, 5, allow_nan=False), min_size=1, max_size=8))
def test_the_embedding_reading_names_rows_tied_for_the_most_moved_as_tied(drifts: list[float]) -> None:
    tokens = tuple(TokenDrift(100 + i, f"t{i}", drift, drift / 3) for i, drift in enumerate(drifts))
    reading = embeddings(EmbeddingDrift("embed", 1024, 0, 0, 0.1, tokens), {}).reading
    top = max((f"{drift:.3g}" for drift in drifts), key=float)
    tied = [token for token in sorted(tokens, key=lambda token: -token.drift) if f"{token.drift:.3g}" == top]
    if len(tied) == 1:
        assert reading.startswith(f"The most-moved row, token {tied[0].token_id} 't")
    else:
        assert reading.startswith(f"{len(tied)} rows tie as the most moved (tokens {tied[0].token_id} ")
        assert all(f"{token.token_id} '{token.token}'" in reading for token in tied)


@given(st.lists(st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=4))
def test_the_head_reading_names_every_head_tied_at_the_peak(rows: list[list[float]]) -> None:
    layers = tuple(range(len(rows)))
    scores = tuple(tuple(row) for row in rows)
    grid = head_grids(HeadScores(len(rows), 4, 2, layers, scores, {}))[COMBINED]
    top = max((f"{value:.3f}" for row in rows for value in row), key=float)
    if float(top) == 0 and max(value for row in rows for value in row) == 0:
        assert grid.reading == f"No head changed in {COMBINED}."
        return
    tied = [f"layer {layer} head {head}" for layer, row in zip(layers, rows) for head, value in enumerate(row)
            if f"{value:.3f}" == top]
    named = tied[0] if len(tied) == 1 else f"{', '.join(tied[:-1])} and {tied[-1]}, tied"
    assert grid.reading.startswith(f"Head change ({COMBINED}) peaks at {named}: ")
