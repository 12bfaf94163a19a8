"""Pair two checkpoints' tensors: the one tie-aware plan, and the ``inventory`` analysis built on it.

Contract: ``plan_pairs(base, trained, base_index, trained_index)`` lists
every record a comparison of the pair produces, as ``PlannedPair``s, in the
base's on-disk order then the trained side's extras. Tensors pair by
normalized name. A head missing from a side whose config ties it
(``description.tie_word_embeddings``; or does not say, and has an embedding)
is that side's embedding: both sides tied → one ``both_tied`` record; one
side tied → the head pairs with that side's embedding and ``tied_to`` says
so. The weight diff (``weights.engine``) and ``build_inventory`` both read
this plan, so the Checkpoints and Weights pages call every tensor the same
thing. Each record carries its normalized key (``name``, what pairs) and its
name as stored (``stored_name``: the trained file's, else the base's; and
``base_stored_name`` when the base spells it otherwise), the one a user
searches the files and peft's ``target_modules`` for.

``build_inventory(base, trained)`` summarizes both sides and lists the
tensors on one side only, the shape and dtype changes, and the tied heads.

It does not compare values (``afterburn_core.weights`` does). Head and
embedding tensors are recognised by ``naming.classify`` (names only).
Cost: one pass over the safetensors headers of each side; no weights read.
"""

from __future__ import annotations

import dataclasses

from afterburn_core.checkpoints.summary import summarize
from afterburn_core.checkpoints.tensors import TensorIndex, open_tensor_index
from afterburn_core.types import InventoryResult, PlannedPair, ResolvedCheckpoint, TensorEntry
from afterburn_core.checkpoints.naming import classify

#: The head's name when neither side stores one (a tied head); what transformers' Llama / Qwen use.
DEFAULT_HEAD_NAME = "lm_head.weight"


def token_embedding(entries: dict[str, TensorEntry]) -> str | None:
    """The input token embedding among ``entries``: the 2-D ``embed`` tensor with the most rows."""
    candidates = [
        entry for name, entry in entries.items()
        if classify(name)[1] == "embed" and len(entry.shape) == 2 and "pos" not in name and "wpe" not in name
    ]
    return max(candidates, key=lambda entry: entry.shape[0]).name if candidates else None


def plan_pairs(
    base: ResolvedCheckpoint, trained: ResolvedCheckpoint, base_index: TensorIndex, trained_index: TensorIndex
) -> tuple[PlannedPair, ...]:
    """Every record to produce (see the module docstring); ties come from each side's description."""
    base_tied, trained_tied = base.description.tie_word_embeddings, trained.description.tie_word_embeddings
    base_entries = {entry.name: entry for entry in base_index.entries()}
    trained_entries = {entry.name: entry for entry in trained_index.entries()}
    order = list(base_entries) + [name for name in trained_entries if name not in base_entries]
    heads = [name for name in order if classify(name)[1] == "head" and name.endswith("weight")]
    base_embed, trained_embed = token_embedding(base_entries), token_embedding(trained_entries)
    special: dict[str, PlannedPair] = {}
    tied_record: PlannedPair | None = None
    if not heads and base_embed and trained_embed and base_tied is not False and trained_tied is not False:
        tied_record = PlannedPair(DEFAULT_HEAD_NAME, None, None, tied_to=base_embed, both_tied=True)
    for head in heads:
        in_base, in_trained = head in base_entries, head in trained_entries
        if in_base and in_trained and base_tied is True and trained_tied is True:
            special[head] = PlannedPair(head, head, head, tied_to=base_embed, both_tied=True)
        elif in_base and not in_trained and trained_embed and trained_tied is not False:
            special[head] = PlannedPair(head, head, trained_embed, tied_to=trained_embed)
        elif in_trained and not in_base and base_embed and base_tied is not False:
            special[head] = PlannedPair(head, base_embed, head, tied_to=base_embed)
    plan = [
        special.get(name)
        or PlannedPair(name, name if name in base_entries else None, name if name in trained_entries else None)
        for name in order
    ]
    if tied_record is not None:
        plan.append(tied_record)
    return tuple(with_stored_names(pair, base_entries, trained_entries) for pair in plan)


def with_stored_names(
    pair: PlannedPair, base_entries: dict[str, TensorEntry], trained_entries: dict[str, TensorEntry]
) -> PlannedPair:
    """``pair`` with its names as stored: the trained file's, else the base's; the base's again if spelled otherwise."""
    base_entry, trained_entry = base_entries.get(pair.name), trained_entries.get(pair.name)
    holder = trained_entry if trained_entry is not None else base_entry
    stored = holder.stored_name if holder is not None else None
    base_stored = base_entry.stored_name if base_entry is not None else None
    return dataclasses.replace(pair, stored_name=stored,
                               base_stored_name=base_stored if base_stored != stored else None)


def build_inventory(base: ResolvedCheckpoint, trained: ResolvedCheckpoint) -> InventoryResult:
    """Both checkpoints summarized, with their tensors paired by the plan."""
    with open_tensor_index(base) as base_index, open_tensor_index(trained) as trained_index:
        base_entries = {entry.name: entry for entry in base_index.entries()}
        trained_entries = {entry.name: entry for entry in trained_index.entries()}
        plan = plan_pairs(base, trained, base_index, trained_index)
    shared = sorted(base_entries.keys() & trained_entries.keys())
    base_only = sorted(pair.base_name for pair in plan if pair.base_name is not None and pair.trained_name is None)
    trained_only = sorted(
        pair.trained_name for pair in plan if pair.trained_name is not None and pair.base_name is None
    )
    return InventoryResult(
        base=summarize(base),
        trained=summarize(trained),
        shared_tensors=len(shared),
        base_only=tuple(base_entries[name] for name in base_only),
        trained_only=tuple(trained_entries[name] for name in trained_only),
        shape_changed=tuple(
            (base_entries[name], trained_entries[name])
            for name in shared
            if base_entries[name].shape != trained_entries[name].shape
        ),
        dtype_changed=sum(base_entries[name].dtype != trained_entries[name].dtype for name in shared),
        tied=tuple(pair for pair in plan if pair.tied_to is not None),
    )
