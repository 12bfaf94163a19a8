"""Internals: where the two models' residual streams part, and what the difference reads as in tokens.

Top to bottom: the reading; the per-layer curves over the neutral corpus
(relative norm, cosine, logit-lens KL, and the first position apart); a row
per input set; the activation-difference lens of the reading picked
(promoted and demoted tokens with their relevance in the run's generations,
patchscope tokens by scale, those that persist); the layer × position lens
of the input picked, coloured by KL, each cell's two top tokens on hover;
then the causal half, worded as every door words it: the steering check (its
strength trials and accepted band, the behaviour metrics of base / steered
base / post-trained), the layer-localization bars and shares per decoder
block, and the amplification rates per detector and α with their intervals;
a part that did not run says why; last, the method and what the run cost.

It computes nothing: curves, rows, tables, grids and the reading are the
view's (``afterburn_core.views.internals``; the causal half's are
``afterburn_core.views.internals_causal``'s, whose tables of worded cells it
draws as they are); this page reshapes them for its charts. Decoded tokens
are a model's vocabulary and suite names come from files, untrusted: they reach the screen through tables, chart axes, plain
text and ``escape_markdown``, and Plotly's hover and tick text (which reads a
few HTML tags) gets them ``html.escape``-d.
"""

from __future__ import annotations

import html

import altair as alt
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from afterburn_core.internals.types import InternalsResult
from afterburn_core.views.internals import AdlTable, LensGrid, TokenRow, internals_view
from afterburn_core.views.internals_causal import (
    AMPLIFICATION_NOTE,
    CLOSED_BY_TRAINED_BLOCK,
    LOCALIZATION_NOTE,
    OPENED_BY_BASE_BLOCK,
    PART_TITLES,
    AmplificationView,
    CausalTable,
    LocalizationView,
    SteeringView,
    causal_view,
)
from pages.common import escape_markdown, reading, require_app_frame, selected_result

ADL_KEY = "internals_adl"
LENS_KEY = "internals_lens"
#: Height of one layer's row of the lens heatmap, in pixels, and what its axes and colour bar take.
LENS_ROW_PX = 22
LENS_FRAME_PX = 140
CURVE_HEIGHT_PX = 200


def curve_chart(layers: tuple[int, ...], name: str, values: tuple[float, ...]) -> alt.Chart:
    frame = pd.DataFrame({"layer": layers, name: values})
    return alt.Chart(frame, title=name).mark_line(point=True).encode(
        x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)),
        y=alt.Y(f"{name}:Q", title=None),
        tooltip=[alt.Tooltip("layer:O"), alt.Tooltip(f"{name}:Q", format=".4g")],
    ).properties(width="container", height=CURVE_HEIGHT_PX)


def token_frame(rows: tuple[TokenRow, ...]) -> pd.DataFrame:
    return pd.DataFrame({"rank": [row.rank for row in rows], "token": [row.token for row in rows],
                         "probability": [row.score for row in rows],
                         "relevance (per 1 000 tokens)": [row.relevance for row in rows]})


def show_adl(table: AdlTable) -> None:
    st.caption(f"Mean difference ‖δ‖ = {table.norm:.4g}")
    promoted, demoted = st.columns(2, gap="large")
    for column, title, rows in ((promoted, "Promoted (+δ)", table.promoted), (demoted, "Demoted (−δ)", table.demoted)):
        with column:
            st.markdown(f"**{title}**")
            st.dataframe(token_frame(rows), hide_index=True, width="stretch", column_config={
                "probability": st.column_config.NumberColumn(format="%.4f"),
                "relevance (per 1 000 tokens)": st.column_config.NumberColumn(format="%+.2f"),
            })
    if not table.patchscope:
        st.caption("Patchscope reads the averaged difference only.")
        return
    st.markdown("**Patchscope: tokens the post-trained model reads from δ, by scale**")
    st.dataframe(pd.DataFrame({"scale (× mean norm)": [scale for scale, _ in table.patchscope],
                               "tokens": [list(tokens) for _, tokens in table.patchscope]}),
                 hide_index=True, width="stretch",
                 column_config={"tokens": st.column_config.ListColumn(width="large")})
    st.markdown("**Persistent across scales**")
    st.text(" · ".join(table.persistent) if table.persistent else "none")


def table_frame(table: CausalTable) -> pd.DataFrame:
    return pd.DataFrame(list(table.rows), columns=list(table.columns))


def show_steering(steering: SteeringView) -> None:
    reading(steering.reading)
    st.caption(escape_markdown(steering.method_line))
    trials, metrics = st.columns([2, 3], gap="large")
    with trials:
        st.markdown("**Strengths tried**")
        st.dataframe(table_frame(steering.trials), hide_index=True, width="stretch")
    with metrics:
        st.markdown("**Behaviour metrics**")
        st.dataframe(table_frame(steering.metrics), hide_index=True, width="stretch")
    st.caption("The steered answers are on the Prompts page, beside the base's and the post-trained model's.")


def localization_chart(localization: LocalizationView) -> alt.Chart:
    frame = pd.DataFrame({
        "block": list(localization.layers) * 2,
        "share of the KL gap": [*localization.kl_recovered, *localization.reverse_kl_recovered],
        "swap": [CLOSED_BY_TRAINED_BLOCK] * len(localization.layers) + [OPENED_BY_BASE_BLOCK] * len(localization.layers),
    })
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("block:O", axis=alt.Axis(labelAngle=0)),
        xOffset="swap:N",
        y=alt.Y("share of the KL gap:Q", axis=alt.Axis(format="%")),
        color=alt.Color("swap:N", legend=alt.Legend(orient="top", title=None, labelLimit=0)),
        tooltip=[alt.Tooltip("block:O"), alt.Tooltip("swap:N"), alt.Tooltip("share of the KL gap:Q", format=".1%")],
    ).properties(width="container", height=CURVE_HEIGHT_PX * 3 // 2)


def amplification_chart(amplification: AmplificationView) -> alt.Chart:
    """Each detector's rate by α as a line, its 95 % interval as error bars."""
    frame = pd.DataFrame({"detector": [point.detector for point in amplification.points],
                          "α": [point.alpha for point in amplification.points],
                          "rate": [point.rate for point in amplification.points],
                          "low": [point.rate_low for point in amplification.points],
                          "high": [point.rate_high for point in amplification.points]})
    base = alt.Chart(frame).encode(x=alt.X("α:Q", axis=alt.Axis(values=list(amplification.alphas), format="~g")),
                                   color=alt.Color("detector:N", legend=alt.Legend(orient="top", title=None)))
    line = base.mark_line(point=True).encode(
        y=alt.Y("rate:Q", axis=alt.Axis(format="%"), title="share of answers", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("detector:N"), alt.Tooltip("α:Q"), alt.Tooltip("rate:Q", format=".1%"),
                 alt.Tooltip("low:Q", format=".1%", title="95 % low"),
                 alt.Tooltip("high:Q", format=".1%", title="95 % high")],
    )
    bars = base.mark_errorbar(ticks=True).encode(y=alt.Y("low:Q", title="share of answers"), y2="high:Q")
    return (line + bars).properties(width="container", height=CURVE_HEIGHT_PX * 3 // 2)


def show_amplification(amplification: AmplificationView) -> None:
    reading(amplification.reading)
    st.caption(escape_markdown(f"{amplification.sample_line} {AMPLIFICATION_NOTE}"))
    if amplification.points:
        st.altair_chart(amplification_chart(amplification), width="stretch")
    for line in amplification.lines:
        st.text(line)
    st.dataframe(table_frame(amplification.table), hide_index=True, width="stretch")
    st.caption("The amplified answers are on the Prompts page, beside the base's and the post-trained model's.")


def lens_figure(grid: LensGrid) -> go.Figure:
    """Layer × position cells coloured by KL; hover and tick text escaped (Plotly reads some HTML)."""
    positions = list(range(len(grid.tokens)))
    hover = [[[html.escape(grid.tokens[position]), html.escape(base[position]), html.escape(trained[position]),
               str(position)] for position in positions] for base, trained in zip(grid.base_top, grid.trained_top)]
    figure = go.Figure(go.Heatmap(
        z=[list(row) for row in grid.kl], x=positions, y=list(range(len(grid.kl))), customdata=hover,
        colorscale="OrRd", colorbar={"title": {"text": "KL (nats)"}},
        hovertemplate=("layer %{y} · position %{customdata[3]}, input token %{customdata[0]}<br>KL %{z:.3g} nats<br>"
                       "base top: %{customdata[1]}<br>post-trained top: %{customdata[2]}<extra></extra>"),
    ))
    figure.update_layout(
        height=LENS_FRAME_PX + LENS_ROW_PX * len(grid.kl), margin={"l": 48, "r": 8, "t": 8, "b": 96},
        xaxis={"tickmode": "array", "tickvals": positions, "ticktext": [html.escape(t) for t in grid.tokens],
               "tickangle": -60, "title": {"text": "input token"}},
        yaxis={"title": {"text": "layer"}, "dtick": 1},
    )
    return figure


require_app_frame()
st.title("Internals")

_, result = selected_result(InternalsResult)
view = internals_view(result)
reading(view.reading)

st.subheader("Per layer, neutral corpus")
for start in range(0, len(view.curves), 2):
    for column, curve in zip(st.columns(2), view.curves[start:start + 2]):
        column.altair_chart(curve_chart(view.layers, curve.name, curve.values), width="stretch")

st.subheader("By input set")
st.dataframe(pd.DataFrame([
    {"input set": row.input_set, "sequences": row.sequences, "positions": row.positions,
     "peak layer": row.peak_layer, "peak relative norm": row.peak_relative_norm,
     "peak logit-lens KL (nats)": row.peak_logit_lens_kl}
    for row in view.input_sets
]), hide_index=True, width="stretch")

st.subheader("Activation-difference lens")
if view.adl:
    titles = [table.title for table in view.adl]
    picked = st.selectbox("Reading", titles, key=ADL_KEY)
    show_adl(view.adl[titles.index(picked)])
else:
    st.caption("No activation-difference reading was stored.")

st.subheader("Lens by layer and position")
if view.lenses:
    labels = [grid.label for grid in view.lenses]
    picked_input = st.selectbox("Input", labels, key=LENS_KEY)
    grid = view.lenses[labels.index(picked_input)]
    st.plotly_chart(lens_figure(grid), width="stretch", config={"displayModeBar": False}, key="internals_lens_chart")
    st.caption("KL(post-trained ‖ base) of the two models' logit lenses in each cell; hover a cell for each "
               "model's top token there.")
else:
    st.caption("No input's layer × position lens was stored.")

causal = causal_view(result)
st.subheader(PART_TITLES["steering"])
if causal.steering is not None:
    show_steering(causal.steering)
else:
    st.info(escape_markdown(causal.notes["steering"]))

st.subheader(PART_TITLES["localization"])
if causal.localization is not None:
    reading(causal.localization.reading)
    st.caption(escape_markdown(LOCALIZATION_NOTE))
    st.altair_chart(localization_chart(causal.localization), width="stretch")
    st.dataframe(table_frame(causal.localization.table), hide_index=True, width="stretch")
else:
    st.info(escape_markdown(causal.notes["localization"]))

st.subheader(PART_TITLES["amplification"])
if causal.amplification is not None:
    show_amplification(causal.amplification)
else:
    st.info(escape_markdown(causal.notes["amplification"]))

st.caption(escape_markdown(view.method_line))
st.caption(escape_markdown(view.cost_line))
