"""Token-level divergence: teacher-force both models on the same (prompt + trained output).

Contract: ``score_divergence(base, trained, prompt_token_ids, output_token_ids, *,
prompt_ids=None, …) -> DivergenceScores``. For every output position i (the
token the trained model generated at step i, EOS included) it returns:

- ``kl_per_token[i]`` = KL(trained ‖ base) = Σ_v p_t(v) (log p_t(v) − log p_b(v))
  over the FULL vocabulary, both distributions the log-softmax of the models' raw
  fp32 logits when fed prompt + output[:i] (teacher forcing, no sampling);
- ``logprob_base[i]`` / ``logprob_trained[i]``: the log-prob of the chosen token
  under each model, and ``logprob_shift[i]`` = trained − base;
- per prompt the ``top_tokens`` where KL is largest; ``aggregate_suite`` then finds
  the tokens that most often carry high divergence across a suite;
- ``top_token_differs[i]``: the two models' argmax next tokens differ (each from its
  own fp32 log-softmax, the base's taken before fp16 storage), and over all positions
  the statistics of llama.cpp's ``llama-perplexity --kl-divergence`` (``kl_summary``):
  mean, median, p99 KL and the share of positions whose top token differs.

How both distributions meet with one model in memory — ``method``:

- ``"adapter_toggle"`` (``base is trained``, a LoRA ``LoadedModel``): each batch
  runs the one loaded base with the adapter on, then inside ``adapter_disabled()``.
  Exact (fp32 arithmetic throughout).
- ``"two_pass"`` (two full models; the default): pass 1 runs the base and writes the
  log-softmax of every output position to a temporary memory-mapped fp16 file
  (positions × vocab × 2 bytes: 128 prompts × 64 tokens × 152 k vocab ≈ 2.5 GB on
  disk; the demo's is 0.3 MB), plus the chosen tokens' base log-probs in fp32
  (exact). The base is released (when it was given as a loader), then pass 2 runs the
  trained model and computes KL against the stored rows. fp16 rounding moves each
  stored log p_b by at most ``FP16_UNIT_ROUNDOFF`` × |log p_b|, so each KL is off by at
  most ≈ ``FP16_UNIT_ROUNDOFF`` × Σ_v p_t(v) |log p_b(v)| — that is 2⁻¹¹ × the cross-entropy
  H(p_t, p_b) (plus 2⁻²⁵ for subnormals; ``_storage_bound``); the bound is computed per
  token and reported (``kl_error_bound``: the largest over a prompt's tokens). On the demo
  pair (KL up to ~19 nats) it is ≤ 0.01 nats; between near-identical models it is ~1e-3.
  Log-probs below fp16's range (< −65504) are clamped there; they carry p_b < e⁻⁶⁵⁵⁰⁴.
- ``"direct"``: both models loaded at once, exact fp32 (tests, tiny models).

``base`` / ``trained`` may be a ``LoadedModel`` or a zero-argument loader returning
one; a model this function loaded itself is released before the next is loaded.

It leaves to others: generating the outputs (``generator``), storing the result.
Cost: one teacher-forced forward per prompt per model (two for the toggle), batched
with left padding; logits are computed only for output positions (``logits_to_keep``).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence

from afterburn_core.errors import BadInput
from afterburn_core.generation.loading import HeldModel
from afterburn_core.generation.results import (
    DivergenceScores,
    PromptDivergence,
    SuiteTokenDivergence,
    TokenDivergence,
)

#: fp16 unit roundoff (2⁻¹¹, half the gap between 1 and the next fp16): the relative error of
#: one stored log-prob in the two-pass method (IEEE 754 binary16, 10 explicit mantissa bits).
FP16_UNIT_ROUNDOFF = 2.0**-11
#: Half the gap between fp16 subnormals (2⁻²⁵): the absolute rounding error of tiny log-probs.
FP16_SUBNORMAL_HALF_GAP = 2.0**-25
#: Most negative finite fp16 value; stored log-probs are clamped to it.
FP16_MIN = -65504.0
#: Tokens kept per prompt as "where the models disagree most": a screenful in the prompt view.
TOP_N_TOKENS = 5
#: Prompts per teacher-forced forward pass unless told: the demo's outputs (≤ 80 tokens ×
#: 1 k vocab) need ~2 MB of logits per row; a 152 k vocab needs ~50 MB per row at 80 tokens.
DEFAULT_SCORING_BATCH_SIZE = 8

Method = str  # "adapter_toggle" | "two_pass" | "direct"


ModelSource = object  # LoadedModel | Callable[[], LoadedModel]


def output_logprobs(loaded, prompts: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]):
    """Log-softmax (fp32) predicting each output token: a list of [len(output), vocab] tensors.

    Left padding puts every sequence's end at the last column, so the last
    ``max(len(output)) + 1`` columns hold every row's output predictions.
    """
    import torch

    width = max(len(p) + len(o) for p, o in zip(prompts, outputs))
    keep = max(len(o) for o in outputs) + 1
    input_ids = torch.full((len(prompts), width), loaded.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, (prompt, output) in enumerate(zip(prompts, outputs)):
        sequence = list(prompt) + list(output)
        input_ids[row, width - len(sequence):] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, width - len(sequence):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = loaded.model(
            input_ids=input_ids.to(loaded.device),
            attention_mask=attention_mask.to(loaded.device),
            position_ids=position_ids.to(loaded.device),
            logits_to_keep=keep,
            use_cache=False,
        ).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    rows = []
    for row, output in enumerate(outputs):
        n = len(output)
        # column keep-1 predicts the token after the last one; output token j is predicted at keep-1-n+j
        rows.append(logprobs[row, keep - 1 - n : keep - 1].cpu())
    return rows


def _chosen(logprobs, token_ids) -> object:
    import torch

    return logprobs.gather(1, torch.tensor(list(token_ids), dtype=torch.long)[:, None]).squeeze(1)


def kl_per_row(trained_logprobs, base_logprobs):
    """KL(trained ‖ base) per row (rows are positions), fp32, floored at 0: rounding can make a
    true 0 come out as −1e-8, and a KL is never negative, so the floor only removes error."""
    import torch

    probabilities = trained_logprobs.exp()
    terms = torch.where(probabilities > 0, probabilities * (trained_logprobs - base_logprobs), 0.0)
    return terms.sum(-1).clamp(min=0.0)


def _storage_bound(trained_logprobs, stored_base_logprobs):
    """Per-position bound of |KL from fp16-stored base log-probs − KL from exact ones|.

    Round-to-nearest gives |s − l| ≤ u·|l| ≤ u/(1−u)·|s| for a normal fp16 s, and at most
    FP16_SUBNORMAL_HALF_GAP for a subnormal one; the KL moves by Σ p_t·|s − l|.
    """
    relative = FP16_UNIT_ROUNDOFF / (1 - FP16_UNIT_ROUNDOFF)
    return relative * (trained_logprobs.exp() * stored_base_logprobs.abs()).sum(-1) + FP16_SUBNORMAL_HALF_GAP


def _batches(total: int, batch_size: int):
    return [list(range(start, min(start + batch_size, total))) for start in range(0, total, batch_size)]


def _check_inputs(prompt_token_ids, output_token_ids, prompt_ids) -> list[str]:
    if len(prompt_token_ids) != len(output_token_ids):
        raise BadInput(
            f"score_divergence got {len(prompt_token_ids)} prompts but {len(output_token_ids)} outputs; "
            "pass one output per prompt."
        )
    if prompt_ids is None:
        return [str(index) for index in range(len(prompt_token_ids))]
    if len(prompt_ids) != len(prompt_token_ids):
        raise BadInput(f"score_divergence got {len(prompt_ids)} prompt_ids for {len(prompt_token_ids)} prompts.")
    return [str(value) for value in prompt_ids]


def _check_vocab(base, trained) -> None:
    if base.vocab_size != trained.vocab_size:
        raise BadInput(
            f"{base.checkpoint.reference} has {base.vocab_size} output tokens but {trained.checkpoint.reference} has "
            f"{trained.vocab_size}; token-level KL needs one vocabulary (resized vocabularies are not supported yet)."
        )


def score_divergence(
    base,
    trained,
    prompt_token_ids: Sequence[Sequence[int]],
    output_token_ids: Sequence[Sequence[int]],
    *,
    prompt_ids: Sequence[str] | None = None,
    method: Method | None = None,
    batch_size: int = DEFAULT_SCORING_BATCH_SIZE,
    top_n: int = TOP_N_TOKENS,
    scratch_dir: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> DivergenceScores:
    """Per-token KL(trained ‖ base) and chosen-token log-prob shifts (see the module docstring).

    ``prompt_token_ids[k]`` / ``output_token_ids[k]``: the rendered prompt's ids and the
    trained model's output ids (``Completion.prompt_token_ids`` / ``output_token_ids``).
    ``method`` None = ``"adapter_toggle"`` when ``base is trained``, else ``"two_pass"``.
    """
    import numpy as np
    import torch

    names = _check_inputs(prompt_token_ids, output_token_ids, prompt_ids)
    if batch_size < 1:
        raise BadInput(f"batch_size: {batch_size!r} must be ≥ 1.")
    method = method or ("adapter_toggle" if base is trained else "two_pass")
    if method == "adapter_toggle" and not (base is trained and getattr(trained, "is_adapter", False)):
        raise BadInput("method 'adapter_toggle' needs the same loaded LoRA adapter model as base and trained.")
    if method not in ("adapter_toggle", "two_pass", "direct"):
        raise BadInput(f"method: {method!r} is not one of adapter_toggle, two_pass, direct.")
    total = len(names)
    scored = [index for index in range(total) if len(output_token_ids[index]) > 0]
    kl = {index: torch.zeros(0) for index in range(total)}
    bound = {index: torch.zeros(0) for index in range(total)}
    lp_base = dict(kl)
    lp_trained = dict(kl)
    top_base = dict(kl)
    top_trained = dict(kl)
    batches = [[scored[i] for i in batch] for batch in _batches(len(scored), batch_size)]

    def report(done: int, steps: int, message: str) -> None:
        if progress is not None:
            progress(done, steps, message)

    def inputs(batch):
        return [prompt_token_ids[i] for i in batch], [output_token_ids[i] for i in batch]

    tokenizer = None
    if method in ("adapter_toggle", "direct"):
        with HeldModel(base) as base_model, HeldModel(trained) as trained_model:
            tokenizer = trained_model.tokenizer
            _check_vocab(base_model, trained_model)
            for batch in batches:
                trained_rows = output_logprobs(trained_model, *inputs(batch))
                if method == "adapter_toggle":
                    with trained_model.adapter_disabled():
                        base_rows = output_logprobs(trained_model, *inputs(batch))
                else:
                    base_rows = output_logprobs(base_model, *inputs(batch))
                for index, trained_lp, base_lp in zip(batch, trained_rows, base_rows):
                    kl[index] = kl_per_row(trained_lp, base_lp)
                    bound[index] = torch.zeros_like(kl[index])
                    lp_base[index] = _chosen(base_lp, output_token_ids[index])
                    lp_trained[index] = _chosen(trained_lp, output_token_ids[index])
                    top_base[index], top_trained[index] = base_lp.argmax(-1), trained_lp.argmax(-1)
                report(batch[-1] + 1, total, f"scored {batch[-1] + 1}/{total} prompts ({method})")
    else:
        offsets, cursor = {}, 0
        for index in scored:
            offsets[index] = cursor
            cursor += len(output_token_ids[index])
        with tempfile.TemporaryDirectory(prefix="afterburn-kl-", dir=scratch_dir) as folder:
            stored = None
            with HeldModel(base) as base_model:
                base_vocab = base_model.vocab_size
                base_reference = base_model.checkpoint.reference
                stored = np.lib.format.open_memmap(
                    f"{folder}/base_logprobs.npy", mode="w+", dtype=np.float16, shape=(max(cursor, 1), base_vocab)
                )
                for batch in batches:
                    for index, base_lp in zip(batch, output_logprobs(base_model, *inputs(batch))):
                        start = offsets[index]
                        stored[start : start + len(base_lp)] = base_lp.clamp(min=FP16_MIN).numpy().astype(np.float16)
                        lp_base[index] = _chosen(base_lp, output_token_ids[index])
                        top_base[index] = base_lp.argmax(-1)
                    report(batch[-1] + 1, 2 * total, f"scored {batch[-1] + 1}/{total} prompts with the base")
            stored.flush()
            with HeldModel(trained) as trained_model:
                tokenizer = trained_model.tokenizer
                if trained_model.vocab_size != base_vocab:
                    raise BadInput(
                        f"{base_reference} has {base_vocab} output tokens but {trained_model.checkpoint.reference} "
                        f"has {trained_model.vocab_size}; token-level KL needs one vocabulary "
                        "(resized vocabularies are not supported yet)."
                    )
                for batch in batches:
                    for index, trained_lp in zip(batch, output_logprobs(trained_model, *inputs(batch))):
                        start = offsets[index]
                        base_lp = torch.from_numpy(np.asarray(stored[start : start + len(trained_lp)], dtype=np.float32))
                        kl[index] = kl_per_row(trained_lp, base_lp)
                        bound[index] = _storage_bound(trained_lp, base_lp)
                        lp_trained[index] = _chosen(trained_lp, output_token_ids[index])
                        top_trained[index] = trained_lp.argmax(-1)
                    report(total + batch[-1] + 1, 2 * total, f"scored {batch[-1] + 1}/{total} prompts with the trained model")
            del stored
    prompts = tuple(
        _prompt_divergence(
            names[index], output_token_ids[index], kl[index], lp_base[index], lp_trained[index], bound[index],
            tokenizer, top_n, top_base[index] != top_trained[index],
        )
        for index in range(total)
    )
    return DivergenceScores(
        method=method, prompts=prompts, kl_error_bound=max((p.kl_error_bound for p in prompts), default=0.0),
        **kl_summary(prompts),
    )


def kl_summary(prompts: Sequence[PromptDivergence]) -> dict:
    """``llama-perplexity --kl-divergence``'s statistics over every output position of ``prompts``:
    ``n_positions``, ``mean_kl``, ``median_kl``, ``p99_kl`` (numpy's linear percentile) and
    ``top_token_disagreement``; the values are None when no position was scored."""
    import numpy as np

    values = np.array([value for prompt in prompts for value in prompt.kl_per_token], dtype=np.float64)
    differs = [flag for prompt in prompts for flag in prompt.top_token_differs]
    if not values.size:
        return {"n_positions": 0}
    return {
        "n_positions": int(values.size),
        "mean_kl": float(values.mean()),
        "median_kl": float(np.median(values)),
        "p99_kl": float(np.percentile(values, 99)),
        "top_token_disagreement": sum(differs) / len(differs) if differs else None,
    }


def _token_text(tokenizer, token_id: int) -> str:
    return tokenizer.decode([int(token_id)], skip_special_tokens=False) if tokenizer is not None else str(token_id)


def _prompt_divergence(prompt_id, token_ids, kl, lp_base, lp_trained, bound, tokenizer, top_n, differs) -> PromptDivergence:
    token_ids = tuple(int(token) for token in token_ids)
    tokens = tuple(_token_text(tokenizer, token) for token in token_ids)
    kl_values = tuple(float(value) for value in kl)
    base_values = tuple(float(value) for value in lp_base)
    trained_values = tuple(float(value) for value in lp_trained)
    ranked = sorted(range(len(kl_values)), key=lambda position: (-kl_values[position], position))[:top_n]
    top = tuple(
        TokenDivergence(position, token_ids[position], tokens[position], kl_values[position], base_values[position], trained_values[position])
        for position in ranked
    )
    return PromptDivergence(
        prompt_id=prompt_id,
        token_ids=token_ids,
        tokens=tokens,
        kl_per_token=kl_values,
        logprob_base=base_values,
        logprob_trained=trained_values,
        logprob_shift=tuple(t - b for t, b in zip(trained_values, base_values)),
        mean_kl=sum(kl_values) / len(kl_values) if kl_values else 0.0,
        top_tokens=top,
        kl_error_bound=float(bound.max()) if len(bound) else 0.0,
        top_token_differs=tuple(bool(flag) for flag in differs),
    )


def aggregate_suite(prompts: Sequence[PromptDivergence], *, limit: int = 20) -> tuple[SuiteTokenDivergence, ...]:
    """Tokens that most often carry high divergence: ranked by how many prompts have them
    in their ``top_tokens``, then by mean KL over all their occurrences."""
    in_top: dict[int, int] = defaultdict(int)
    kl_values: dict[int, list[float]] = defaultdict(list)
    text: dict[int, str] = {}
    for prompt in prompts:
        for token_id in {token.token_id for token in prompt.top_tokens}:
            in_top[token_id] += 1
        for token_id, token, value in zip(prompt.token_ids, prompt.tokens, prompt.kl_per_token):
            kl_values[token_id].append(value)
            text[token_id] = token
    ranked = sorted(in_top, key=lambda token_id: (-in_top[token_id], -sum(kl_values[token_id]) / len(kl_values[token_id]), token_id))
    return tuple(
        SuiteTokenDivergence(
            token_id=token_id,
            token=text[token_id],
            n_prompts_in_top=in_top[token_id],
            n_occurrences=len(kl_values[token_id]),
            mean_kl=sum(kl_values[token_id]) / len(kl_values[token_id]),
            max_kl=max(kl_values[token_id]),
        )
        for token_id in ranked[:limit]
    )
