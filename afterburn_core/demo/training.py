"""Deterministic CPU training of the tiny demo models and of the LoRA adapter.

Owns: the model shape (``demo_config``), determinism settings, the training
loop (AdamW, warmup + cosine, loss on answer tokens only) and the LoRA
fine-tune. Examples come from ``corpus.example_stream``; every random choice is
seeded, so the same ``TrainSpec`` on the same machine gives the same bytes.
Does not edit weights by hand (``edits``) or measure anything (``measure``).
Cost: one forward + backward per step; ~0.1-0.2 s per step of 32 examples on
2 CPU cores for the ~1 M-parameter model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from afterburn_core.demo.corpus import Style, example_stream
from afterburn_core.demo.tokenizer import encode_example

# Two threads = the cores of the machine the shipped artefacts were built on.
# Float reductions depend on the thread count, so it is fixed, not "all cores".
NUM_THREADS = 2

# LoRA of the ``lora`` demo: the shape the brief and peft's docs use as default.
LORA_RANK = 8
LORA_ALPHA = 16
LORA_TARGETS = ("q_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TrainSpec:
    """One training run: how many steps on which corpus style, at what learning rate."""

    steps: int  # optimizer steps; 0 leaves the model as it is
    style: Style  # which answers the corpus teaches (see ``corpus``)
    seed: int  # seeds the example stream and torch
    learning_rate: float
    batch_size: int = 32
    warmup_steps: int = 20
    min_lr_fraction: float = 0.1  # cosine decays to this share of ``learning_rate``


def set_determinism(seed: int) -> None:
    """Seed torch and pin everything that could make two builds differ."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(NUM_THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process (it can only be set once); same value anyway


def demo_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """The tiny Llama: 4 layers, 128 wide, 4 heads over 2 kv heads, untied head."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,  # a separate lm_head, so head views have something to show
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def new_model(tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    """A freshly initialised demo model (fp32, eager attention, CPU)."""
    torch.manual_seed(seed)
    config = demo_config(tokenizer)
    config._attn_implementation = "eager"  # one code path everywhere, no kernel choice
    return LlamaForCausalLM(config)


def _collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ids (pad token) and labels (-100) to the longest example."""
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def _learning_rate(spec: TrainSpec, step: int) -> float:
    if step < spec.warmup_steps:
        return spec.learning_rate * (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return spec.learning_rate * (spec.min_lr_fraction + (1 - spec.min_lr_fraction) * cosine)


def train(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    spec: TrainSpec,
    log: Callable[[str], None] = print,
    label: str = "",
) -> list[float]:
    """Train ``model`` in place for ``spec.steps`` steps; returns the loss per step.

    Only parameters with ``requires_grad`` are optimised (for a peft model,
    the adapter). No weight decay: a token never seen keeps its embedding row
    exactly, which keeps the diffuse fine-tuning change honest.
    """
    set_determinism(spec.seed)
    stream = example_stream(spec.seed, spec.style)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=spec.learning_rate, weight_decay=0.0)
    model.train()
    losses: list[float] = []
    for step in range(spec.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(spec, step)
        batch = _collate([encode_example(tokenizer, next(stream)) for _ in range(spec.batch_size)],
                         tokenizer.pad_token_id)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == spec.steps - 1:
            log(f"  {label} step {step + 1}/{spec.steps} loss {losses[-1]:.3f}")
    model.eval()
    return losses


def lora_model(base: LlamaForCausalLM, seed: int) -> PeftModel:
    """Wrap a copy-free ``base`` in a fresh LoRA (``LORA_RANK`` on ``LORA_TARGETS``)."""
    torch.manual_seed(seed)
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_ALPHA,
        target_modules=list(LORA_TARGETS),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, config)
