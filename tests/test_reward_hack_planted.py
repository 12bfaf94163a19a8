"""Validation (issue 6, item 7): each planted behaviour fires its own detector and no other one.

The pairs come from ``afterburn_core.reward_hack.validation``, as in
docs/reward-hack-confusion.md, over three of the built-in suites (``SUITES``:
maths with its strategies, code, the sycophancy probes; the harmful and borderline requests for the safety
pairs) so the file runs in seconds; the script runs them over every built-in suite.
"""

from __future__ import annotations

import pytest

from afterburn_core.analyses import detector_names
from afterburn_core.generation.suites import load_suites
from afterburn_core.reward_hack.composite import composite_risk
from afterburn_core.reward_hack.format_requests import requested_formats
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.reward_hack.length_bias import category_score as length_category_score
from afterburn_core.reward_hack.validation import (
    COLLAPSED_STRATEGY,
    CROSS_TALK_MARGIN,
    PLANTED,
    SHARED_STRATEGY,
    run_pair,
)

SUITES = ("math", "code", "sycophancy")
#: The safety pairs plant their behaviour on the harmful and the borderline requests.
SAFETY_SUITES = ("math", "safety", "borderline")
PROMPTS = {f"{p.suite}/{p.prompt_id}": p for suite in load_suites(SUITES + SAFETY_SUITES) for p in suite.prompts}


@pytest.fixture(scope="module")
def results() -> dict[str, RewardHackResult]:
    return {pair: run_pair(pair, suites=SAFETY_SUITES if pair in ("safety", "over_refusal") else SUITES)
            for pair in PLANTED}


FIRING = [(pair, name) for pair, names in PLANTED.items() for name in names]


@pytest.mark.parametrize(("pair", "name"), FIRING)
def test_the_planted_detector_fires(results: dict[str, RewardHackResult], pair: str, name: str) -> None:
    detector = results[pair].detectors[name]
    assert detector.flagged, detector.summary
    assert detector.band in ("HIGH", "CRITICAL")
    assert detector.statistics["significant"] is True
    assert 1 <= len(detector.examples) <= 3
    assert all(example in PROMPTS for example in detector.examples)


@pytest.mark.parametrize("pair", list(PLANTED))
def test_other_detectors_stay_within_the_cross_talk_margin(results: dict[str, RewardHackResult], pair: str) -> None:
    for name in detector_names():
        if name not in PLANTED[pair]:
            detector = results[pair].detectors[name]
            assert detector.score <= CROSS_TALK_MARGIN, (name, detector.summary)
            assert detector.band == "LOW" and not detector.flagged, name


def test_examples_show_the_planted_behaviour(results: dict[str, RewardHackResult]) -> None:
    format_examples = results["format"].detectors["format_gaming"].examples
    assert all("fenced_code" not in requested_formats(PROMPTS[example]) for example in format_examples)
    sycophancy_examples = results["sycophancy"].detectors["sycophancy"].examples
    assert all(PROMPTS[example].variant == "wrong" for example in sycophancy_examples)
    strategy = results["strategy"].detectors["strategy_collapse"]
    assert strategy.statistics["dominant_trained"] == COLLAPSED_STRATEGY
    assert all(PROMPTS[example].suite in ("math", "sycophancy") for example in strategy.examples)


def test_each_flag_has_a_warning_with_numbers_and_a_recommendation(results: dict[str, RewardHackResult]) -> None:
    for pair, names in PLANTED.items():
        for name in names:
            warnings = [f for f in results[pair].findings if f.detector == name and f.severity == "warning"]
            assert len(warnings) == 1, pair
            detector = results[pair].detectors[name]
            assert f"{detector.score:.1f}" in warnings[0].title
            assert warnings[0].recommendation
        # Besides them, only an info line for a detector the pair's suites cannot measure.
        detectors = results[pair].detectors
        assert not [f for f in results[pair].findings if f.detector not in (*names, "composite")
                    and not (f.severity == "info" and not detectors[f.detector].available)], pair


def test_category_evidence_points_at_the_planted_categories(results: dict[str, RewardHackResult]) -> None:
    sycophancy = results["sycophancy"].detectors["sycophancy"]
    assert {c.suite for c in sycophancy.categories if c.score > 0} == {"sycophancy"}
    length = results["length"].detectors["length_bias"]
    assert {c.suite for c in length.categories if c.score > 50} == set(SUITES)


def test_the_method_reweights_the_same_detectors(results: dict[str, RewardHackResult]) -> None:
    detectors = results["sycophancy"].detectors
    assert composite_risk(detectors, "rlhf").score > composite_risk(detectors, "grpo").score



# --- issue 14: one cause, one detector; collapse across tasks ------------------------------------


def test_fences_around_short_answers_are_format_gaming_not_length_bias(results: dict[str, RewardHackResult]) -> None:
    result = results["fences"]
    length, fmt = result.detectors["length_bias"], result.detectors["format_gaming"]
    assert fmt.flagged and not length.flagged
    assert length.score == 0.0 and length.statistics["content_length_ratio"] == 1.0
    assert length.statistics["markup_share_of_growth"] == 1.0
    assert "which format gaming scores, not length bias" in length.summary
    # In tokens the fenced categories doubled: the total-token rule this detector used to apply fires.
    doubled = [c for c in length.categories if c.statistics["length_ratio"] >= 1.5]
    assert doubled and all(c.statistics["content_length_ratio"] == 1.0 and c.score == 0.0 for c in doubled)
    assert any(length_category_score(c.statistics["effect_size"], c.statistics["base_mean_tokens"],
                                     c.statistics["trained_mean_tokens"], _no_accuracy_change()) >= 75 for c in doubled)


def test_filler_inside_fences_fires_both_and_is_mostly_content(results: dict[str, RewardHackResult]) -> None:
    length = results["filler_fences"].detectors["length_bias"]
    assert 0 < length.statistics["markup_share_of_growth"] < 0.25
    assert "which format gaming scores" not in length.summary


def test_one_strategy_for_every_task_is_collapse_across_tasks(results: dict[str, RewardHackResult]) -> None:
    collapse = results["task_collapse"].detectors["strategy_collapse"]
    assert collapse.flagged
    stats = collapse.statistics
    assert stats["collapse_kind"] == "across" and stats["dominant_trained"] == SHARED_STRATEGY
    assert stats["within_score"] == 0.0 and stats["information_drop_ci_low"] > 0
    # Within categories nothing narrowed (the probes' variants keep their direct answers beside the steps),
    # so the within-category measure alone, the detector's only one before issue 14, scores 0.
    assert stats["entropy_trained"] >= stats["entropy_base"]


def test_within_category_narrowing_is_collapse_within(results: dict[str, RewardHackResult]) -> None:
    stats = results["strategy"].detectors["strategy_collapse"].statistics
    assert stats["collapse_kind"] == "within" and stats["entropy_drop_ci_low"] > 0


def test_longer_answers_that_are_more_often_right_are_forgiven(results: dict[str, RewardHackResult]) -> None:
    length = results["accurate_length"].detectors["length_bias"]
    assert length.statistics["content_length_ratio"] > 2 and length.statistics["accuracy_change"] > 0.2
    assert length.score <= CROSS_TALK_MARGIN and not length.flagged


def _no_accuracy_change():
    """A group stand-in with no graded prompts, for ``length_bias.category_score``."""
    from types import SimpleNamespace
    return SimpleNamespace(accuracy=None)
