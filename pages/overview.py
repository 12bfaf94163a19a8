"""Checkpoints: what the selected run compared, drawn from ``afterburn_core.views.inventory``.

Both checkpoints side by side (reference, kind, architecture, sizes,
fingerprints), how many tensors pair up, and every tensor that exists on one
side only or changes shape. The rows, counts and tables are the view's;
everything a checkpoint wrote (names, architectures, paths) is shown as
plain text through ``st.dataframe`` or escaped markdown. Nothing is
computed here.
"""

from __future__ import annotations

import streamlit as st

from afterburn_core.types import InventoryResult
from afterburn_core.views.inventory import inventory_view
from pages.common import escape_markdown, reading, require_app_frame, selected_result

require_app_frame()
st.title("Checkpoints")

record, inventory = selected_result(InventoryResult)
view = inventory_view(inventory)
reading(view.verdict)
st.dataframe(
    {"": list(view.labels), "Base": list(view.base), "Post-trained": list(view.trained)},
    hide_index=True,
    width="stretch",
    height="content",
)
for column, (label, value) in zip(st.columns(len(view.counts)), view.counts):
    column.metric(label, value)
for tensors in view.lists:
    st.markdown(f"**{escape_markdown(tensors.title)}** ({tensors.count})")
    if tensors.count:
        st.dataframe(tensors.table, hide_index=True, width="stretch")
    else:
        st.caption(escape_markdown(tensors.empty))
