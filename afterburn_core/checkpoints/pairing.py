"""Pair two checkpoints' tensors by normalized name: the ``inventory`` analysis.

Reads tensor headers only (no weights), so it costs one pass over the
safetensors headers of each side. It lists every tensor present on one side
only and every shape change, so later analyses can never drop one silently.
It does not compare values: that is ``afterburn_core.weights``.
"""

from __future__ import annotations

from afterburn_core.checkpoints import open_tensor_index, summarize
from afterburn_core.types import InventoryResult, ResolvedCheckpoint


def build_inventory(base: ResolvedCheckpoint, trained: ResolvedCheckpoint) -> InventoryResult:
    """Both checkpoints summarized, with their tensors paired by normalized name."""
    with open_tensor_index(base) as base_index, open_tensor_index(trained) as trained_index:
        base_entries = {entry.name: entry for entry in base_index.entries()}
        trained_entries = {entry.name: entry for entry in trained_index.entries()}
    shared = sorted(base_entries.keys() & trained_entries.keys())
    return InventoryResult(
        base=summarize(base),
        trained=summarize(trained),
        shared_tensors=len(shared),
        base_only=tuple(base_entries[name] for name in sorted(base_entries.keys() - trained_entries.keys())),
        trained_only=tuple(trained_entries[name] for name in sorted(trained_entries.keys() - base_entries.keys())),
        shape_changed=tuple(
            (base_entries[name], trained_entries[name])
            for name in shared
            if base_entries[name].shape != trained_entries[name].shape
        ),
        dtype_changed=sum(base_entries[name].dtype != trained_entries[name].dtype for name in shared),
    )

