"""The steering check on the demo pair: the strength rule, what steering does to the answers, and nothing for nothing.

The demo base answers a sample of the built-in suites (every 8th prompt, greedy, 48 new tokens); the
trained model's answers are the third column. Three directions are steered in at a block:

- the demo pair's own activation difference (the mean of h_trained − h_base over the first five tokens of
  neutral passages, read by the same passes and readings as the internals analysis) at the middle block;
- the fence and newline tokens' unembedding rows (unit, summed) at the last block, a direction known to
  write fenced blocks, so the behaviour metrics must see steered answers fenced;
- zeros, as from two identical models: every trial keeps the base's perplexity exactly and the steered
  answers are the base's token for token.

Each result must obey the strength rule and survive the JSON round trip.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from checkpoint_factories import edited_demo
from generation_helpers import CPU

from afterburn_core.checkpoints import resolve
from afterburn_core.checkpoints.architecture import architecture_map
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.generator import GenerationSettings, generate
from afterburn_core.generation.loading import load_model
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.generation.suites import load_suites
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.internals.model_parts import model_parts
from afterburn_core.internals.passes import InputSequence, compare_pair, make_batch
from afterburn_core.internals.readings import NEUTRAL, Readings
from afterburn_core.internals.steering import (
    PERPLEXITY_RATIO_BOUND,
    STEERING_METRICS,
    STEERING_STRENGTHS,
    steer_base,
)
from afterburn_core.internals.types import SteeringResult
from afterburn_core.serde import from_jsonable, to_jsonable

CONFIG = AnalysisConfig(device="cpu")
MAX_NEW_TOKENS = 48
#: Neutral passages the test's difference is read on (the analysis reads all 331; 32 keep it to seconds).
DIFFERENCE_PASSAGES = 32
HELDOUT = neutral_corpus().passages[-8:]
ARCHITECTURE = architecture_map(resolve("demo:base").description)


PROMPTS = tuple(prompt for suite in load_suites(()) for prompt in suite.prompts)[::8]
SETTINGS = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS, batch_size=16)
#: How far the planted pair's embeddings move along the fence direction (unit): measured, at 2 the trained
#: model's answers run to the token limit without a fence, at 5 they fence none, at 10 every one of them.
PLANTED_SHIFT = 10.0


def answers(reference: str) -> tuple:
    loaded = load_model(resolve(reference), CPU)
    try:
        return tuple(generate(loaded, PROMPTS, SETTINGS))
    finally:
        loaded.release()


@pytest.fixture(scope="module")
def generations(demo_base) -> GenerationsResult:
    return GenerationsResult((), PROMPTS, tuple(generate(demo_base, PROMPTS, SETTINGS)), answers("demo:trained"),
                             MAX_NEW_TOKENS, 0.0, 1.0, 0, 16, True, "cpu", 0.0, 0.0)


def fence_direction(loaded) -> torch.Tensor:
    """The fence and newline tokens' unembedding rows, each unit, summed: a direction that writes fenced
    blocks (the fence token alone writes ``` inside sentences, which is no fenced block; with a newline it
    opens one)."""
    rows = [loaded.tokenizer(text)["input_ids"] for text in ("```", "\n")]
    assert all(len(ids) == 1 for ids in rows)
    unembedding = model_parts(loaded.model, ARCHITECTURE).head.unembedding.weight.detach()
    return sum(unembedding[ids[0]] / unembedding[ids[0]].norm() for ids in rows)


def difference(layer: int, trained: str = "demo:trained") -> tuple[torch.Tensor, float]:
    """demo:base → ``trained``'s mean difference at ``layer`` over the first ``adl_positions`` neutral tokens,
    and the layer's mean norm, as the internals analysis reads them."""
    readings = Readings(CONFIG.adl_positions, {})
    passages = neutral_corpus().passages[:DIFFERENCE_PASSAGES]

    def make_batches(tokenizer):
        rows = [InputSequence(NEUTRAL, f"{NEUTRAL}/{index}",
                              tuple(tokenizer(text)["input_ids"][:CONFIG.internals_tokens]))
                for index, text in enumerate(passages)]
        return [make_batch(rows[start:start + 8], tokenizer.pad_token_id) for start in range(0, len(rows), 8)]

    def load(reference):
        return lambda: load_model(resolve(reference), CPU)

    compare_pair(load("demo:base"), load(trained), make_batches, readings, ARCHITECTURE,
                 lambda *_: None, lambda *_: None)
    return readings.adl_means()[layer].mean(0).float(), float(readings.mean_norms()[layer])


def assert_obeys_the_rule(result: SteeringResult) -> None:
    low = result.perplexity_base / PERPLEXITY_RATIO_BOUND
    assert result.perplexity_bound == pytest.approx(PERPLEXITY_RATIO_BOUND * result.perplexity_base)
    tried = [trial.strength for trial in result.trials]
    assert tried == list(STEERING_STRENGTHS[:len(tried)])
    for trial in result.trials:
        assert trial.accepted == (low <= trial.perplexity <= result.perplexity_bound)
    # Accepted from the smallest up, then at most one refusal ends the walk (or the grid ends).
    assert all(trial.accepted for trial in result.trials[:-1])
    accepted = [trial.strength for trial in result.trials if trial.accepted]
    assert result.strength == (accepted[-1] if accepted else 0.0)
    assert not result.trials[-1].accepted or len(result.trials) == len(STEERING_STRENGTHS)


def assert_round_trips(result: SteeringResult) -> None:
    assert from_jsonable(SteeringResult, to_jsonable(result)) == result


def test_the_demo_difference_changes_the_neutral_text_too_much_to_steer(demo_base, generations) -> None:
    layer = len(model_parts(demo_base.model, ARCHITECTURE).blocks) // 2
    direction, mean_norm = difference(layer)
    result = steer_base(demo_base, generations, direction, layer, mean_norm, ARCHITECTURE, CONFIG, HELDOUT)
    assert_obeys_the_rule(result)
    # The demo base does not model prose (perplexity far above its 1 024-token vocabulary), and the planted
    # difference pushes it toward uniform: perplexity halves already at the smallest strength, so nothing is
    # steered and the "steered" answers are the base's own, which the metrics then show.
    assert result.perplexity_base > 1024
    assert [(trial.strength, trial.accepted) for trial in result.trials] == [(0.25, False)]
    assert result.trials[0].perplexity < result.perplexity_base / PERPLEXITY_RATIO_BOUND
    assert result.strength == 0.0 and result.completions == generations.base
    assert all(triple.steered == triple.base for triple in result.metrics.values())
    assert result.metrics["fence_rate"].trained > result.metrics["fence_rate"].base
    assert result.metrics["filler_rate"].trained > result.metrics["filler_rate"].base
    assert_round_trips(result)


def test_steering_toward_the_fence_token_fences_the_answers(demo_base, generations) -> None:
    layer = len(model_parts(demo_base.model, ARCHITECTURE).blocks) - 1
    result = steer_base(demo_base, generations, fence_direction(demo_base), layer, 25.0, ARCHITECTURE, CONFIG,
                        HELDOUT)
    assert_obeys_the_rule(result)
    assert [(trial.strength, trial.accepted) for trial in result.trials] == [(0.25, True), (0.5, True), (1.0, False)]
    assert result.strength == 0.5
    assert len(result.completions) == len(generations.prompts)
    assert [c.prompt_token_ids for c in result.completions] == [c.prompt_token_ids for c in generations.base]
    fences = result.metrics["fence_rate"]
    assert fences.steered > fences.base, fences
    assert set(result.metrics) == set(STEERING_METRICS)
    assert_round_trips(result)


@pytest.fixture(scope="module")
def fence_planted(demo_base, tmp_path_factory) -> str:
    """A planted fine-tune carried by one direction: demo:base with every input embedding moved
    ``PLANTED_SHIFT`` along the fence direction (the demo's head is untied, so only what the model reads moves)."""
    shift = PLANTED_SHIFT * fence_direction(demo_base) / fence_direction(demo_base).norm()
    name = "model.embed_tokens.weight"
    folder = edited_demo(tmp_path_factory.mktemp("fence_planted") / "model",
                         lambda base, _trained: {**base, name: base[name] + shift})
    return str(folder)


def test_the_difference_of_a_one_direction_fine_tune_steers_the_base_toward_it(
        demo_base, generations, fence_planted) -> None:
    """Item 6 on a planted pair whose behaviour rides one direction: the analysis's own reading (the middle
    block's mean difference on neutral text), at the strength the rule picks, moves the base toward it."""
    planted = dataclasses.replace(generations, trained=answers(fence_planted))
    layer = len(model_parts(demo_base.model, ARCHITECTURE).blocks) // 2
    direction, mean_norm = difference(layer, fence_planted)
    result = steer_base(demo_base, planted, direction, layer, mean_norm, ARCHITECTURE, CONFIG, HELDOUT)
    assert_obeys_the_rule(result)
    assert result.strength > 0
    fences = result.metrics["fence_rate"]
    assert fences.base == 0 and fences.trained >= 0.9, fences
    assert fences.steered > fences.base, fences
    assert_round_trips(result)


def test_a_zero_direction_steers_nothing(demo_base, generations) -> None:
    result = steer_base(demo_base, generations, torch.zeros(demo_base.model.config.hidden_size), 1, 16.6,
                        ARCHITECTURE, CONFIG, HELDOUT)
    assert_obeys_the_rule(result)
    assert [trial.perplexity for trial in result.trials] == [result.perplexity_base] * len(STEERING_STRENGTHS)
    assert result.strength == STEERING_STRENGTHS[-1]
    # Generated again with the (zero) steering hook in place: the base's answers token for token.
    assert [c.output_token_ids for c in result.completions] == [c.output_token_ids for c in generations.base]
    assert all(triple.steered == triple.base for triple in result.metrics.values())
    assert_round_trips(result)
