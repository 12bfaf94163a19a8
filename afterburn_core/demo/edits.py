"""Surgical weight edits planted in the ``trained`` demo model, and their record.

Owns: the three edits a weight diff must find, applied in place AFTER the
planted-behaviour fine-tune so they stay exactly visible in the saved weights:

1. a rank-``EDIT_RANK`` update ``U diag(s) V^T`` of one attention projection
   (``EDITED_PROJECTION``). ``V`` spans the directions in which that
   projection's inputs vary least (smallest eigenvectors of their second
   moment on corpus prompts), so the model barely reads them and behaviour
   survives; ``U`` is a seeded random orthonormal basis. Its Frobenius norm is
   ``EDIT_TO_FINETUNE_RATIO`` times the fine-tune's own change of that tensor,
   so the low-rank part dominates that tensor's diff.
2. one RMSNorm weight (``RESCALED_NORM``) multiplied by ``NORM_SCALE``;
3. ``MOVED_ROW_COUNT`` embedding rows shifted by ``ROW_SHIFT_FACTOR`` times
   the median row norm. The rows are tokens the tokenizer never emits on the
   corpus (intermediate BPE merges), so no behaviour depends on them.

Does not train (``training``) or measure (``measure``). Cost: one forward pass
over ``ACTIVATION_PROMPTS`` prompts and a 128 x 128 eigendecomposition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from afterburn_core.demo.corpus import Example
from afterburn_core.demo.tokenizer import encode_example

EDITED_PROJECTION = "model.layers.1.self_attn.q_proj.weight"
EDIT_RANK = 3
EDIT_SINGULAR_PROFILE = (1.0, 0.7, 0.5)  # relative singular values of the edit: a visible, ordered spectrum
# 4x the fine-tune's own Frobenius change puts >= ~90 % of that tensor's diff
# energy in the top-3 singular values (the diffuse part spreads over 128).
EDIT_TO_FINETUNE_RATIO = 4.0
RESCALED_NORM = "model.layers.2.post_attention_layernorm.weight"
NORM_SCALE = 1.25
EMBEDDING = "model.embed_tokens.weight"
MOVED_ROW_COUNT = 8
# The planted fine-tune moves a used row by ~40 % of the median row norm (measured on
# this build: median drift 0.098, median norm 0.24); 6x the median norm is >10x that drift.
ROW_SHIFT_FACTOR = 6.0
ACTIVATION_PROMPTS = 256  # prompts whose layer inputs define the "least read" directions


@dataclass(frozen=True)
class PlantedEdits:
    """What was edited, exactly enough for a test or a reader to find it again."""

    projection: str
    projection_rank: int
    projection_edit_norm: float  # Frobenius norm of U diag(s) V^T
    projection_finetune_norm: float  # Frobenius norm of the fine-tune's change, before the edit
    norm_tensor: str
    norm_scale: float
    embedding: str
    moved_token_ids: tuple[int, ...]
    moved_tokens: tuple[str, ...]
    row_shift_norm: float


def rarely_used_token_ids(
    tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], count: int
) -> list[int]:
    """``count`` readable tokens (2+ visible characters) emitted least on ``texts``.

    Intermediate BPE merges that only live inside longer tokens come first
    (they are never emitted); ties break on the token id, so the choice is stable.
    """
    emitted: Counter[int] = Counter()
    for text in texts:
        emitted.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    special = set(tokenizer.all_special_ids)
    candidates = [
        token_id for token_id in range(len(tokenizer))
        if token_id not in special and len(tokenizer.decode([token_id]).strip()) >= 2
    ]
    return sorted(candidates, key=lambda token_id: (emitted[token_id], token_id))[:count]


def _least_used_input_directions(
    model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, examples: list[Example], rank: int
) -> torch.Tensor:
    """``(hidden, rank)`` orthonormal: smallest eigenvectors of the projection's input second moment."""
    module = model.get_submodule(EDITED_PROJECTION.removesuffix(".weight"))
    captured: list[torch.Tensor] = []
    hook = module.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            for example in examples:
                ids, _ = encode_example(tokenizer, example)
                model(input_ids=torch.tensor([ids]))
    finally:
        hook.remove()
    inputs = torch.cat([x.reshape(-1, x.shape[-1]) for x in captured]).double()
    second_moment = inputs.T @ inputs / inputs.shape[0]
    _, eigenvectors = torch.linalg.eigh(second_moment)  # ascending eigenvalues
    return eigenvectors[:, :rank].float()


def apply_surgical_edits(
    trained: LlamaForCausalLM,
    base: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    activation_examples: list[Example],
    token_texts: Iterable[str],
    seed: int,
) -> PlantedEdits:
    """Apply the three edits to ``trained`` in place (after its fine-tune); return the record."""
    generator = torch.Generator().manual_seed(seed)
    params = dict(trained.named_parameters())
    base_params = dict(base.named_parameters())

    weight = params[EDITED_PROJECTION]
    finetune_norm = float((weight.detach() - base_params[EDITED_PROJECTION].detach()).norm())
    in_directions = _least_used_input_directions(
        trained, tokenizer, activation_examples[:ACTIVATION_PROMPTS], EDIT_RANK
    )
    out_directions, _ = torch.linalg.qr(torch.randn(weight.shape[0], EDIT_RANK, generator=generator))
    profile = torch.tensor(EDIT_SINGULAR_PROFILE[:EDIT_RANK])
    singular_values = profile / profile.norm() * EDIT_TO_FINETUNE_RATIO * finetune_norm
    edit = out_directions @ torch.diag(singular_values) @ in_directions.T

    embedding = params[EMBEDDING]
    moved_ids = rarely_used_token_ids(tokenizer, token_texts, MOVED_ROW_COUNT)
    row_shift_norm = ROW_SHIFT_FACTOR * float(embedding.norm(dim=1).median())
    shifts = torch.randn(len(moved_ids), embedding.shape[1], generator=generator)
    shifts = shifts / shifts.norm(dim=1, keepdim=True) * row_shift_norm

    with torch.no_grad():
        weight.add_(edit)
        params[RESCALED_NORM].mul_(NORM_SCALE)
        embedding[torch.tensor(moved_ids)] += shifts

    return PlantedEdits(
        projection=EDITED_PROJECTION,
        projection_rank=EDIT_RANK,
        projection_edit_norm=float(edit.norm()),
        projection_finetune_norm=finetune_norm,
        norm_tensor=RESCALED_NORM,
        norm_scale=NORM_SCALE,
        embedding=EMBEDDING,
        moved_token_ids=tuple(moved_ids),
        moved_tokens=tuple(tokenizer.convert_ids_to_tokens(moved_ids)),
        row_shift_norm=row_shift_norm,
    )
