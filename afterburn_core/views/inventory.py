"""The checkpoint inventory as the doors show it: both checkpoints described row by row, the tensors that do not pair.

``inventory_view(inventory)`` turns a stored ``InventoryResult`` into a
frozen ``InventoryView``: the labelled rows that describe each checkpoint
(the same labels for both sides), the pairing counts, and the tables of
tensors on one side only or reshaped. Tensors are named as their files
store them (``TensorEntry.display_name``), the normalized pairing key
beside them. Words what the inventory stored; draws and escapes nothing.
Cost: linear in the unpaired tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.types import CheckpointSummary, InventoryResult, TensorEntry
from afterburn_core.views.wording import count, shape, size

#: How each checkpoint kind the resolver records (checkpoints/) is named.
KIND_NAMES = {
    "local_dir": "local folder",
    "safetensors_file": "safetensors file",
    "pickle_file": "pickle checkpoint (.bin)",
    "hub": "hub model",
    "adapter": "LoRA adapter",
}
#: Hex digits of a fingerprint shown: enough to tell checkpoints apart at a glance.
SHORT_FINGERPRINT_LENGTH = 12


@dataclass(frozen=True)
class TensorList:
    """A table of tensors with its title, count and the line shown when it is empty."""

    title: str
    count: int
    table: dict[str, list[str]]
    empty: str


@dataclass(frozen=True)
class InventoryView:
    """What the doors show of an inventory."""

    verdict: str
    labels: tuple[str, ...]
    base: tuple[str, ...]
    trained: tuple[str, ...]
    counts: tuple[tuple[str, str], ...]
    lists: tuple[TensorList, ...]


def dtypes(summary: CheckpointSummary) -> str:
    """``bfloat16 1,234, float32 56``: parameters per dtype, most first."""
    parts = sorted(summary.parameters_by_dtype.items(), key=lambda item: -item[1])
    return ", ".join(f"{dtype} {count(number)}" for dtype, number in parts) or "—"


def summary_rows(summary: CheckpointSummary) -> dict[str, str]:
    """One checkpoint as labelled values."""
    checkpoint = summary.checkpoint
    return {
        "Reference": checkpoint.reference,
        "Kind": KIND_NAMES.get(checkpoint.kind, checkpoint.kind),
        "Architecture": summary.architecture or "—",
        "Model type": summary.model_type or "—",
        "Layers": count(summary.num_layers),
        "Hidden size": count(summary.hidden_size),
        "Vocab size": count(summary.vocab_size),
        "Tensors": count(summary.num_tensors),
        "Parameters": count(summary.num_parameters),
        "Dtypes (parameters)": dtypes(summary),
        "Size on disk": size(summary.size_bytes),
        "Weight files": f"{len(checkpoint.weight_files)} × {checkpoint.weight_format}",
        "Fingerprint": checkpoint.fingerprint[:SHORT_FINGERPRINT_LENGTH],
        "Revision": checkpoint.revision or "—",
        "Adapter base": checkpoint.adapter_base.reference if checkpoint.adapter_base is not None else "—",
        "Location": checkpoint.root,
    }


def entries_table(entries: tuple[TensorEntry, ...]) -> dict[str, list[str]]:
    return {
        "Tensor": [entry.display_name for entry in entries],
        "Key": [entry.name for entry in entries],
        "Shape": [shape(entry.shape) for entry in entries],
        "Dtype": [entry.dtype for entry in entries],
    }


def reshaped_name(base: TensorEntry, trained: TensorEntry) -> str:
    """The stored name of a reshaped tensor; ``base name → post-trained name`` where the two files spell it apart."""
    if base.display_name == trained.display_name:
        return trained.display_name
    return f"{base.display_name} → {trained.display_name}"


#: What "the same architecture" compares, as (label, how one checkpoint reads it).
ARCHITECTURE_FIELDS = (
    ("architecture", lambda summary: summary.architecture),
    ("model type", lambda summary: summary.model_type),
    ("layers", lambda summary: summary.num_layers),
    ("hidden size", lambda summary: summary.hidden_size),
    ("vocab size", lambda summary: summary.vocab_size),
)


def _value(value) -> str:
    return count(value) if isinstance(value, int) else (value or "—")


def verdict(inventory: InventoryResult) -> str:
    """The one line a reader needs first: identical or not, the same architecture or what differs in it, and
    how the tensors pair up."""
    base, trained = inventory.base, inventory.trained
    if base.checkpoint.fingerprint == trained.checkpoint.fingerprint:
        return (f"The two checkpoints are identical (fingerprint {base.checkpoint.fingerprint[:SHORT_FINGERPRINT_LENGTH]}): "
                f"every analysis will read no change.")
    differing = [f"{label} {_value(read(base))} → {_value(read(trained))}"
                 for label, read in ARCHITECTURE_FIELDS if read(base) != read(trained)]
    if trained.checkpoint.kind == "adapter":
        shape = f"A LoRA adapter on {base.checkpoint.reference}"
    elif differing:
        shape = f"Architectures differ: {'; '.join(differing)}"
    else:
        shape = (f"Same architecture ({_value(base.architecture)}, {_value(base.num_layers)} layers, hidden "
                 f"{_value(base.hidden_size)}, vocab {_value(base.vocab_size)})")
    unpaired = [f"{count(number)} {what}" for number, what in (
        (len(inventory.base_only), "only in the base"), (len(inventory.trained_only), "only in the post-trained"),
        (len(inventory.shape_changed), "reshaped"), (inventory.dtype_changed, "with a new dtype")) if number]
    pairing = (f"{count(inventory.shared_tensors)} tensors pair up; " + ", ".join(unpaired) if unpaired
               else f"all {count(inventory.shared_tensors)} tensors pair up with the same shapes and dtypes")
    return f"{shape}; {pairing}."


def inventory_view(inventory: InventoryResult) -> InventoryView:
    """The inventory as the doors show it (the registry's view of the ``inventory`` kind)."""
    base, trained = summary_rows(inventory.base), summary_rows(inventory.trained)
    counts = (("Shared tensors", count(inventory.shared_tensors)), ("Base only", count(len(inventory.base_only))),
              ("Post-trained only", count(len(inventory.trained_only))),
              ("Reshaped", count(len(inventory.shape_changed))), ("Dtype changed", count(inventory.dtype_changed)))
    reshaped = inventory.shape_changed
    lists = (
        TensorList("Only in the base", len(inventory.base_only), entries_table(inventory.base_only),
                   "Every base tensor has a partner in the post-trained checkpoint."),
        TensorList("Only in the post-trained checkpoint", len(inventory.trained_only),
                   entries_table(inventory.trained_only), "Every post-trained tensor has a partner in the base."),
        TensorList("Reshaped", len(reshaped), {
            "Tensor": [reshaped_name(old, new) for old, new in reshaped],
            "Key": [old.name for old, _ in reshaped],
            "Base shape": [shape(old.shape) for old, _ in reshaped],
            "Post-trained shape": [shape(new.shape) for _, new in reshaped],
            "Dtype (base → post-trained)": [f"{old.dtype} → {new.dtype}" for old, new in reshaped],
        }, "No shared tensor changes shape."),
    )
    return InventoryView(verdict(inventory), tuple(base), tuple(base.values()), tuple(trained.values()), counts, lists)
