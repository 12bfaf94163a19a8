"""Weights: where post-training changed the weights, read from the run's stored ``WeightDiffResult``.

Top to bottom: the diagnosis (profile, concentration, findings), tensors not
compared one to one, a LoRA view for an adapter, the layer × module heatmap
and the attention heads, the top changed tensors (CSV download), the
singular-value spectrum of any tensor, norm shifts and embedding drift with
decoded tokens. Each chart carries a one-line reading made from the numbers
it shows.

It computes nothing: it selects, sorts and formats what the ``weights``
analysis stored (a median or a ratio of two stored numbers for a reading at
most). Every string a checkpoint or tokenizer wrote (tensor names, decoded
tokens) reaches the screen through ``st.dataframe``, chart labels or
``escape_markdown``; tokens are shown quoted with their invisible characters
spelled out (``visible_text``).
"""

from __future__ import annotations

from statistics import median

import altair as alt
import pandas as pd
import streamlit as st

from afterburn_core.weights.types import EmbeddingDrift, HeadScores, TensorDiff, TokenDrift, WeightDiffResult
from pages.common import (
    escape_markdown,
    format_count,
    format_duration,
    format_shape,
    require_app_frame,
    selected_result,
    visible_text,
)

#: Heatmap column order and labels of the core's module types (Llama names, the common case).
MODULE_LABELS = {
    "q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
    "gate": "gate_proj", "up": "up_proj", "down": "down_proj",
    "norm": "norm", "embed": "embedding", "head": "lm_head", "other": "other",
}
OUTSIDE_LAYERS = "outside"
#: Heatmap metrics: label -> (LayerModuleCell field, low values stand out, number format).
CELL_METRICS = {
    "Relative change": ("relative_change", False, ".3f"),
    "‖ΔW‖": ("frob_norm_delta", False, ".3g"),
    "Effective rank": ("effective_rank", True, ".1f"),
    "Energy in top k": ("energy_top_k", False, ".0%"),
}
PROFILE_COLORS = {"identical": "gray", "surgical": "blue", "standard": "green", "heavy": "orange", "extreme": "red"}
SPECTRUM_METHODS = {
    "randomized": "randomized range finder with power iterations (top k only)",
    "exact_gram_fp64": "exact: eigenvalues of the smaller Gram matrix in float64",
    "exact_svdvals": "exact: LAPACK svdvals",
    "lora_factors": "exact, from the LoRA factors (QR of A and B, SVD of the r × r core)",
}
UNPAIRED_STATUSES = {
    "base_only": "base only", "trained_only": "post-trained only", "resized": "resized", "tied": "tied",
}
COMPARED_STATUSES = ("changed", "unchanged", "resized")
PROJECTION_ORDER = {"q": 0, "k": 1, "v": 2, "o": 3}
#: Most bars in the norm and token charts; the tables below them hold every row.
CHART_ROWS = 20


def reading(text: str) -> None:
    """One line that says what a chart shows, made of its numbers (plain text, escaped)."""
    st.markdown(f":material/insights: {escape_markdown(text)}")


def where(layer: int | None, module: str) -> str:
    label = MODULE_LABELS.get(module, module)
    if layer is None:
        return "the final norm" if module == "norm" else label
    return f"layer {layer} {label}"


def against(value: float, reference: float, what: str, number_format: str = ".3g") -> str:
    """``3.5× the median head (0.61 against 0.17)``, or ``0.61, while the median head is 0``."""
    if reference > 0:
        return f"{value / reference:.1f}× the {what} ({value:{number_format}} against {reference:{number_format}})"
    return f"{value:{number_format}}, while the {what} is 0"


def layer_span(layers: list[int]) -> str:
    if len(layers) > 2 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}–{layers[-1]}"
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(map(str, layers))


def heatmap(frame: pd.DataFrame, *, x: str, y: str, x_order: list[str], y_order: list[str], title: str,
            low_stands_out: bool = False, number_format: str = ".3g") -> alt.LayerChart:
    """Cells coloured by ``frame.value`` (missing values left blank), each labelled with its number."""
    values = frame["value"].dropna()
    midpoint = float(values.min() + values.max()) / 2 if len(values) else 0.0
    dark = f"datum.value {'<' if low_stands_out else '>'} {midpoint!r}"
    # autosize "fit" counts the axes in the height: leave them room, and keep the legend inside it.
    height = 60 + 32 * len(y_order)
    base = alt.Chart(frame.dropna(subset=["value"])).encode(
        x=alt.X(f"{x}:O", sort=x_order, title=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y(f"{y}:O", sort=y_order, title=y),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("value:Q", title=title, scale=alt.Scale(scheme="orangered", reverse=low_stands_out),
                        legend=alt.Legend(gradientLength=height - 70)),
        tooltip=[alt.Tooltip(f"{y}:O"), alt.Tooltip(f"{x}:O"), alt.Tooltip("value:Q", title=title, format=number_format)],
    )
    labels = base.mark_text(fontSize=11).encode(
        text=alt.Text("value:Q", format=number_format),
        color=alt.condition(dark, alt.value("white"), alt.value("black")),
    )
    # Discrete axes size themselves by step unless told otherwise; "container" fills the column.
    return (cells + labels).properties(width="container", height=height)


def show_diagnosis(result: WeightDiffResult) -> None:
    profile = result.diagnosis.profile
    compared = sum(tensor.status in COMPARED_STATUSES for tensor in result.tensors)
    concentration = result.concentration
    badge_column, *metric_columns = st.columns([1.2, 1, 1, 1, 1])
    with badge_column:
        st.caption("Profile")
        st.badge(profile, color=PROFILE_COLORS.get(profile, "gray"), icon=":material/biotech:")
    metric_columns[0].metric("Tensors compared", format_count(compared))
    metric_columns[1].metric("Changed", format_count(concentration.tensors_with_change))
    metric_columns[2].metric("Top 10% share", f"{concentration.top_decile_share:.0%}",
                             help="Share of the total change held by the most-changed tenth of the tensors.")
    metric_columns[3].metric("Gini", f"{concentration.gini:.2f}",
                             help="0: the change is spread evenly over the tensors; 1: it sits in one tensor.")
    for finding in result.diagnosis.findings:
        text = f"**{escape_markdown(finding.title)}** · {escape_markdown(finding.detail)}"
        if finding.severity == "warning":
            st.warning(text, icon=":material/warning:")
        elif finding.severity == "notable":
            st.info(text, icon=":material/priority_high:")
        else:
            st.markdown(f":material/info: {text}")
    if not result.diagnosis.findings:
        st.caption("No findings: nothing in this diff crossed a diagnosis threshold.")


def show_unpaired(tensors: tuple[TensorDiff, ...]) -> None:
    unpaired = [tensor for tensor in tensors if tensor.status in UNPAIRED_STATUSES]
    if not unpaired:
        st.caption("Every tensor pairs up one to one: none is on one side only, resized or tied.")
        return
    counts = ", ".join(
        f"{sum(tensor.status == status for tensor in unpaired)} {label}"
        for status, label in UNPAIRED_STATUSES.items() if any(tensor.status == status for tensor in unpaired)
    )
    st.markdown(f"**Not compared one to one** ({counts})")
    notes = {
        "base_only": "no partner in the post-trained checkpoint",
        "trained_only": "no partner in the base",
        "tied": "shares its storage with {tied_to}; its change is that tensor's",
        "resized": "metrics cover the shared rows; {added_rows} rows added",
    }
    st.dataframe(
        {
            "Tensor": [tensor.name for tensor in unpaired],
            "Status": [UNPAIRED_STATUSES[tensor.status] for tensor in unpaired],
            "Base shape": [format_shape(tensor.shape) if tensor.status != "trained_only" else "—" for tensor in unpaired],
            "Post-trained shape": [
                format_shape(tensor.trained_shape or tensor.shape) if tensor.status != "base_only" else "—"
                for tensor in unpaired
            ],
            "Note": [notes[tensor.status].format(tied_to=tensor.tied_to or "another tensor",
                                                 added_rows=tensor.added_rows) for tensor in unpaired],
        },
        hide_index=True,
        width="stretch",
    )


def lora_rank(tensor: TensorDiff) -> int:
    """The rank of a LoRA tensor's change: its nonzero singular values (the spectrum is padded with exact zeros)."""
    return sum(value > 0 for value in tensor.singular_values or ())


def show_adapter(tensors: tuple[TensorDiff, ...]) -> None:
    st.subheader("LoRA adapter")
    factored = [tensor for tensor in tensors if tensor.spectrum_method == "lora_factors"]
    if not factored:
        st.info("The post-trained side is an adapter, but no tensor's change was read from LoRA factors.")
        return
    modules = [label for module, label in MODULE_LABELS.items() if any(t.module == module for t in factored)]
    layers = sorted({tensor.layer for tensor in factored if tensor.layer is not None})
    ranks = sorted({lora_rank(tensor) for tensor in factored})
    rank_text = f"rank {ranks[0]} in each" if len(ranks) == 1 else f"ranks {ranks[0]} to {ranks[-1]}"
    reading(f"The adapter touches {', '.join(modules)} in {layer_span(layers) if layers else 'no layer'} "
            f"({len(factored)} tensors), {rank_text}.")
    st.dataframe(
        {
            "Tensor": [tensor.name for tensor in factored],
            "Layer": [tensor.layer for tensor in factored],
            "Module": [MODULE_LABELS.get(tensor.module, tensor.module) for tensor in factored],
            "Rank": [lora_rank(tensor) for tensor in factored],
            "σ₁": [tensor.singular_values[0] if tensor.singular_values else None for tensor in factored],
            "‖s·B·A‖": [tensor.frob_norm_delta for tensor in factored],
            "Relative change": [tensor.relative_change for tensor in factored],
        },
        hide_index=True,
        width="stretch",
        column_config={"σ₁": st.column_config.NumberColumn(format="%.4g"),
                       "‖s·B·A‖": st.column_config.NumberColumn(format="%.4g"),
                       "Relative change": st.column_config.NumberColumn(format="%.4f")},
    )


def show_layer_heatmap(result: WeightDiffResult) -> None:
    st.subheader("Layer × module")
    label = st.segmented_control("Metric", list(CELL_METRICS), default="Relative change", required=True,
                                 key="weights_cell_metric")
    field_name, low_stands_out, number_format = CELL_METRICS[label]
    cells = [cell for cell in result.layers if getattr(cell, field_name) is not None]
    if not cells:
        st.caption(f"No layer × module cell has a value for {label.lower()}.")
        return
    frame = pd.DataFrame({
        "module": [MODULE_LABELS.get(cell.module, cell.module) for cell in cells],
        "layer": [OUTSIDE_LAYERS if cell.layer is None else str(cell.layer) for cell in cells],
        "value": [float(getattr(cell, field_name)) for cell in cells],
    })
    layers = sorted({cell.layer for cell in cells if cell.layer is not None})
    y_order = [str(layer) for layer in layers] + ([OUTSIDE_LAYERS] if any(c.layer is None for c in cells) else [])
    x_order = [label_ for module, label_ in MODULE_LABELS.items() if any(cell.module == module for cell in cells)]
    values = [float(getattr(cell, field_name)) for cell in cells]
    middle = median(values)
    if low_stands_out:
        lowest = min(cells, key=lambda cell: getattr(cell, field_name))
        line = (f"Lowest effective rank: {where(lowest.layer, lowest.module)} at {lowest.effective_rank:.1f}, "
                f"against a median of {middle:.1f} over {len(cells)} cells.")
    elif field_name == "energy_top_k":
        top = max(cells, key=lambda cell: cell.energy_top_k)
        line = (f"Most concentrated: {where(top.layer, top.module)}, whose top {result.spectrum_top_k} singular "
                f"values hold {top.energy_top_k:.0%} of its change (median cell: {middle:.0%}).")
    else:
        top = max(cells, key=lambda cell: getattr(cell, field_name))
        peak = getattr(top, field_name)
        what = f"median {label.lower() if label[0].isalpha() else label}"
        line = (f"Change peaks in {where(top.layer, top.module)}: {against(peak, middle, what, number_format)}."
                if peak > 0 else f"No cell changed: every {label} is 0.")
    reading(line)
    st.altair_chart(heatmap(frame, x="module", y="layer", x_order=x_order, y_order=y_order, title=label,
                            low_stands_out=low_stands_out, number_format=number_format),
                    width="stretch", alt=line)


def show_heads(heads: HeadScores | None) -> None:
    st.subheader("Attention heads")
    if heads is None:
        st.caption("No per-head scores: the checkpoint's attention layout was not recognized.")
        return
    projections = sorted(heads.per_projection, key=lambda name: (PROJECTION_ORDER.get(name, len(PROJECTION_ORDER)), name))
    projection = st.segmented_control("Projection", ["combined", *projections], default="combined",
                                      required=True, key="weights_head_projection")
    grid = heads.scores if projection == "combined" else heads.per_projection[projection]
    frame = pd.DataFrame(
        [(str(layer), str(head), score) for layer, row in zip(heads.layers, grid) for head, score in enumerate(row)],
        columns=["layer", "head", "value"],
    )
    middle = median(frame["value"])
    top = frame.loc[frame["value"].idxmax()]
    line = (f"Head change ({projection}) peaks at layer {top['layer']} head {top['head']}: "
            f"{against(top['value'], middle, 'median head', '.3f')}."
            if top["value"] > 0 else f"No head changed in {projection}.")
    reading(line)
    st.altair_chart(heatmap(frame, x="head", y="layer", x_order=[str(h) for h in range(heads.num_heads)],
                            y_order=[str(layer) for layer in heads.layers], title="Relative change",
                            number_format=".3f"),
                    width="stretch", alt=line)
    st.caption(f"{heads.num_heads} query heads over {heads.num_kv_heads} key/value heads: a k or v head's change "
               "counts in every query head of its group.")


def tensor_rows(tensors: list[TensorDiff]) -> pd.DataFrame:
    return pd.DataFrame({
        "Tensor": [tensor.name for tensor in tensors],
        "Layer": [tensor.layer for tensor in tensors],
        "Module": [MODULE_LABELS.get(tensor.module, tensor.module) for tensor in tensors],
        "Shape": [format_shape(tensor.shape) for tensor in tensors],
        "Relative change": [tensor.relative_change for tensor in tensors],
        "‖ΔW‖": [tensor.frob_norm_delta for tensor in tensors],
        "‖W‖ base": [tensor.frob_norm_base for tensor in tensors],
        "Cosine": [tensor.cosine_similarity for tensor in tensors],
        "Effective rank": [tensor.effective_rank for tensor in tensors],
        "rank₉₀": [tensor.rank_90 for tensor in tensors],
        "Low rank": [tensor.low_rank for tensor in tensors],
        "Unchanged": [tensor.fraction_unchanged for tensor in tensors],
    })


def show_top_tensors(result: WeightDiffResult) -> list[TensorDiff]:
    """The compared tensors, most changed first (the spectrum picker reuses the order)."""
    st.subheader("Most changed tensors")
    compared = sorted((tensor for tensor in result.tensors if tensor.relative_change is not None),
                      key=lambda tensor: -tensor.relative_change)
    if not compared:
        st.caption("No tensor pair was compared.")
        return []
    top, rest = compared[0], [tensor.relative_change for tensor in compared[1:]]
    runner_up = (f", {top.relative_change / rest[0]:.1f}× the next one" if rest and rest[0] > 0
                 else ", the only one that changed" if rest else "")
    reading(f"{top.name} changed most: relative change {top.relative_change:.3f}{runner_up}; "
            f"{result.concentration.tensors_with_change} of {len(compared)} compared tensors changed.")
    st.dataframe(
        tensor_rows(compared),
        hide_index=True,
        width="stretch",
        height=min(420, 38 + 35 * len(compared)),
        column_config={
            "Relative change": st.column_config.NumberColumn(format="%.4f"),
            "‖ΔW‖": st.column_config.NumberColumn(format="%.4g"),
            "‖W‖ base": st.column_config.NumberColumn(format="%.4g"),
            "Cosine": st.column_config.NumberColumn(format="%.5f"),
            "Effective rank": st.column_config.NumberColumn(format="%.1f"),
            "Unchanged": st.column_config.NumberColumn(format="percent"),
        },
    )
    every_field = pd.DataFrame([
        {**vars(tensor), "shape": format_shape(tensor.shape),
         "trained_shape": format_shape(tensor.trained_shape) if tensor.trained_shape else "",
         "singular_values": " ".join(f"{value:.6g}" for value in tensor.singular_values or ())}
        for tensor in result.tensors
    ])
    st.download_button("Download every tensor (CSV)", every_field.to_csv(index=False).encode("utf-8"),
                       file_name="weight-diff-tensors.csv", mime="text/csv", icon=":material/download:",
                       key="weights_csv")
    st.caption("Sorted by relative change; click a column header to sort by it. The CSV holds every tensor, "
               "paired or not, with all its fields.")
    return compared


def show_spectrum(result: WeightDiffResult, ordered: list[TensorDiff]) -> None:
    st.subheader("Singular-value spectrum of ΔW")
    with_spectrum = [tensor for tensor in ordered if tensor.singular_values]
    if not with_spectrum:
        st.caption("No tensor has a spectrum (1-D tensors and unpaired ones have none).")
        return
    by_name = {tensor.name: tensor for tensor in with_spectrum}
    tensor = by_name[st.selectbox("Tensor", list(by_name), key="weights_spectrum_tensor",
                                  help="Tensors with a spectrum, most changed first.")]
    values = [value for value in tensor.singular_values if value > 0]  # a log axis has no room for exact zeros
    possible = min(tensor.shape[:2]) if len(tensor.shape) >= 2 else len(values)
    known = len(tensor.singular_values)
    markers = []
    if tensor.effective_rank is not None and tensor.effective_rank <= known:
        markers.append((f"effective rank {tensor.effective_rank:.1f}", tensor.effective_rank))
    if tensor.rank_90 is not None and tensor.rank_90 <= known:
        markers.append((f"rank₉₀ = {tensor.rank_90}", float(tensor.rank_90)))
    if tensor.frob_norm_delta and values:
        share = (values[0] / tensor.frob_norm_delta) ** 2
        spread = (f"90% of it lies in {tensor.rank_90} of {possible} possible directions"
                  if tensor.rank_90 is not None else
                  f"the top {known} values hold {tensor.energy_top_k:.0%} of it, so 90% needs more than {known} "
                  f"of {possible} directions" if tensor.energy_top_k is not None else
                  f"{known} of {possible} values are known")
        line = f"σ₁ alone holds {share:.0%} of this tensor's change; {spread}."
        if tensor.effective_rank is not None:
            line = line[:-1] + f" (effective rank {tensor.effective_rank:.1f})."
    else:
        line = "This tensor did not change: its spectrum is empty."
    reading(line)
    points = pd.DataFrame({"i": range(1, len(values) + 1), "sigma": values})
    curve = alt.Chart(points).mark_line(point=True).encode(
        x=alt.X("i:Q", title="index i", scale=alt.Scale(domain=[1, max(2, len(values))], nice=False)),
        y=alt.Y("sigma:Q", title="σᵢ (log scale)", scale=alt.Scale(type="log")),
        tooltip=[alt.Tooltip("i:Q", title="i"), alt.Tooltip("sigma:Q", title="σᵢ", format=".4g")],
    )
    chart = curve
    if markers:
        rules = alt.Chart(pd.DataFrame(markers, columns=["marker", "at"])).mark_rule(strokeDash=[6, 4], size=2).encode(
            x="at:Q", color=alt.Color("marker:N", title=None, legend=alt.Legend(orient="top")),
        )
        chart = curve + rules
    st.altair_chart(chart.properties(width="container", height=300), width="stretch", alt=line)
    method = SPECTRUM_METHODS.get(tensor.spectrum_method or "", tensor.spectrum_method or "unknown")
    bound = "" if tensor.spectrum_error_bound is None else f" · error bound {tensor.spectrum_error_bound:.2g}"
    if tensor.spectrum_method == "lora_factors":
        coverage = (f"The whole spectrum is known: ΔW = s·B·A has rank {lora_rank(tensor)}, "
                    "every other singular value is exactly 0.")
    elif known < possible:
        coverage = f"Only the top {known} of {possible} singular values are computed" + (
            f"; they hold {tensor.energy_top_k:.1%} of ‖ΔW‖²." if tensor.energy_top_k is not None else ".")
    else:
        coverage = f"All {known} singular values are known."
    beyond = ("" if tensor.effective_rank is None or tensor.effective_rank <= known
              else f" The effective rank ({tensor.effective_rank:.1f}) lies beyond the computed values.")
    st.caption(escape_markdown(f"Method: {method}{bound}. {coverage}{beyond}"))


def bars(frame: pd.DataFrame, *, label: str, title: str, rule_at: float | None = None) -> alt.Chart:
    """Horizontal bars of ``frame.value`` by ``frame.label``, in the frame's order."""
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("value:Q", title=title),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=360)),
        tooltip=[alt.Tooltip("label:N", title=label), alt.Tooltip("value:Q", title=title, format=".4g")],
    )
    if rule_at is not None:
        chart = chart + alt.Chart(pd.DataFrame({"at": [rule_at]})).mark_rule(strokeDash=[4, 3]).encode(x="at:Q")
    return chart.properties(width="container", height=70 + 24 * len(frame))


def show_norms(result: WeightDiffResult) -> None:
    st.subheader("Norm shifts")
    if not result.norms:
        st.caption("No normalization weights were compared.")
        return
    ordered = sorted(result.norms, key=lambda shift: -shift.relative_change)
    top, middle = ordered[0], median(shift.relative_change for shift in ordered)
    if top.relative_change == 0:
        reading(f"No norm weight changed: the relative change of all {len(ordered)} is 0.")
        return
    ratio = f"mean ×{top.mean_ratio:.3g}" if top.mean_ratio is not None else f"mean {top.mean_base:.3g} → {top.mean_trained:.3g}"
    line = f"{top.name} moved most: {ratio}, {against(top.relative_change, middle, 'median relative change', '.3f')}."
    reading(line)
    shown = ordered[:CHART_ROWS]
    frame = pd.DataFrame({"label": [shift.name for shift in shown], "value": [shift.relative_change for shift in shown]})
    chart_column, table_column = st.columns(2, gap="large")
    chart_column.altair_chart(bars(frame, label="tensor", title="relative change", rule_at=middle),
                              width="stretch", alt=line)
    table_column.dataframe(
        {
            "Tensor": [shift.name for shift in ordered],
            "Kind": [shift.kind for shift in ordered],
            "Mean base": [shift.mean_base for shift in ordered],
            "Mean post-trained": [shift.mean_trained for shift in ordered],
            "Mean ratio": [shift.mean_ratio for shift in ordered],
            "Relative change": [shift.relative_change for shift in ordered],
            "Max |Δ|": [shift.max_abs_delta for shift in ordered],
        },
        hide_index=True,
        width="stretch",
        height=min(300, 38 + 35 * len(ordered)),
        column_config={name: st.column_config.NumberColumn(format="%.4g")
                       for name in ("Mean base", "Mean post-trained", "Mean ratio", "Relative change", "Max |Δ|")},
    )


def token_table(tokens: tuple[TokenDrift, ...], median_drift: float | None) -> None:
    """Tokens with their drift; ``median_drift`` (None: not known for these rows) adds a ratio column."""
    columns = {
        "Token id": [token.token_id for token in tokens],
        "Token": [visible_text(token.token) for token in tokens],
        "Drift": [token.drift for token in tokens],
    }
    if median_drift:
        columns["× median"] = [token.drift / median_drift for token in tokens]
    columns["Relative drift"] = [token.relative_drift for token in tokens]
    st.dataframe(
        columns,
        hide_index=True,
        width="stretch",
        column_config={"Drift": st.column_config.NumberColumn(format="%.4g"),
                       "× median": st.column_config.NumberColumn(format="%.1f×"),
                       "Relative drift": st.column_config.NumberColumn(format="%.3g")},
    )


def show_embeddings(drift: EmbeddingDrift | None) -> None:
    st.subheader("Embedding drift")
    if drift is None:
        st.caption("No embedding matrix was compared (an adapter that leaves it alone, or none found).")
        return
    compared, added, unchanged, middle = st.columns(4)
    compared.metric("Rows compared", format_count(drift.rows_compared))
    added.metric("Rows added", format_count(drift.rows_added))
    unchanged.metric("Rows unchanged", format_count(drift.rows_unchanged))
    middle.metric("Median drift", f"{drift.median_drift:.3g}")
    if not drift.top_tokens:
        st.caption("No row moved.")
        return
    ordered = sorted(drift.top_tokens, key=lambda token: -token.drift)
    top = ordered[0]
    line = (f"The most-moved row, token {top.token_id} {visible_text(top.token)}, drifted "
            f"{against(top.drift, drift.median_drift, 'median row drift')}.")
    reading(line)
    shown = ordered[:CHART_ROWS]
    frame = pd.DataFrame({"label": [f"{token.token_id}  {visible_text(token.token)}" for token in shown],
                          "value": [token.drift for token in shown]})
    chart_column, table_column = st.columns(2, gap="large")
    with chart_column:
        st.altair_chart(bars(frame, label="token", title="drift ‖Δe‖", rule_at=drift.median_drift),
                        width="stretch", alt=line)
        st.caption(escape_markdown(f"{drift.tensor}: the most-moved rows; the dashed line is the median drift. "
                                   "Tokens are decoded and quoted, invisible characters written out."))
    with table_column:
        token_table(tuple(ordered), drift.median_drift)
        if drift.head_tensor is not None and drift.head_top_tokens:
            st.markdown(f"**Output head** · {escape_markdown(drift.head_tensor)}")
            # The stored median is the input embedding's; the head's rows have none of their own.
            token_table(tuple(sorted(drift.head_top_tokens, key=lambda token: -token.drift)), None)


require_app_frame()
st.title("Weights")

record, result = selected_result(
    WeightDiffResult,
    "This run has no weight diff: it was made before the weights analysis existed, or that analysis "
    "did not run. Launch the pair again from the New run page to compute it.",
)

st.caption(
    f"Spectra: {'exact' if result.exact else f'top {result.spectrum_top_k} singular values'} · "
    f"computed on {escape_markdown(result.device)} in {format_duration(result.seconds)}"
    + (" · post-trained side is a LoRA adapter" if result.is_adapter else "")
)
show_diagnosis(result)
show_unpaired(result.tensors)
if result.is_adapter:
    show_adapter(result.tensors)
show_layer_heatmap(result)
show_heads(result.heads)
ordered_tensors = show_top_tensors(result)
show_spectrum(result, ordered_tensors)
show_norms(result)
show_embeddings(result.embeddings)
