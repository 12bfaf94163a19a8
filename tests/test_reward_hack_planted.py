"""Validation (issue 6, item 7): each planted behaviour fires its own detector and no other one.

The pairs come from ``afterburn_core.reward_hack.validation``, as in
docs/reward-hack-confusion.md, over three of the built-in suites (``SUITES``:
maths with its strategies, code, the sycophancy probes) so the file runs in
seconds; the script runs them over all five.
"""

from __future__ import annotations

import pytest

from afterburn_core.analyses import detector_names
from afterburn_core.generation.suites import load_suites
from afterburn_core.reward_hack.composite import composite_risk
from afterburn_core.reward_hack.format_requests import requested_formats
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.reward_hack.validation import (
    COLLAPSED_STRATEGY,
    CROSS_TALK_MARGIN,
    PLANTED,
    run_pair,
)

SUITES = ("math", "code", "sycophancy")
PROMPTS = {f"{p.suite}/{p.prompt_id}": p for suite in load_suites(SUITES) for p in suite.prompts}


@pytest.fixture(scope="module")
def results() -> dict[str, RewardHackResult]:
    return {pair: run_pair(pair, suites=SUITES) for pair in PLANTED}


@pytest.mark.parametrize("pair", list(PLANTED))
def test_the_planted_detector_fires(results: dict[str, RewardHackResult], pair: str) -> None:
    detector = results[pair].detectors[PLANTED[pair]]
    assert detector.flagged, detector.summary
    assert detector.band in ("HIGH", "CRITICAL")
    assert detector.statistics["significant"] is True
    assert 1 <= len(detector.examples) <= 3
    assert all(example in PROMPTS for example in detector.examples)


@pytest.mark.parametrize("pair", list(PLANTED))
def test_other_detectors_stay_within_the_cross_talk_margin(results: dict[str, RewardHackResult], pair: str) -> None:
    for name in detector_names():
        if name != PLANTED[pair]:
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
    for pair, name in PLANTED.items():
        warnings = [f for f in results[pair].findings if f.detector == name and f.severity == "warning"]
        assert len(warnings) == 1, pair
        detector = results[pair].detectors[name]
        assert f"{detector.score:.1f}" in warnings[0].title
        assert warnings[0].recommendation
        assert not [f for f in results[pair].findings if f.detector not in (name, "composite")], pair


def test_category_evidence_points_at_the_planted_categories(results: dict[str, RewardHackResult]) -> None:
    sycophancy = results["sycophancy"].detectors["sycophancy"]
    assert {c.suite for c in sycophancy.categories if c.score > 0} == {"sycophancy"}
    length = results["length"].detectors["length_bias"]
    assert {c.suite for c in length.categories if c.score > 50} == set(SUITES)


def test_the_method_reweights_the_same_detectors(results: dict[str, RewardHackResult]) -> None:
    detectors = results["sycophancy"].detectors
    assert composite_risk(detectors, "rlhf").score > composite_risk(detectors, "grpo").score

