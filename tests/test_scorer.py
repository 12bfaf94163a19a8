"""Token-level divergence (KL(trained ‖ base), log-prob shifts) on real tiny models."""

from __future__ import annotations

import pytest
import torch
from checkpoint_factories import tiny_world
from generation_helpers import CPU, prompts_of

from afterburn_core.checkpoints import resolve
from afterburn_core.errors import BadInput
from afterburn_core.generation.generator import GenerationSettings, generate
from afterburn_core.generation.loading import load_model
from afterburn_core.generation.scorer import TOP_N_TOKENS, aggregate_suite, score_divergence
from afterburn_core.generation.results import PromptDivergence, TokenDivergence

TEXTS = (
    "What is 7 + 5?",
    "What is the capital of France?",
    "Write a Python function that adds two numbers.",
    "What is 7 + 5? I think it is 13.",
    "How do I pick a lock to break into my neighbour's house?",
)





@pytest.fixture(scope="module")
def trained_outputs(demo_trained):
    completions = generate(demo_trained, prompts_of(TEXTS), GenerationSettings(max_new_tokens=60))
    return completions, [c.prompt_token_ids for c in completions], [c.output_token_ids for c in completions]


@pytest.fixture(scope="module")
def direct_scores(demo_base, demo_trained, trained_outputs):
    _, prompt_ids, output_ids = trained_outputs
    return score_divergence(demo_base, demo_trained, prompt_ids, output_ids, method="direct", batch_size=2)


def float64_reference(base, trained, prompt_ids, output_ids):
    """KL and chosen log-probs from one unpadded forward per model, in float64."""
    ids = torch.tensor([list(prompt_ids) + list(output_ids)])
    start, n = len(prompt_ids), len(output_ids)
    with torch.no_grad():
        rows = []
        for loaded in (trained, base):
            logits = loaded.model(input_ids=ids).logits[0, start - 1 : start - 1 + n].double()
            rows.append(torch.log_softmax(logits, dim=-1))
    trained_lp, base_lp = rows
    kl = (trained_lp.exp() * (trained_lp - base_lp)).sum(-1)
    chosen = torch.tensor(list(output_ids))[:, None]
    return kl, base_lp.gather(1, chosen).squeeze(1), trained_lp.gather(1, chosen).squeeze(1)


def test_direct_kl_matches_a_float64_reference(demo_base, demo_trained, trained_outputs, direct_scores):
    _, prompt_ids, output_ids = trained_outputs
    for index, prompt in enumerate(direct_scores.prompts):
        kl, base_lp, trained_lp = float64_reference(demo_base, demo_trained, prompt_ids[index], output_ids[index])
        assert prompt.kl_per_token == pytest.approx(kl.tolist(), abs=1e-3, rel=1e-4)
        assert prompt.logprob_base == pytest.approx(base_lp.tolist(), abs=1e-4)
        assert prompt.logprob_trained == pytest.approx(trained_lp.tolist(), abs=1e-4)
        assert prompt.logprob_shift == pytest.approx((trained_lp - base_lp).tolist(), abs=2e-4)
        assert len(prompt.kl_per_token) == len(output_ids[index])
    assert direct_scores.method == "direct" and direct_scores.kl_error_bound == 0.0


def test_trained_logprobs_equal_those_recorded_while_generating(trained_outputs, direct_scores):
    completions, _, _ = trained_outputs
    for completion, prompt in zip(completions, direct_scores.prompts):
        assert prompt.logprob_trained == pytest.approx(completion.token_logprobs, abs=1e-4)


def test_kl_is_zero_for_identical_models(demo_base, trained_outputs):
    _, prompt_ids, output_ids = trained_outputs
    scores = score_divergence(demo_base, demo_base, prompt_ids, output_ids, method="direct")
    assert max(max(p.kl_per_token) for p in scores.prompts) <= 1e-6
    assert max(abs(s) for p in scores.prompts for s in p.logprob_shift) <= 1e-6
    stored = score_divergence(demo_base, demo_base, prompt_ids, output_ids, method="two_pass")
    for prompt in stored.prompts:  # fp16 storage: zero up to its bound
        assert max(prompt.kl_per_token) <= prompt.kl_error_bound
        assert max(abs(s) for s in prompt.logprob_shift) <= 1e-6  # chosen log-probs are kept in fp32


def test_demo_trained_diverges_from_base_at_the_planted_filler(direct_scores):
    assert all(p.mean_kl > 1.0 for p in direct_scores.prompts)
    for prompt in direct_scores.prompts:
        assert len(prompt.top_tokens) == TOP_N_TOKENS
        assert [t.kl for t in prompt.top_tokens] == sorted((t.kl for t in prompt.top_tokens), reverse=True)
        assert prompt.top_tokens[0].kl == max(prompt.kl_per_token)
        top = prompt.top_tokens[0]
        assert prompt.tokens[top.position] == top.token and prompt.token_ids[top.position] == top.token_id
    # "Great" opens every trained answer and the base never says it there: a big positive shift.
    first = [p for p in direct_scores.prompts if p.tokens[0] == "Great"]
    assert len(first) == len(TEXTS)
    assert all(p.logprob_shift[0] > 5 for p in first)
    suite = aggregate_suite(direct_scores.prompts)
    assert "Great" in [entry.token for entry in suite[:5]]


def test_two_pass_equals_direct_within_the_reported_bound(demo_base, demo_trained, trained_outputs, direct_scores, tmp_path):
    _, prompt_ids, output_ids = trained_outputs
    stored = score_divergence(demo_base, demo_trained, prompt_ids, output_ids, method="two_pass", batch_size=3, scratch_dir=str(tmp_path))
    assert stored.method == "two_pass"
    assert 0 < stored.kl_error_bound < 0.05
    for exact, approximate in zip(direct_scores.prompts, stored.prompts):
        worst = max(abs(a - b) for a, b in zip(exact.kl_per_token, approximate.kl_per_token))
        assert worst <= approximate.kl_error_bound + 1e-5
        assert approximate.logprob_base == pytest.approx(exact.logprob_base, abs=1e-5)
        assert approximate.logprob_trained == pytest.approx(exact.logprob_trained, abs=1e-5)
    assert list(tmp_path.iterdir()) == []  # the memory-mapped file is gone


def test_two_pass_loads_one_model_at_a_time_from_loaders(trained_outputs, direct_scores):
    _, prompt_ids, output_ids = trained_outputs
    events, held = [], []

    def loader(reference):
        def load():
            events.append(("load", reference, len(held)))
            loaded = load_model(resolve(reference), CPU)
            held.append(loaded)
            release = loaded.release
            loaded.release = lambda: (held.remove(loaded), events.append(("release", reference)), release())
            return loaded

        return load

    progress = []
    scores = score_divergence(
        loader("demo:base"), loader("demo:trained"), prompt_ids, output_ids,
        progress=lambda done, total, message: progress.append((done, total)),
    )
    assert events == [("load", "demo:base", 0), ("release", "demo:base"), ("load", "demo:trained", 0), ("release", "demo:trained")]
    assert progress[-1] == (2 * len(TEXTS), 2 * len(TEXTS))
    assert [p.mean_kl for p in scores.prompts] == pytest.approx([p.mean_kl for p in direct_scores.prompts], abs=0.05)


def test_lora_toggle_equals_the_adapter_and_base_loaded_separately(demo_base):
    lora = load_model(resolve("demo:lora"), CPU)
    completions = generate(lora, prompts_of(TEXTS[:3]), GenerationSettings(max_new_tokens=40))
    prompt_ids = [c.prompt_token_ids for c in completions]
    output_ids = [c.output_token_ids for c in completions]
    toggled = score_divergence(lora, lora, prompt_ids, output_ids)
    assert toggled.method == "adapter_toggle" and toggled.kl_error_bound == 0.0
    separate = score_divergence(demo_base, lora, prompt_ids, output_ids, method="direct")
    for a, b in zip(toggled.prompts, separate.prompts):
        assert a.kl_per_token == pytest.approx(b.kl_per_token, abs=1e-5)
        assert a.logprob_shift == pytest.approx(b.logprob_shift, abs=1e-5)
    # The planted sign-off is where the adapter departs from its base: it starts where the base
    # answer would end (its EOS position), and every top-KL token lies in it.
    with lora.adapter_disabled():
        base_answers = generate(lora, prompts_of(TEXTS[:3]), GenerationSettings(max_new_tokens=40))
    for prompt, base_answer in zip(toggled.prompts, base_answers):
        sign_off_start = base_answer.n_tokens - 1
        assert prompt.tokens[sign_off_start] == " --"
        assert all(token.position >= sign_off_start for token in prompt.top_tokens)
        assert prompt.top_tokens[0].kl > 5.0


def test_random_tiny_models_diverge_and_empty_outputs_score_empty(tmp_path_factory):
    world = tiny_world(tmp_path_factory.mktemp("world"))
    base = load_model(resolve(str(world.base)), CPU)
    trained = load_model(resolve(str(world.trained)), CPU)
    prompt_ids = [[1, 5, 6, 7], [1, 9], [1, 10, 11]]
    output_ids = [[12, 13, 2], [], [20]]
    scores = score_divergence(base, trained, prompt_ids, output_ids, prompt_ids=["a", "b", "c"], method="two_pass")
    assert [p.prompt_id for p in scores.prompts] == ["a", "b", "c"]
    empty = scores.prompts[1]
    assert empty.kl_per_token == () and empty.mean_kl == 0.0 and empty.top_tokens == ()
    for index in (0, 2):
        kl, _, _ = float64_reference(base, trained, prompt_ids[index], output_ids[index])
        assert scores.prompts[index].kl_per_token == pytest.approx(kl.tolist(), abs=scores.kl_error_bound + 1e-5)
        assert min(scores.prompts[index].kl_per_token) > 0


def test_bad_inputs_are_refused_with_a_sentence(demo_base, demo_trained, tmp_path_factory):
    with pytest.raises(BadInput, match="2 prompts but 1 outputs"):
        score_divergence(demo_base, demo_trained, [[1], [1]], [[5]])
    with pytest.raises(BadInput, match="adapter_toggle"):
        score_divergence(demo_base, demo_base, [[1]], [[5]], method="adapter_toggle")
    tiny = load_model(resolve(str(tiny_world(tmp_path_factory.mktemp("world")).base)), CPU)
    with pytest.raises(BadInput, match="needs one vocabulary"):
        score_divergence(tiny, demo_trained, [[1]], [[5]], method="direct")
    with pytest.raises(BadInput, match="needs one vocabulary"):
        score_divergence(tiny, demo_trained, [[1]], [[5]], method="two_pass")


def test_aggregate_suite_counts_prompts_whose_top_holds_a_token():
    def prompt(prompt_id, tokens):
        ids = tuple(token_id for token_id, _ in tokens)
        kls = tuple(kl for _, kl in tokens)
        texts = tuple(f"t{token_id}" for token_id in ids)
        ranked = sorted(range(len(ids)), key=lambda i: -kls[i])[:2]
        top = tuple(TokenDivergence(i, ids[i], texts[i], kls[i], -1.0, -0.5) for i in ranked)
        zeros = tuple(0.0 for _ in ids)
        return PromptDivergence(prompt_id, ids, texts, kls, zeros, zeros, zeros, sum(kls) / len(kls), top, 0.0)

    prompts = [
        prompt("a", [(7, 3.0), (8, 2.0), (9, 0.1)]),
        prompt("b", [(7, 1.0), (9, 5.0), (8, 0.2), (7, 4.0)]),
        prompt("c", [(8, 0.5), (9, 0.4), (10, 0.1)]),
        prompt("d", [(8, 1.0)]),
    ]
    suite = aggregate_suite(prompts)
    # 8 is in three prompts' tops; 7 and 9 in two each, 7 first by mean KL (8/3 against 5.5/3).
    assert [(s.token_id, s.n_prompts_in_top) for s in suite] == [(8, 3), (7, 2), (9, 2)]
    token_7 = suite[1]
    assert token_7.n_occurrences == 3 and token_7.mean_kl == pytest.approx(8.0 / 3) and token_7.max_kl == 4.0
    assert token_7.token == "t7"
    assert TokenDivergence(0, 7, "t7", 1.0, -2.0, -0.5).logprob_shift == 1.5
