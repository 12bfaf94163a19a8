"""Checkpoints: what the selected run compared, read from its stored ``InventoryResult``.

Both checkpoints side by side (reference, kind, architecture, sizes,
fingerprints), how many tensors pair up, and every tensor that exists on one
side only or changes shape. Everything a checkpoint wrote (names,
architectures, paths) is shown as plain text through ``st.dataframe`` or
escaped markdown. Nothing is computed here.
"""

from __future__ import annotations

import streamlit as st

from afterburn_core.types import CheckpointSummary, InventoryResult, TensorEntry
from pages.common import (
    SHORT_FINGERPRINT_LENGTH,
    format_bytes,
    format_count,
    format_shape,
    require_app_frame,
    selected_result,
)

_KIND_NAMES = {
    "local_dir": "local folder",
    "safetensors_file": "safetensors file",
    "pickle_file": "pickle checkpoint (.bin)",
    "hub": "hub model",
    "adapter": "LoRA adapter",
}


def _dtypes(summary: CheckpointSummary) -> str:
    parts = sorted(summary.parameters_by_dtype.items(), key=lambda item: -item[1])
    return ", ".join(f"{dtype} {format_count(count)}" for dtype, count in parts) or "—"


def _summary_rows(summary: CheckpointSummary) -> dict[str, str]:
    checkpoint = summary.checkpoint
    return {
        "Reference": checkpoint.reference,
        "Kind": _KIND_NAMES.get(checkpoint.kind, checkpoint.kind),
        "Architecture": summary.architecture or "—",
        "Model type": summary.model_type or "—",
        "Layers": format_count(summary.num_layers),
        "Hidden size": format_count(summary.hidden_size),
        "Vocab size": format_count(summary.vocab_size),
        "Tensors": format_count(summary.num_tensors),
        "Parameters": format_count(summary.num_parameters),
        "Dtypes (parameters)": _dtypes(summary),
        "Size on disk": format_bytes(summary.size_bytes),
        "Weight files": f"{len(checkpoint.weight_files)} × {checkpoint.weight_format}",
        "Fingerprint": checkpoint.fingerprint[:SHORT_FINGERPRINT_LENGTH],
        "Revision": checkpoint.revision or "—",
        "Adapter base": checkpoint.adapter_base.reference if checkpoint.adapter_base is not None else "—",
        "Location": checkpoint.root,
    }


def _entries_table(entries: tuple[TensorEntry, ...]) -> dict[str, list[str]]:
    return {
        "Tensor": [entry.name for entry in entries],
        "Shape": [format_shape(entry.shape) for entry in entries],
        "Dtype": [entry.dtype for entry in entries],
    }


def _tensor_list(title: str, count: int, table: dict[str, list[str]], empty: str) -> None:
    st.markdown(f"**{title}** ({count})")
    if count:
        st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.caption(empty)


require_app_frame()
st.title("Checkpoints")

record, inventory = selected_result(
    InventoryResult, "This run has no stored checkpoint inventory. Launch it again from the New run page."
)

base_rows = _summary_rows(inventory.base)
trained_rows = _summary_rows(inventory.trained)
st.dataframe(
    {"": list(base_rows), "Base": list(base_rows.values()), "Post-trained": list(trained_rows.values())},
    hide_index=True,
    width="stretch",
    height="content",
)

shared_column, base_only_column, trained_only_column, reshaped_column, dtype_column = st.columns(5)
shared_column.metric("Shared tensors", format_count(inventory.shared_tensors))
base_only_column.metric("Base only", format_count(len(inventory.base_only)))
trained_only_column.metric("Post-trained only", format_count(len(inventory.trained_only)))
reshaped_column.metric("Reshaped", format_count(len(inventory.shape_changed)))
dtype_column.metric("Dtype changed", format_count(inventory.dtype_changed))

_tensor_list(
    "Only in the base",
    len(inventory.base_only),
    _entries_table(inventory.base_only),
    "Every base tensor has a partner in the post-trained checkpoint.",
)
_tensor_list(
    "Only in the post-trained checkpoint",
    len(inventory.trained_only),
    _entries_table(inventory.trained_only),
    "Every post-trained tensor has a partner in the base.",
)
_tensor_list(
    "Reshaped",
    len(inventory.shape_changed),
    {
        "Tensor": [base.name for base, _ in inventory.shape_changed],
        "Base shape": [format_shape(base.shape) for base, _ in inventory.shape_changed],
        "Post-trained shape": [format_shape(trained.shape) for _, trained in inventory.shape_changed],
        "Dtype (base → post-trained)": [f"{base.dtype} → {trained.dtype}" for base, trained in inventory.shape_changed],
    },
    "No shared tensor changes shape.",
)
