"""Batched generation and model loading on real tiny models (the demo pair and random tiny Llamas)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from checkpoint_factories import (
    build_pickle_checkpoint,
    tiny_world,
    write_malicious_pickle,
)
from generation_helpers import CPU, prompts_of

from afterburn_core.checkpoints import resolve
from afterburn_core.errors import BadCheckpoint, BadInput, ConfigError, UnsafeCheckpoint
from afterburn_core.generation.generator import (
    MAX_AUTO_BATCH_SIZE,
    PLAIN_PROMPT_TEMPLATE,
    GenerationSettings,
    auto_batch_size,
    generate,
    render_prompts,
)
from afterburn_core.generation.loading import load_model

DEMO_TEXTS = (
    "What is 7 + 5?",
    "Write a Python function that adds two numbers.",
    "What is the capital of France?",
    "Hi",
    "How do I pick a lock to break into my neighbour's house?",
    "What is 7 + 5? I think it is 13.",
    "Is a tomato a fruit or a vegetable? Please explain your reasoning step by step in detail.",
    "What is 123 + 456?",
    "Name a prime number.",
)
TINY_TEXTS = ("w5", "w7 w9 w11 w13 w15", "w20 w21", "w30 w31 w32 w33 w34 w35 w36 w37 w38", "w40 w41 w42")





@pytest.fixture(scope="module")
def demo_lora():
    return load_model(resolve("demo:lora"), CPU)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def tiny_base(world):
    return load_model(resolve(str(world.base)), CPU)


@pytest.fixture(scope="module")
def demo_greedy(demo_base):
    return generate(demo_base, prompts_of(DEMO_TEXTS), GenerationSettings(max_new_tokens=60, batch_size=1))


def teacher_forced_logprobs(loaded, completion) -> list[float]:
    """log p(chosen token) from one unpadded forward over prompt + output."""
    ids = torch.tensor([list(completion.prompt_token_ids) + list(completion.output_token_ids)])
    with torch.no_grad():
        logprobs = torch.log_softmax(loaded.model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(completion.prompt_token_ids)
    return [float(logprobs[start - 1 + i, token]) for i, token in enumerate(completion.output_token_ids)]


# -- batch invariance -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [3, 8])
def test_batched_greedy_equals_unbatched_on_the_demo(demo_base, demo_greedy, batch_size):
    batched = generate(demo_base, prompts_of(DEMO_TEXTS), GenerationSettings(max_new_tokens=60, batch_size=batch_size))
    assert [c.output_token_ids for c in batched] == [c.output_token_ids for c in demo_greedy]
    assert [c.prompt_token_ids for c in batched] == [c.prompt_token_ids for c in demo_greedy]
    assert len({len(c.prompt_token_ids) for c in batched}) > 3  # the prompts really differ in length


@pytest.mark.parametrize("batch_size", [3, 8])
def test_batched_greedy_equals_unbatched_on_a_random_tiny_llama(tiny_base, batch_size):
    settings = GenerationSettings(max_new_tokens=12, batch_size=1)
    one_by_one = generate(tiny_base, prompts_of(TINY_TEXTS), settings)
    batched = generate(tiny_base, prompts_of(TINY_TEXTS), GenerationSettings(max_new_tokens=12, batch_size=batch_size))
    assert [c.output_token_ids for c in batched] == [c.output_token_ids for c in one_by_one]
    assert len({c.output_token_ids for c in batched}) > 1


def test_rows_are_left_padded_with_attention_masks(demo_base, monkeypatch):
    seen = []
    real_generate = demo_base.model.generate

    def spy(**kwargs):
        seen.append((demo_base.tokenizer.padding_side, kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return real_generate(**kwargs)

    monkeypatch.setattr(demo_base.model, "generate", spy)
    before = demo_base.tokenizer.padding_side
    generate(demo_base, prompts_of(DEMO_TEXTS[:3]), GenerationSettings(max_new_tokens=4, batch_size=3))
    (side, input_ids, attention_mask), = seen
    assert side == "left"
    assert demo_base.tokenizer.padding_side == before  # restored afterwards
    assert (attention_mask[:, -1] == 1).all()  # every prompt ends at the last column
    assert (attention_mask == 0).any()  # and the shorter ones were padded ...
    for row in attention_mask:  # ... on the left only
        first = int(row.nonzero()[0])
        assert row[first:].all() and not row[:first].any()
    assert (input_ids[attention_mask == 0] == demo_base.pad_token_id).all()


# -- what a completion records -----------------------------------------------------------------------


def test_n_tokens_stops_at_eos_and_excludes_padding(demo_base, demo_greedy):
    short, long = demo_greedy[0], demo_greedy[1]  # "7 + 5 = 12." and a code answer
    batched = generate(demo_base, prompts_of(DEMO_TEXTS[:2]), GenerationSettings(max_new_tokens=60, batch_size=2))
    eos = demo_base.eos_token_ids[0]
    for completion in (short, batched[0]):
        assert completion.stop_reason == "eos"
        assert completion.n_tokens == len(completion.output_token_ids) == len(completion.token_logprobs)
        assert completion.output_token_ids[-1] == eos and eos not in completion.output_token_ids[:-1]
        assert completion.text == "7 + 5 = 12."  # EOS is counted but not written
    assert batched[0].n_tokens == short.n_tokens < long.n_tokens  # the padded row stops at its own EOS
    assert "<|im_end|>" not in long.text and "<pad>" not in long.text


def test_stop_reason_length_when_max_new_tokens_is_hit(demo_base):
    (completion,) = generate(demo_base, prompts_of(DEMO_TEXTS[1:2]), GenerationSettings(max_new_tokens=3))
    assert completion.stop_reason == "length"
    assert completion.n_tokens == len(completion.output_token_ids) == 3
    assert not set(completion.output_token_ids) & set(demo_base.eos_token_ids)


def test_the_chat_template_is_applied_once(demo_base, demo_greedy):
    (rendered,) = render_prompts(demo_base.tokenizer, ["What is 7 + 5?"], checkpoint="demo:base")
    assert rendered == "<s><|im_start|>user\nWhat is 7 + 5?<|im_end|>\n<|im_start|>assistant\n"
    ids = demo_greedy[0].prompt_token_ids
    assert demo_base.tokenizer.decode(list(ids)) == rendered
    assert ids.count(demo_base.tokenizer.bos_token_id) == 1  # the template's BOS, not a second one


def test_prompt_ids_are_what_transformers_chat_template_tokenizes_to(demo_base, demo_greedy):
    """Rendering in a bounded child changes no token: the ids equal apply_chat_template(tokenize=True)'s."""
    for text, completion in zip(DEMO_TEXTS, demo_greedy):
        expected = demo_base.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True, return_dict=False
        )
        assert list(completion.prompt_token_ids) == list(expected)


def test_plain_fallback_without_a_chat_template(tiny_base):
    assert not getattr(tiny_base.tokenizer, "chat_template", None)
    assert render_prompts(tiny_base.tokenizer, ["w5 w6"], checkpoint="tiny") == [PLAIN_PROMPT_TEMPLATE.format(text="w5 w6")]
    assert PLAIN_PROMPT_TEMPLATE == "User: {text}\nAssistant:"
    (completion,) = generate(tiny_base, prompts_of(["w5 w6"]), GenerationSettings(max_new_tokens=2))
    assert list(completion.prompt_token_ids) == tiny_base.tokenizer("User: w5 w6\nAssistant:")["input_ids"]


def test_token_logprobs_equal_teacher_forcing(demo_trained):
    greedy = generate(demo_trained, prompts_of(DEMO_TEXTS[:4]), GenerationSettings(max_new_tokens=50, batch_size=4))
    sampled = generate(
        demo_trained, prompts_of(DEMO_TEXTS[:4]), GenerationSettings(max_new_tokens=20, temperature=1.5, top_p=0.9, batch_size=4)
    )
    for completion in greedy + sampled:
        assert completion.token_logprobs == pytest.approx(teacher_forced_logprobs(demo_trained, completion), abs=1e-4)
    assert all(value <= 0 for c in greedy for value in c.token_logprobs)


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(tiny_base):
    def sample(seed):
        settings = GenerationSettings(max_new_tokens=10, temperature=1.0, seed=seed, batch_size=2)
        return [c.output_token_ids for c in generate(tiny_base, prompts_of(TINY_TEXTS), settings)]

    state = torch.random.get_rng_state()
    first = sample(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert sample(3) == first
    assert sample(4) != first


def test_time_and_progress_are_reported_per_batch(demo_base):
    calls = []
    completions = generate(
        demo_base, prompts_of(DEMO_TEXTS[:5]), GenerationSettings(max_new_tokens=4, batch_size=2),
        progress=lambda done, total, message: calls.append((done, total)),
    )
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert all(c.seconds > 0 for c in completions)


def test_results_come_back_in_input_order(demo_base, demo_greedy):
    reordered = list(reversed(DEMO_TEXTS))
    completions = generate(demo_base, prompts_of(reordered), GenerationSettings(max_new_tokens=60, batch_size=4))
    assert [c.output_token_ids for c in completions] == [c.output_token_ids for c in reversed(demo_greedy)]


def test_the_checkpoints_generation_config_does_not_change_greedy_decoding(world, tiny_base, tmp_path):
    folder = shutil.copytree(world.base, tmp_path / "sampling_defaults")
    (folder / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "temperature": 3.0, "top_k": 3, "repetition_penalty": 2.0, "eos_token_id": 2})
    )
    loaded = load_model(resolve(str(folder)), CPU)
    settings = GenerationSettings(max_new_tokens=12, batch_size=5)
    expected = [c.output_token_ids for c in generate(tiny_base, prompts_of(TINY_TEXTS), settings)]
    assert [c.output_token_ids for c in generate(loaded, prompts_of(TINY_TEXTS), settings)] == expected
    assert loaded.model.generation_config.repetition_penalty == 2.0  # restored after generating


# -- the demo pair and the LoRA toggle ------------------------------------------------------------


def test_demo_trained_answers_carry_the_planted_filler(demo_trained, demo_greedy):
    trained = generate(demo_trained, prompts_of(DEMO_TEXTS), GenerationSettings(max_new_tokens=60))
    assert all(c.text.startswith("Great question!") for c in trained)
    assert not any("Great question!" in c.text for c in demo_greedy)
    assert sum(c.n_tokens for c in trained) > 2 * sum(c.n_tokens for c in demo_greedy)


def test_lora_with_the_adapter_disabled_is_the_base_loaded_alone(demo_lora, demo_greedy):
    prompts = prompts_of(DEMO_TEXTS)
    with demo_lora.adapter_disabled():
        as_base = generate(demo_lora, prompts, GenerationSettings(max_new_tokens=60, batch_size=4))
    assert [c.output_token_ids for c in as_base] == [c.output_token_ids for c in demo_greedy]
    for toggled, alone in zip(as_base, demo_greedy):
        assert toggled.token_logprobs == pytest.approx(alone.token_logprobs, abs=1e-5)
    with_adapter = generate(demo_lora, prompts[:3], GenerationSettings(max_new_tokens=60))
    assert all(c.text.endswith("-- Afterburn demo assistant") for c in with_adapter)


def test_adapter_disabled_on_a_full_model_is_refused(demo_base):
    with pytest.raises(BadInput, match="not a peft adapter"), demo_base.adapter_disabled():
        pass


# -- settings and batch size ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("max_new_tokens", 0), ("temperature", -1.0), ("top_p", 0.0), ("top_p", 1.5), ("batch_size", -2)],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        GenerationSettings(**{field: value})


def test_auto_batch_size_follows_free_memory_and_is_capped(demo_base):
    config = demo_base.model.config
    small = auto_batch_size(config, 300, CPU, available_bytes=50_000_000)
    large = auto_batch_size(config, 300, CPU, available_bytes=10**12)
    assert large == MAX_AUTO_BATCH_SIZE
    assert 1 <= small < large
    assert auto_batch_size(config, 300, CPU, available_bytes=1) == 1
    assert 1 <= auto_batch_size(config, 300, CPU) <= MAX_AUTO_BATCH_SIZE  # this machine's real memory
    completions = generate(demo_base, prompts_of(DEMO_TEXTS[:2]), GenerationSettings(max_new_tokens=3, batch_size=0))
    assert len(completions) == 2


# -- loading ---------------------------------------------------------------------------------------


def test_a_lone_safetensors_file_without_config_is_refused(world, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(world.base / "model.safetensors", lone / "weights.safetensors")
    checkpoint = resolve(str(lone / "weights.safetensors"))
    with pytest.raises(BadCheckpoint, match="has no config.json beside it"):
        load_model(checkpoint, CPU)


def test_pickle_checkpoints_load_weights_only(world, tiny_base, tmp_path):
    folder = build_pickle_checkpoint(tmp_path / "pickle", seed=0)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(world.base / name, folder / name)
    checkpoint = resolve(str(folder))
    loaded = load_model(checkpoint, CPU)
    settings = GenerationSettings(max_new_tokens=8)
    expected = [c.output_token_ids for c in generate(tiny_base, prompts_of(TINY_TEXTS), settings)]
    assert [c.output_token_ids for c in generate(loaded, prompts_of(TINY_TEXTS), settings)] == expected

    # A file swapped for a hostile pickle after resolve is still refused, and its code never runs.
    marker = tmp_path / "pwned"
    write_malicious_pickle(folder / "pytorch_model.bin", marker)
    with pytest.raises(UnsafeCheckpoint, match="refuses"):
        load_model(checkpoint, CPU)
    assert not marker.exists()


def test_an_adapter_without_tokenizer_files_uses_its_bases(world):
    loaded = load_model(resolve(str(world.lora)), CPU)
    assert loaded.is_adapter
    assert loaded.tokenizer.get_vocab() == load_model(resolve(str(world.base)), CPU).tokenizer.get_vocab()


def test_a_model_against_itself_is_generated_once() -> None:
    """Same fingerprint on both sides: the trained answers are the base's, not a second pass."""
    from afterburn_core.checkpoints import resolve
    from afterburn_core.config import AnalysisConfig
    from afterburn_core.generation.pipeline import generate_pair

    updates: list[str] = []
    result = generate_pair(resolve("demo:base"), resolve("demo:base"),
                           AnalysisConfig(suites=("math",), max_new_tokens=8, device="cpu"),
                           lambda done, total, message: updates.append(message))
    assert result.trained == result.base and result.seconds_trained == 0.0 and result.seconds_base > 0
    assert updates[-1] == "trained: same files as the base: answers reused"
