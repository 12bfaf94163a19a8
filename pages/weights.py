"""Weights: where post-training changed the weights, drawn from ``afterburn_core.views.weights``.

Top to bottom: the diagnosis (profile, concentration, findings), tensors not
compared one to one, a LoRA view for an adapter, the layer × module heatmap
and the attention heads, the top changed tensors (searchable by the name
a file stores, or the normalized key; CSV download), the
singular-value spectrum of any tensor, norm shifts and embedding drift with
decoded tokens, and for a mixture-of-experts model each layer's experts
table. Each chart carries the view's one-line reading.

It computes nothing: the grids, rankings and readings are the view's
(``weights_view`` and ``weights_detail``); this page lays them out. Every
string a checkpoint or tokenizer wrote (tensor names, decoded tokens)
reaches the screen through ``st.dataframe``, chart labels or
``escape_markdown``; tokens are shown quoted with their invisible characters
spelled out (``wording.visible``).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from afterburn_core.views import weights_detail as detail
from afterburn_core.views.weights import (
    CELL_METRICS,
    COMBINED,
    Grid,
    WeightsView,
    display_names,
    find_tensors,
    tensor_records,
    tensor_table,
    weights_view,
)
from afterburn_core.views.wording import count
from afterburn_core.weights.types import EmbeddingDrift, TensorDiff, TokenDrift, WeightDiffResult
from pages.charts import bars, heatmap
from pages.common import escape_markdown, reading, require_app_frame, selected_result

#: Most bars in the norm and token charts; the tables below them hold every row.
CHART_ROWS = 20
FINDING_BOXES = {"warning": (st.warning, ":material/warning:"), "notable": (st.info, ":material/priority_high:")}


def grid_chart(grid: Grid, title: str) -> alt.LayerChart:
    frame = pd.DataFrame(grid.cells(), columns=[grid.row_title, grid.column_title, "value"])
    return heatmap(frame, x=grid.column_title, y=grid.row_title, x_order=list(grid.column_labels), y_order=list(grid.rows),
                   title=title, low_stands_out=grid.low_stands_out, number_format=grid.number_format)


def show_diagnosis(view: WeightsView) -> None:
    st.caption(escape_markdown(view.caption))
    badge_column, *metric_columns = st.columns([1.2, 1, 1, 1, 1])
    with badge_column:
        st.caption("Profile")
        st.badge(view.profile, color=view.profile_tone, icon=":material/biotech:")
    for column, metric in zip(metric_columns, view.metrics):
        column.metric(metric.label, metric.value, help=metric.help or None)
    for finding in view.findings:
        text = f"**{escape_markdown(finding.title)}** · {escape_markdown(finding.detail)}"
        box, icon = FINDING_BOXES.get(finding.severity, (None, None))
        if box is not None:
            box(text, icon=icon)
        else:
            st.markdown(f":material/info: {text}")
    if not view.findings:
        st.caption(escape_markdown(view.no_findings))


def show_unpaired(tensors: tuple[TensorDiff, ...]) -> None:
    view = detail.unpaired(tensors)
    if not view.tensors:
        st.caption("Every tensor pairs up one to one: none is on one side only, resized or tied.")
        return
    st.markdown(f"**Not compared one to one** ({escape_markdown(view.counts)})")
    st.dataframe(
        view.table,
        hide_index=True,
        width="stretch",
    )


def show_adapter(tensors: tuple[TensorDiff, ...]) -> None:
    st.subheader("LoRA adapter")
    view = detail.adapter(tensors)
    if not view.tensors:
        st.info(escape_markdown(view.reading))
        return
    reading(view.reading)
    st.dataframe(
        view.table,
        hide_index=True,
        width="stretch",
        column_config={"σ₁": st.column_config.NumberColumn(format="%.4g"),
                       "‖s·B·A‖": st.column_config.NumberColumn(format="%.4g"),
                       "Relative change": st.column_config.NumberColumn(format="%.4f")},
    )


def show_layer_heatmap(view: WeightsView) -> None:
    st.subheader("Layer × module")
    label = st.segmented_control("Metric", list(CELL_METRICS), default="Relative change", required=True,
                                 key="weights_cell_metric")
    grid = view.grids[label]
    if grid is None:
        st.caption(escape_markdown(view.no_cells[label]))
        return
    reading(grid.reading)
    st.altair_chart(grid_chart(grid, label), width="stretch", alt=grid.reading)


def show_heads(view: WeightsView) -> None:
    st.subheader("Attention heads")
    if not view.heads:
        st.caption(escape_markdown(view.heads_note))
        return
    projection = st.segmented_control("Projection", list(view.heads), default=COMBINED,
                                      required=True, key="weights_head_projection")
    grid = view.heads[projection]
    reading(grid.reading)
    st.altair_chart(grid_chart(grid, "Relative change"), width="stretch", alt=grid.reading)
    st.caption(escape_markdown(view.heads_note))


def show_top_tensors(result: WeightDiffResult, view: WeightsView) -> tuple[TensorDiff, ...]:
    """The compared tensors, most changed first (the spectrum picker reuses the order)."""
    st.subheader("Most changed tensors")
    ranked = view.ranked
    if not ranked.tensors:
        st.caption(escape_markdown(ranked.reading))
        return ()
    reading(ranked.reading)
    query = st.text_input("Find a tensor", key="weights_tensor_search", placeholder="model.layers.5.self_attn.q_proj",
                          help="Any part of a tensor's name as its checkpoint stores it, or of the normalized key "
                               "the two sides are paired by (without model. / base_model.model.).")
    found = find_tensors(ranked.tensors, query)
    if found.note:
        st.caption(escape_markdown(found.note))
    st.dataframe(
        pd.DataFrame(tensor_table(found.tensors)),
        hide_index=True,
        width="stretch",
        height=min(420, 38 + 35 * max(1, len(found.tensors))),
        column_config={
            "Relative change": st.column_config.NumberColumn(format="%.4f"),
            "‖ΔW‖": st.column_config.NumberColumn(format="%.4g"),
            "‖W‖ base": st.column_config.NumberColumn(format="%.4g"),
            "Cosine": st.column_config.NumberColumn(format="%.5f"),
            "Effective rank": st.column_config.NumberColumn(format="%.1f"),
            "Unchanged": st.column_config.NumberColumn(format="percent"),
        },
    )
    every_field = pd.DataFrame(tensor_records(result))
    st.download_button("Download every tensor (CSV)", every_field.to_csv(index=False).encode("utf-8"),
                       file_name="weight-diff-tensors.csv", mime="text/csv", icon=":material/download:",
                       key="weights_csv")
    st.caption("Sorted by relative change; click a column header to sort by it. Tensor: the name as the "
               "post-trained checkpoint stores it (the base's for a base-only tensor or an adapter); Key: the "
               "normalized name the sides are paired by. The CSV holds every tensor, paired or not, with all its "
               "fields.")
    return ranked.tensors


def show_spectrum(ordered: tuple[TensorDiff, ...]) -> None:
    st.subheader("Singular-value spectrum of ΔW")
    by_name = detail.spectrum_tensors(ordered)
    if not by_name:
        st.caption("No tensor has a spectrum (1-D tensors and unpaired ones have none).")
        return
    view = detail.spectrum(by_name[st.selectbox("Tensor", list(by_name), key="weights_spectrum_tensor",
                                                help="Tensors with a spectrum, most changed first; a stacked "
                                                     "expert tensor as one matrix per expert, name[e].")])
    reading(view.reading)
    if view.y_domain is None:  # every singular value is 0: nothing to draw on a log axis
        st.caption(escape_markdown(view.note))
        return
    points = pd.DataFrame({"i": range(1, len(view.values) + 1), "sigma": view.values,
                           "low": view.lower, "high": view.upper})
    x = alt.X("i:Q", title="index i", scale=alt.Scale(domain=[1, max(2, len(view.values))], nice=False))
    y_scale = alt.Scale(type="log", domain=list(view.y_domain), nice=False, clamp=True)
    band = alt.Chart(points).mark_area(opacity=0.25).encode(x=x, y=alt.Y("low:Q", scale=y_scale), y2="high:Q")
    chart = band + alt.Chart(points).mark_line(point=True).encode(
        x=x,
        y=alt.Y("sigma:Q", title="σᵢ (log scale)", scale=y_scale),
        tooltip=[alt.Tooltip("i:Q", title="i"), alt.Tooltip("sigma:Q", title="σᵢ", format=".4g"),
                 alt.Tooltip("low:Q", title="σᵢ − bound", format=".4g"),
                 alt.Tooltip("high:Q", title="σᵢ + bound", format=".4g")],
    )
    if view.markers:
        chart = chart + alt.Chart(pd.DataFrame(view.markers, columns=["marker", "at"])).mark_rule(
            strokeDash=[6, 4], size=2).encode(x="at:Q", color=alt.Color("marker:N", title=None,
                                                                        legend=alt.Legend(orient="top")))
    st.altair_chart(chart.properties(width="container", height=300), width="stretch", alt=view.reading)
    st.caption(escape_markdown(view.note))


def show_experts(result: WeightDiffResult) -> None:
    view = detail.experts(result.experts)
    if view is None:
        return
    st.subheader("Experts")
    reading(view.reading)
    labels = [f"layer {layer.layer}" for layer in view.layers]
    chosen = st.selectbox("MoE layer", labels, index=view.default, key="weights_moe_layer")
    layer = view.layers[labels.index(chosen)]
    reading(layer.reading)
    st.dataframe(
        layer.table,
        hide_index=True,
        width="stretch",
        column_config={"Relative change": st.column_config.NumberColumn(format="%.4g"),
                       "‖ΔW‖": st.column_config.NumberColumn(format="%.4g"),
                       "Share of layer": st.column_config.NumberColumn(format="percent")},
    )
    st.caption("Experts most changed first, the shared expert last; share: of the layer's routed-expert ‖ΔW‖². "
               "A stacked expert tensor's matrix is named name[e].")


#: Norm shifts shown whole (a 30-layer model's two norms per layer and its final one); a deeper model's table
#: scrolls inside this height instead of running the page long.
NORM_ROWS_IN_VIEW = 61
NORM_TABLE_HEIGHT_PX = 720


def show_norms(result: WeightDiffResult) -> None:
    st.subheader("Norm shifts")
    view = detail.norms(result.norms, result.tensors)
    if view is None:
        st.caption("No normalization weights were compared.")
        return
    reading(view.reading)
    if not view.shifts:
        return
    shown = view.shifts[:CHART_ROWS]
    frame = pd.DataFrame({"label": view.labels[:CHART_ROWS], "value": [shift.relative_change for shift in shown]})
    st.altair_chart(bars(frame, label="tensor", title="relative change", rule_at=view.median),
                    width="stretch", alt=view.reading)
    # Full width below the chart: six columns of long names and numbers do not fit half a page unclipped.
    st.dataframe(
        view.table(),
        hide_index=True,
        width="stretch",
        height="content" if len(view.shifts) <= NORM_ROWS_IN_VIEW else NORM_TABLE_HEIGHT_PX,
        column_config={name: st.column_config.NumberColumn(format="%.4g")
                       for name in ("Mean base", "Mean post-trained", "Mean ratio", "Relative change", "Max |Δ|")},
    )


def token_table(tokens: tuple[TokenDrift, ...], median_drift: float | None) -> None:
    """Tokens with their drift; ``median_drift`` (None: not known for these rows) adds a ratio column."""
    st.dataframe(
        detail.token_table(tokens, median_drift),
        hide_index=True,
        width="stretch",
        column_config={"Drift": st.column_config.NumberColumn(format="%.4g"),
                       "× median": st.column_config.NumberColumn(format="%.1f×"),
                       "Relative drift": st.column_config.NumberColumn(format="%.3g")},
    )


def show_embeddings(drift: EmbeddingDrift | None, names: dict[str, str]) -> None:
    st.subheader("Embedding drift")
    if drift is None:
        st.caption("No embedding matrix was compared (an adapter that leaves it alone, or none found).")
        return
    compared, added, unchanged, middle = st.columns(4)
    compared.metric("Rows compared", count(drift.rows_compared))
    added.metric("Rows added", count(drift.rows_added))
    unchanged.metric("Rows unchanged", count(drift.rows_unchanged))
    middle.metric("Median drift", f"{drift.median_drift:.3g}")
    view = detail.embeddings(drift, names)
    if not view.tokens:
        st.caption(escape_markdown(view.reading))
        return
    reading(view.reading)
    frame = pd.DataFrame({"label": view.labels[:CHART_ROWS], "value": [t.drift for t in view.tokens[:CHART_ROWS]]})
    chart_column, table_column = st.columns(2, gap="large")
    with chart_column:
        st.altair_chart(bars(frame, label="token", title="drift ‖Δe‖", rule_at=drift.median_drift),
                        width="stretch", alt=view.reading)
        st.caption(escape_markdown(f"{view.tensor}: the most-moved rows; the dashed line is the median drift. "
                                   "Tokens are decoded and quoted, invisible characters written out."))
    with table_column:
        token_table(view.tokens, drift.median_drift)
        if view.head_tensor is not None and view.head_tokens:
            st.markdown(f"**Output head** · {escape_markdown(view.head_tensor)}")
            # The stored median is the input embedding's; the head's rows have none of their own.
            token_table(view.head_tokens, None)


require_app_frame()
st.title("Weights")

record, result = selected_result(WeightDiffResult)
view = weights_view(result)
show_diagnosis(view)
show_unpaired(result.tensors)
if result.is_adapter:
    show_adapter(result.tensors)
show_layer_heatmap(view)
show_heads(view)
show_experts(result)
show_spectrum(show_top_tensors(result, view))
show_norms(result)
show_embeddings(result.embeddings, display_names(result.tensors))
