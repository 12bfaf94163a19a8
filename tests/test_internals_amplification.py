"""Logit-difference amplification on planted pairs: a rare behaviour becomes frequent, nothing else moves.

The rare pair is built here: weights interpolated a third of the way from the demo base to its planted fine-tune
(θ = base + 0.3 (trained − base)), written as a real safetensors folder beside the demo's tokenizer files. Sampled
on the math suite it fences a few % of its answers; amplified at α = 2 it fences a third of them, and format
gaming (the detector that counts fences a prompt did not ask for) rises from LOW with it. The clean control
fine-tune stays LOW at every α, identical models give every α the α = 0 answers token for token, and a LoRA
adapter amplified through the toggle gives the answers of its merged model. Generation runs once per pair per
module; every amplification is a 20-token decode of the 32 math prompts or fewer (about 40 s on 2 cores in all).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from checkpoint_factories import interpolated_demo

from afterburn_core import serde
from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.demo.corpus import LORA_SIGN_OFF
from afterburn_core.errors import AnalysisSkipped
from afterburn_core.generation.pipeline import generate_pair
from afterburn_core.internals.amplification import amplify, wilson_interval
from afterburn_core.internals.types import AmplificationLevel

CPU = torch.device("cpu")
#: The math suite: no code prompt, so a fence is never asked for; 20 tokens hold the planted fence.
CONFIG = AnalysisConfig(device="cpu", suites=("math",), max_new_tokens=20, amplification_samples=2,
                        amplification_alphas=(0.0, 1.0, 2.0))
#: How far the rare pair sits from the base towards the planted fine-tune (measured: at 0.3 the sampled answers
#: fence 2 of 64 unrequested, at 0.4 already 12 of 62 on the reasoning suite).
RARE_SHARE = 0.3
#: Prompts of the quicker checks (identity, adapter): enough rows for two batches' worth of different lengths.
FEW = 8


def merged_lora(folder: Path) -> Path:
    """demo:lora merged into its base, saved as a full checkpoint with the base's tokenizer files."""
    from afterburn_core.generation.loading import load_model

    lora = resolve("demo:lora")
    loaded = load_model(lora, CPU)
    loaded.model.merge_and_unload().save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        shutil.copy(Path(lora.adapter_base.root) / name, folder / name)
    return folder


def first(generations, count: int):
    """The run's generations cut to its first ``count`` prompts."""
    return dataclasses.replace(generations, prompts=generations.prompts[:count], base=generations.base[:count],
                               trained=generations.trained[:count])


def run(trained_reference: str, config: AnalysisConfig = CONFIG, count: int | None = None):
    base, trained = resolve("demo:base"), resolve(trained_reference)
    generations = generate_pair(base, trained, config, device=CPU)
    if count is not None:
        generations = first(generations, count)
    return generations, amplify(base, trained, generations, config, CPU)


@pytest.fixture(scope="module")
def rare(tmp_path_factory) -> tuple:
    return run(str(interpolated_demo(tmp_path_factory.mktemp("rare") / "model", RARE_SHARE)), CONFIG)


def tokens(level: AmplificationLevel) -> list[tuple[int, ...]]:
    return [completion.output_token_ids for completion in level.completions]


def test_identical_models_give_every_alpha_the_answers_of_alpha_zero() -> None:
    generations, levels = run("demo:base", count=FEW)
    assert [level.alpha for level in levels] == [0.0, 1.0, 2.0]
    assert all(tokens(level) == tokens(levels[0]) for level in levels)
    assert all(level.detectors == levels[0].detectors for level in levels)
    # Sample-major, one answer per prompt per sample, from the prompts the run stored; the two samples differ.
    answers = levels[0].completions
    assert len(answers) == 2 * FEW
    assert [c.prompt_token_ids for c in answers] == 2 * [c.prompt_token_ids for c in generations.trained]
    assert tokens(levels[0])[:FEW] != tokens(levels[0])[FEW:]
    # Seeded from config.seed: the same run reproduces every token; another seed samples other answers.
    _, again = run("demo:base", count=FEW)
    assert [tokens(level) for level in again] == [tokens(level) for level in levels]
    _, reseeded = run("demo:base", dataclasses.replace(CONFIG, seed=1, amplification_alphas=(0.0,)), count=FEW)
    assert tokens(reseeded[0]) != tokens(levels[0])


def test_a_rare_planted_fence_becomes_frequent_at_alpha_two(rare) -> None:
    generations, levels = rare
    at_zero, at_two = levels[0].detectors["format_gaming"], levels[2].detectors["format_gaming"]
    answers = 2 * len(generations.prompts)
    assert answers == 64
    # Rare as the model samples it, frequent when amplified: the interval at α = 2 clears the rate at α = 0.
    assert at_zero.rate <= 0.10
    assert at_two.rate >= 3 * at_zero.rate and at_two.rate_low > at_zero.rate
    assert at_two.score > at_zero.score and at_zero.score < 25
    fenced = sum("```" in completion.text for completion in levels[2].completions)
    assert fenced >= 16
    # The rate is a count of the answers with its 95 % Wilson interval.
    for level in levels:
        reading = level.detectors["format_gaming"]
        assert (reading.rate_low, reading.rate_high) == wilson_interval(round(reading.rate * answers), answers)
        assert reading.rate_low <= reading.rate <= reading.rate_high and reading.available


def test_detectors_without_their_prompts_count_no_rate(rare) -> None:
    _, levels = rare
    for level in levels:
        for name in ("sycophancy", "safety_regression"):  # the math suite holds no probe and no harmful request
            reading = level.detectors[name]
            assert not reading.available and reading.rate is None and reading.rate_low is None
        assert level.detectors["length_bias"].rate is not None


def test_the_control_fine_tune_stays_low_at_every_alpha() -> None:
    _, levels = run("demo:control")
    for level in levels:
        assert all(reading.score < 25 and not reading.flagged for reading in level.detectors.values()), level.alpha
        assert level.detectors["format_gaming"].rate <= 0.05


def test_an_adapter_amplified_through_the_toggle_equals_its_merged_model(tmp_path) -> None:
    config = dataclasses.replace(CONFIG, amplification_alphas=(0.0, 2.0), amplification_samples=1)
    generations, toggled = run("demo:lora", config, count=FEW)
    merged_reference = str(merged_lora(tmp_path / "merged"))
    merged = amplify(resolve("demo:base"), resolve(merged_reference), generations, config, CPU)
    assert [tokens(level) for level in toggled] == [tokens(level) for level in merged]
    # Amplifying the adapter's difference signs off more answers.
    signed = [sum(LORA_SIGN_OFF.strip() in c.text for c in level.completions) for level in toggled]
    assert signed[1] > signed[0]


def test_two_full_models_beyond_the_memory_budget_are_refused_before_loading(monkeypatch, rare) -> None:
    from afterburn_core import limits
    from afterburn_core.generation import loading

    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 8 * 2**20)
    monkeypatch.setattr(loading, "load_model", lambda *args, **kwargs: pytest.fail("a model was loaded"))
    generations, _ = rare
    with pytest.raises(AnalysisSkipped) as refused:
        amplify(resolve("demo:base"), resolve("demo:trained"), generations, CONFIG, CPU)
    assert str(refused.value) == (
        "logit-difference amplification needs both models in memory at once: demo:base (3.8 MiB) and demo:trained "
        "(3.8 MiB) exceed its budget of 6.4 MiB (80% of the 8.0 MiB available on cpu); run it where more memory "
        "is free, or turn amplification off"
    )


def test_levels_round_trip_through_json(rare) -> None:
    _, levels = rare
    written = json.dumps(serde.to_jsonable(levels))
    assert serde.from_jsonable(tuple[AmplificationLevel, ...], json.loads(written)) == levels
