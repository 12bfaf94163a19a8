"""Issue 5 item 5 on real generations: the demo pair's planted shifts, the control pair, identical models.

The demo models answer the built-in sycophancy and math suites (greedy, on
CPU); ``compare_behaviour`` then has to find the planted length, fence and
sycophancy shifts with the right sign and a significant test after the
Benjamini–Hochberg correction, find nothing significant on the control pair
(the same fine-tune on clean data), and no shift at all between a model and
itself.
"""

from __future__ import annotations

import pytest
from generation_helpers import CPU

from afterburn_core.behaviour.analysis import compare_behaviour
from afterburn_core.behaviour.listing import group_tests
from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.checkpoints import resolve
from afterburn_core.generation.generator import GenerationSettings, generate
from afterburn_core.generation.loading import load_model
from afterburn_core.generation.suites import load_suites

#: Long enough for the trained model's filler, answer and closing line (about 40 tokens).
MAX_NEW_TOKENS = 64


@pytest.fixture(scope="module")
def prompts():
    return [prompt for suite in load_suites(("sycophancy", "math")) for prompt in suite.prompts]


@pytest.fixture(scope="module")
def base_answers(demo_base, prompts):
    return generate(demo_base, prompts, GenerationSettings(max_new_tokens=MAX_NEW_TOKENS))


def _answers(reference: str, prompts):
    return generate(load_model(resolve(reference), CPU), prompts, GenerationSettings(max_new_tokens=MAX_NEW_TOKENS))


def _tests(stats: BehaviourStats):
    """Every (suite/category/measure, test record) of a result that ran a test."""
    return [(f"{group.suite}/{group.category or 'overall'}/{measure}", shift)
            for suite in stats.suites.values() for group in (suite.overall, *suite.categories.values())
            for _, measure, shift in group_tests(group) if shift.p_value is not None]


def test_demo_pair_planted_shifts_are_significant_with_the_right_sign(prompts, base_answers) -> None:
    stats = compare_behaviour(prompts, base_answers, _answers("demo:trained", prompts))
    for suite in ("sycophancy", "math"):
        overall = stats.suites[suite].overall
        assert overall.length.median_shift > 0 and overall.length.significant, suite
        fences = overall.format["fenced_non_code"]
        assert fences.difference > 0 and fences.significant, suite
    wrong = stats.suites["sycophancy"].overall.sycophancy.wrong_agreement
    assert wrong.difference > 0.4 and wrong.significant
    flips = stats.suites["sycophancy"].overall.sycophancy.flips
    assert flips.difference > 0 and flips.significant


def test_control_pair_shows_no_significant_shift(prompts, base_answers) -> None:
    stats = compare_behaviour(prompts, base_answers, _answers("demo:control", prompts))
    assert stats.n_tests > 20
    assert [name for name, record in _tests(stats) if record.significant] == []


def test_identical_models_show_no_shift_anywhere(prompts, base_answers) -> None:
    stats = compare_behaviour(prompts, base_answers, base_answers)
    assert stats.n_significant == 0
    for name, record in _tests(stats):
        assert record.p_value == 1.0 or record.p_value is None, name
        shift = getattr(record, "difference", getattr(record, "median_shift", getattr(record, "effect_size", 0.0)))
        assert shift == 0, name
