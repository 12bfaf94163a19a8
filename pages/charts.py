"""The dashboard's chart shapes: a labelled heatmap, ranked bars, paired base/post-trained bars (altair).

Pages pass these the rows a view returned (``afterburn_core.views``); the
colours and model labels are the views' theme, the same the reports draw
with. Draws only: no ranking, no reading, no data chosen here.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from afterburn_core.views.theme import MODEL_COLORS, MODEL_LABELS

#: Base and post-trained, coloured as in every view.
MODEL_SCALE = alt.Scale(domain=list(MODEL_LABELS), range=list(MODEL_COLORS))
#: Height of one bar of a paired chart, in pixels.
BAR_STEP_PX = 16


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


def paired_bars(frame: pd.DataFrame, *, title: str, rate: bool = True) -> alt.Chart:
    """Base and post-trained bars side by side per ``frame.label`` (columns label, model, value)."""
    number_format = ".0%" if rate else ".3g"
    x_scale = alt.Scale(domain=[0, 1]) if rate else alt.Scale(zero=True)
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("value:Q", title=title, scale=x_scale, axis=alt.Axis(format=number_format)),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=300)),
        yOffset=alt.YOffset("model:N", sort=list(MODEL_LABELS)),
        color=alt.Color("model:N", scale=MODEL_SCALE, title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("label:N", title="measure"), alt.Tooltip("model:N", title="model"),
                 alt.Tooltip("value:Q", title=title, format=".3f")],
    ).properties(
        # One step per bar; "fit-x" fits the width only, so the legend on top adds height instead
        # of squeezing the bars (Streamlit's default fits both).
        width="container", height=alt.Step(BAR_STEP_PX),
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
    )
