"""Batched generation: prompts in, one ``Completion`` per prompt out, for one loaded model.

Contract: ``generate(loaded, prompts, settings, progress=None) -> list[Completion]``
in the order of ``prompts``. It runs transformers' ``model.generate`` (the
existing engine, not a home-made decoder) on batches of prompts, sorted by
token length so a batch pads little, with LEFT padding and attention masks,
``pad_token_id`` set (the tokenizer's pad, else EOS), and stops each row on any
of ``loaded.eos_token_ids``. One model is in memory; for a LoRA pair the caller
runs it twice, once inside ``loaded.adapter_disabled()``.

What each ``Completion`` holds and how it is counted:

- prompts are rendered by ``render_prompts``: the tokenizer's chat template
  (one user turn, ``add_generation_prompt=True``) when it has one, rendered as
  untrusted code under time / size / memory limits by ``chat_template`` (all of
  a call's prompts in one child process), else the plain fallback
  ``PLAIN_PROMPT_TEMPLATE`` ("User: {text}\\nAssistant:");
- ``output_token_ids`` are the generated tokens up to AND INCLUDING the first
  EOS (stop_reason "eos"), or all ``max_new_tokens`` of them (stop_reason
  "length"); never padding, never anything after EOS. ``n_tokens`` is their
  count, so an empty answer (EOS first) has ``n_tokens == 1``;
- ``text`` is the decode of those tokens with special tokens (EOS) skipped;
- ``token_logprobs[i]`` is the log-softmax of the model's RAW logits (fp32, before
  temperature / top-p) at the chosen token: the model's own probability of what
  it said, comparable between greedy and sampled runs and equal to what teacher
  forcing the same text gives;
- ``seconds`` is the batch's wall time divided equally among its rows (rows of
  a batch are computed together; their share is what they cost).

Greedy (``temperature == 0``) is the default and is batch-invariant: a test
checks batched and one-by-one outputs are equal token for token. With
``temperature > 0`` sampling is seeded per batch (``seed + batch index``) in a
forked RNG, so a run is reproducible for the same prompts, settings and batch
size and the global torch RNG is left untouched.

Cost: one forward pass per prompt token batch-wise (prefill) plus one per
generated step, per batch; memory: the model plus a KV cache per row (see
``auto_batch_size``) and two vocab-sized fp32 rows per batch row for log-probs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from afterburn_core.device import free_memory_bytes
from afterburn_core.errors import ConfigError
from afterburn_core.generation.chat_template import render_chat_template
from afterburn_core.generation.types import Completion, Prompt

#: Plain prompt format for a tokenizer without a chat template (base models). The
#: "User:/Assistant:" convention is what the Anthropic HH and many base-model evals use;
#: it gives a base model a clear place to start answering.
PLAIN_PROMPT_TEMPLATE = "User: {text}\nAssistant:"

#: Upper bound of the automatic batch size: past ~64 rows a batch no longer speeds up a
#: GPU decode step of a small model much, and padding waste grows (measured nowhere
#: heavier than the demo; a guard, not a tuned value). Setting batch_size overrides it.
MAX_AUTO_BATCH_SIZE = 64
#: Share of free memory the automatic batch size may plan to use: the estimate below
#: ignores allocator fragmentation and the attention's temporary buffers, so plan for half.
AUTO_BATCH_MEMORY_SHARE = 0.5
#: Activation bytes per token per hidden unit kept alive in one layer's forward
#: (q, k, v, attention output, 2-3 MLP intermediates ≈ 4×hidden each): a rough upper estimate.
ACTIVATION_FACTOR = 16

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate; the defaults are greedy decoding of at most 256 new tokens."""

    #: Generated tokens per prompt at most (EOS included); a row stopped by it has stop_reason "length".
    max_new_tokens: int = 256
    #: 0 = greedy (argmax); > 0 samples from softmax(logits / temperature).
    temperature: float = 0.0
    #: Nucleus sampling mass (only with temperature > 0); 1.0 = the full distribution.
    top_p: float = 1.0
    #: Seed of sampling (only with temperature > 0); each batch uses seed + its index.
    seed: int = 0
    #: Prompts per forward pass; 0 = chosen from free memory by ``auto_batch_size``.
    batch_size: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens: {self.max_new_tokens!r} must be a whole number ≥ 1.")
        if not (isinstance(self.temperature, (int, float)) and 0 <= self.temperature and math.isfinite(self.temperature)):
            raise ConfigError(f"temperature: {self.temperature!r} must be ≥ 0 (0 = greedy).")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ConfigError(f"top_p: {self.top_p!r} must be in (0, 1].")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed: {self.seed!r} must be a whole number.")
        if not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ConfigError(f"batch_size: {self.batch_size!r} must be ≥ 1, or 0 to choose it from free memory.")

    @property
    def greedy(self) -> bool:
        """True when decoding takes the argmax (temperature 0)."""
        return self.temperature == 0


def has_chat_template(tokenizer) -> bool:
    """Whether ``render_prompts`` will use the tokenizer's chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompts(tokenizer, texts: Sequence[str], *, checkpoint: str) -> list[str]:
    """The prompt strings a model sees: its chat template with one user turn each, or the plain fallback.

    ``checkpoint`` is the reference a template error names (``BadCheckpoint``, see ``chat_template``).
    """
    if has_chat_template(tokenizer):
        return render_chat_template(tokenizer, texts, checkpoint=checkpoint)
    return [PLAIN_PROMPT_TEMPLATE.format(text=text) for text in texts]


def encode_prompts(tokenizer, texts: Sequence[str], *, checkpoint: str) -> list[list[int]]:
    """Token ids of the rendered prompts. A chat template writes its own BOS, so special
    tokens are only added by the tokenizer for the plain fallback."""
    add_special_tokens = not has_chat_template(tokenizer)
    return [
        list(tokenizer(rendered, add_special_tokens=add_special_tokens)["input_ids"])
        for rendered in render_prompts(tokenizer, texts, checkpoint=checkpoint)
    ]


def _available_bytes(device) -> int:
    available = free_memory_bytes(device)
    return available if available is not None else 4 << 30  # unknown platform: plan for 4 GiB


def auto_batch_size(model_config, sequence_length: int, device, *, dtype_bytes: int = 4, available_bytes: int | None = None) -> int:
    """Rows per batch that fit ``AUTO_BATCH_MEMORY_SHARE`` of free memory, in [1, MAX_AUTO_BATCH_SIZE].

    Per row it counts, for ``sequence_length`` (prompt + max_new_tokens) tokens:
    the KV cache (2 × layers × kv_heads × head_dim × tokens × dtype bytes), one
    layer's activations (ACTIVATION_FACTOR × hidden × tokens × dtype bytes) and
    the vocab-sized fp32 rows of the last logits and their log-softmax (4 × vocab × 4 bytes).
    Free memory is ``torch.cuda.mem_get_info`` on CUDA, else ``limits.available_memory_bytes``
    (MemAvailable) (the loaded model is already resident, so it is not counted again).
    """
    config = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    hidden = int(getattr(config, "hidden_size", 1024))
    layers = int(getattr(config, "num_hidden_layers", 24))
    heads = int(getattr(config, "num_attention_heads", 16))
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or hidden // max(heads, 1))
    vocab = int(getattr(config, "vocab_size", 32000))
    tokens = max(int(sequence_length), 1)
    per_row = (
        2 * layers * kv_heads * head_dim * tokens * dtype_bytes
        + ACTIVATION_FACTOR * hidden * tokens * dtype_bytes
        + 4 * vocab * 4
    )
    available = _available_bytes(device) if available_bytes is None else available_bytes
    return max(1, min(MAX_AUTO_BATCH_SIZE, int(AUTO_BATCH_MEMORY_SHARE * available // per_row)))


class _ChosenTokenLogprobs:
    """A logits processor placed first in the list, so it sees the raw fp32 logits.

    At step k it gathers, from step k-1's log-softmax, the log-prob of the token
    just appended to ``input_ids``; only one vocab-sized row per batch row is kept.
    ``finish(sequences)`` gathers the last step's. It returns the scores unchanged.
    """

    def __init__(self) -> None:
        self.previous = None
        self.chosen: list = []

    def __call__(self, input_ids, scores):
        import torch

        if self.previous is not None:
            self.chosen.append(self.previous.gather(1, input_ids[:, -1:]).squeeze(1))
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, sequences, n_generated: int):
        import torch

        if self.previous is not None and len(self.chosen) < n_generated:
            self.chosen.append(self.previous.gather(1, sequences[:, -1:]).squeeze(1))
        self.previous = None
        if not self.chosen:
            return torch.zeros((sequences.shape[0], 0))
        return torch.stack(self.chosen[:n_generated], dim=1).cpu()


def _neutral_generation_config(loaded, settings: GenerationSettings):
    from transformers import GenerationConfig

    sampling = {}
    if not settings.greedy:
        sampling = {"temperature": float(settings.temperature), "top_p": float(settings.top_p), "top_k": 0}
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=not settings.greedy,
        eos_token_id=list(loaded.eos_token_ids),
        pad_token_id=loaded.pad_token_id,
        bos_token_id=getattr(loaded.tokenizer, "bos_token_id", None),
        return_dict_in_generate=True,
        **sampling,
    )


def _generate_batch(loaded, batch_ids: Sequence[Sequence[int]], settings: GenerationSettings, batch_index: int):
    """(sequences of new tokens [rows × steps], chosen log-probs [rows × steps]) for one batch."""
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    width = max(len(ids) for ids in batch_ids)
    input_ids = torch.full((len(batch_ids), width), loaded.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for row, ids in enumerate(batch_ids):  # left padding: every prompt ends at the last column
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids):] = 1
    recorder = _ChosenTokenLogprobs()
    model = loaded.model
    # The checkpoint's generation_config.json may ask for sampling, top-k or repetition
    # penalties, and generate() fills every unset field from it: swap in a neutral one so
    # GenerationSettings alone decide (see loading.py's docstring).
    saved_config = model.generation_config
    model.generation_config = GenerationConfig(eos_token_id=list(loaded.eos_token_ids), pad_token_id=loaded.pad_token_id)
    devices = [loaded.device] if loaded.device.type == "cuda" else []
    try:
        with torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(settings.seed + batch_index)
            output = model.generate(
                input_ids=input_ids.to(loaded.device),
                attention_mask=attention_mask.to(loaded.device),
                generation_config=_neutral_generation_config(loaded, settings),
                logits_processor=LogitsProcessorList([recorder]),
            )
    finally:
        model.generation_config = saved_config
    new_tokens = output.sequences[:, width:].cpu()
    return new_tokens, recorder.finish(output.sequences, new_tokens.shape[1])


def completion_from_tokens(loaded, prompt_ids, new_tokens, logprobs, seconds: float) -> Completion:
    """One row's ``Completion``: its new tokens cut after the first EOS, their log-probs, its share of time."""
    eos = set(loaded.eos_token_ids)
    tokens = [int(token) for token in new_tokens]
    end = next((index + 1 for index, token in enumerate(tokens) if token in eos), None)
    stop_reason = "eos" if end is not None else "length"
    output_ids = tuple(tokens[:end] if end is not None else tokens)
    return Completion(
        text=loaded.tokenizer.decode(list(output_ids), skip_special_tokens=True),
        prompt_token_ids=tuple(int(token) for token in prompt_ids),
        output_token_ids=output_ids,
        n_tokens=len(output_ids),
        stop_reason=stop_reason,
        token_logprobs=tuple(float(value) for value in logprobs[: len(output_ids)]),
        seconds=seconds,
    )


def generate(loaded, prompts: Sequence[Prompt], settings: GenerationSettings | None = None, progress: ProgressFn | None = None) -> list[Completion]:
    """One ``Completion`` per prompt, in input order (see the module docstring for every field)."""
    settings = settings or GenerationSettings()
    tokenizer = loaded.tokenizer
    encoded = encode_prompts(tokenizer, [prompt.text for prompt in prompts], checkpoint=loaded.checkpoint.reference)
    total = len(prompts)
    if total == 0:
        return []
    longest = max(len(ids) for ids in encoded)
    batch_size = settings.batch_size or auto_batch_size(
        loaded.model.config, longest + settings.max_new_tokens, loaded.device,
        dtype_bytes=loaded.model.dtype.itemsize if hasattr(loaded.model.dtype, "itemsize") else 4,
    )
    # Shortest first, stable: a batch holds prompts of similar length, so little padding.
    order = sorted(range(total), key=lambda index: (len(encoded[index]), index))
    completions: list[Completion | None] = [None] * total
    saved_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # the rows are padded on the left here; keep the tokenizer consistent
    try:
        for batch_index, start in enumerate(range(0, total, batch_size)):
            rows = order[start : start + batch_size]
            started = time.perf_counter()
            new_tokens, logprobs = _generate_batch(loaded, [encoded[index] for index in rows], settings, batch_index)
            share = (time.perf_counter() - started) / len(rows)
            for position, index in enumerate(rows):
                completions[index] = completion_from_tokens(loaded, encoded[index], new_tokens[position], logprobs[position], share)
            if progress is not None:
                done = min(start + batch_size, total)
                progress(done, total, f"generated {done}/{total} prompts with {loaded.checkpoint.reference}")
    finally:
        tokenizer.padding_side = saved_side
    return list(completions)

