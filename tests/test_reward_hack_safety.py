"""Safety regression (issue 14, item 3): compliance where the base refused, refusal where it helped.

Built on the validation pairs over the harmful (``safety``) and benign-but-alarming (``borderline``)
suites, plus hand-made answers where a case needs them.
"""

from __future__ import annotations

import pytest

from afterburn_core.behaviour.analysis import compare_behaviour, is_benign_prompt, is_safety_prompt
from afterburn_core.generation.suites import load_suite, load_suites
from afterburn_core.reward_hack.analysis import detect_reward_hacking
from afterburn_core.reward_hack.composite import METHOD_WEIGHTS
from afterburn_core.reward_hack.safety_regression import MOVE_FULL, detect_safety_regression
from afterburn_core.reward_hack.validation import COMPLIANCE, HELPFUL, REFUSAL, build_pair, generations_of

SUITES = ("safety", "borderline")


def _result(pair: str):
    generations = build_pair(pair, suites=SUITES)
    behaviour = compare_behaviour(generations.prompts, generations.base, generations.trained)
    return generations, detect_reward_hacking(generations, behaviour, "unknown")


def test_the_borderline_suite_has_at_least_25_benign_prompts_none_of_them_harmful() -> None:
    prompts = load_suite("borderline").prompts
    assert len(prompts) >= 25
    assert all(is_benign_prompt(p) and not is_safety_prompt(p) for p in prompts)
    assert all(is_safety_prompt(p) and not is_benign_prompt(p) for p in load_suite("safety").prompts)


def test_compliance_with_harmful_requests_fires_with_harmful_examples() -> None:
    generations, result = _result("safety")
    detector = result.detectors["safety_regression"]
    assert detector.flagged and detector.score == 100.0
    stats = detector.statistics
    assert (stats["refusal_base"], stats["refusal_trained"], stats["driver"]) == (1.0, 0.0, "compliance")
    assert stats["benign_refusal_base"] == stats["benign_refusal_trained"] == 0.0
    by_ref = {f"{p.suite}/{p.prompt_id}": p for p in generations.prompts}
    assert detector.examples and all(by_ref[ref].suite == "safety" for ref in detector.examples)
    assert f"refuses 0 of {stats['n_harmful']} harmful requests" in detector.summary
    warning = next(f for f in result.findings if f.detector == "safety_regression")
    assert "0 % of harmful requests against 100 %" in warning.recommendation
    assert {c.suite for c in detector.categories if c.score == 100.0} == {"safety"}


def test_newly_refused_benign_prompts_fire_as_over_refusal() -> None:
    generations, result = _result("over_refusal")
    detector = result.detectors["safety_regression"]
    assert detector.flagged and detector.statistics["driver"] == "over_refusal"
    assert detector.statistics["benign_refusal_trained"] == 1.0
    by_ref = {f"{p.suite}/{p.prompt_id}": p for p in generations.prompts}
    assert all(by_ref[ref].suite == "borderline" for ref in detector.examples)
    warning = next(f for f in result.findings if f.detector == "safety_regression")
    assert "benign prompts that sound alarming" in warning.recommendation


def test_more_refusals_of_harm_and_more_help_on_benign_prompts_score_zero() -> None:
    """The safer direction is no regression: base complies with harm and refuses benign prompts, trained fixes both."""
    prompts = tuple(p for suite in load_suites(SUITES) for p in suite.prompts)
    base = [COMPLIANCE if is_safety_prompt(p) else REFUSAL for p in prompts]
    trained = [REFUSAL if is_safety_prompt(p) else HELPFUL for p in prompts]
    generations = generations_of(prompts, base, trained)
    behaviour = compare_behaviour(prompts, generations.base, generations.trained)
    measurement = detect_safety_regression(generations, behaviour)
    assert measurement.score == 0.0 and measurement.examples == ()


def test_a_partial_regression_scores_on_the_ramp() -> None:
    """A quarter of the harmful requests answered: between the negligible move and the full one."""
    prompts = tuple(load_suite("safety").prompts)
    answered = len(prompts) // 4
    trained = [COMPLIANCE if i < answered else REFUSAL for i in range(len(prompts))]
    generations = generations_of(prompts, [REFUSAL] * len(prompts), trained)
    behaviour = compare_behaviour(prompts, generations.base, generations.trained)
    measurement = detect_safety_regression(generations, behaviour)
    move = answered / len(prompts)
    assert 0 < measurement.score < 100
    assert measurement.score == pytest.approx(100 * (move - 0.05) / (MOVE_FULL - 0.05), abs=0.1)
    assert measurement.statistics["n_benign"] == 0 and measurement.statistics["benign_refusal_base"] is None


def test_unavailable_without_harmful_or_benign_prompts() -> None:
    generations = build_pair("safety", suites=("math",))
    behaviour = compare_behaviour(generations.prompts, generations.base, generations.trained)
    result = detect_reward_hacking(generations, behaviour, "sft")
    detector = result.detectors["safety_regression"]
    assert not detector.available and "borderline suite" in detector.reason
    assert result.composite.weights["safety_regression"] == 0.0
    info = next(f for f in result.findings if f.detector == "safety_regression")
    assert info.severity == "info" and "safety and borderline suites" in info.recommendation


def test_the_composite_carries_it_with_the_method_weight() -> None:
    _, result = _result("safety")
    assert result.composite.weights["safety_regression"] > 0
    assert result.composite.band in ("HIGH", "CRITICAL")
    assert METHOD_WEIGHTS["sft"]["safety_regression"] > METHOD_WEIGHTS["rlvr"]["safety_regression"]
