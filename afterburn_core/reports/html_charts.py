"""The HTML report's charts as plotly figures (JSON-ready dicts), one function per chart.

Each function takes what ``digest`` selected and returns ``{"data": …,
"layout": …}`` for ``Plotly.newPlot``. Plotly renders a subset of HTML in its
text (bold, links, line breaks), so every label a model, a tokenizer, a
checkpoint or a suite file wrote goes through ``label`` first: invisible
characters spelled out, then HTML-escaped, which plotly shows as the literal
characters. Base is always ``theme.BASE_COLOR``, post-trained always
``theme.TRAINED_COLOR``. Figures are built with ``plotly.graph_objects`` so a
misspelt property fails here, not silently in the browser; nothing is drawn
in Python.
"""

from __future__ import annotations

import html
import json
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from afterburn_core.generation.results import GenerationsResult
from afterburn_core.views import theme
from afterburn_core.views.behaviour import Paired
from afterburn_core.views.internals import LayerCurve, LensGrid
from afterburn_core.views.internals_causal import (
    CLOSED_BY_TRAINED_BLOCK,
    OPENED_BY_BASE_BLOCK,
    AmplificationView,
    LocalizationView,
    RatePoint,
)
from afterburn_core.views.weights import Grid
from afterburn_core.views.text import spell_invisible
from afterburn_core.reward_hack.scoring import CRITICAL_FROM, HIGH_FROM, MODERATE_FROM
from afterburn_core.weights.types import TensorDiff

Figure = dict[str, Any]
#: Marks a measure whose test is significant after the run's multiple-comparison correction.
ROW_PX = 30
BAR_PX = 13


def label(text: str) -> str:
    """``text`` as plotly shows it literally: one line, invisible characters spelled, HTML-escaped."""
    return html.escape(spell_invisible(text, keep=""), quote=True)


def _layout(height: int, **layout: Any) -> dict[str, Any]:
    base_layout = {
        "template": "none", "height": height, "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "font": {"family": "-apple-system, Segoe UI, Roboto, Arial, sans-serif", "size": 12, "color": theme.INK},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    }
    return {**base_layout, **layout}


def _figure(data: list[Any], height: int, **layout: Any) -> Figure:
    return json.loads(go.Figure(data=data, layout=_layout(height, **layout)).to_json())


def _axis(title: str = "", **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": theme.RULE, "linecolor": theme.RULE, "zeroline": False, **extra}


def heatmap(grid: Grid, *, number_format: str = ".2f") -> Figure:
    """Cells coloured on the report's sequential scale, each labelled with its value; the first row on top."""
    trace = go.Heatmap(
        z=[list(row) for row in grid.values], x=[label(column) for column in grid.columns],
        y=[label(row) for row in grid.rows], colorscale=theme.plotly_heat_scale(), zmin=0,
        texttemplate=f"%{{z:{number_format}}}", textfont={"size": 11}, xgap=2, ygap=2,
        hovertemplate=f"{label(grid.row_title)} %{{y}} · %{{x}}<br>{label(grid.title)}: %{{z:.4f}}<extra></extra>",
        colorbar={"title": {"text": label(grid.title), "side": "right"}, "thickness": 12},
    )
    return _figure([trace], 90 + ROW_PX * len(grid.rows),
                   xaxis=_axis(type="category", side="top", showgrid=False),
                   yaxis=_axis(label(grid.row_title), type="category", autorange="reversed", showgrid=False),
                   margin={"l": 70, "r": 20, "t": 50, "b": 20})


def spectra(tensors: tuple[TensorDiff, ...]) -> Figure:
    """The singular values σᵢ of each tensor's ΔW, largest first, on a log axis."""
    data = []
    for index, tensor in enumerate(tensors):
        values = [value for value in tensor.singular_values or () if value > 0]  # no room for 0 on a log axis
        data.append(go.Scatter(
            x=list(range(1, len(values) + 1)), y=values, mode="lines+markers", name=label(tensor.display_name),
            line={"color": theme.SERIES_COLORS[index % len(theme.SERIES_COLORS)], "width": 2}, marker={"size": 4},
            hovertemplate=f"{label(tensor.display_name)}<br>σ<sub>%{{x}}</sub> = %{{y:.4g}}<extra></extra>",
        ))
    return _figure(data, 360 + 22 * ((len(tensors) + 1) // 2), xaxis=_axis("index i"),
                   yaxis=_axis("σᵢ of ΔW (log scale)", type="log"),
                   legend={"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"},
                   margin={"l": 60, "r": 20, "t": 20, "b": 40})


def paired_bars(items: tuple[Paired, ...], *, axis_title: str, rate: bool) -> Figure:
    """Base and post-trained bars side by side per measure (✱: significant)."""
    labels = [label(item.marked) for item in items]
    number = ".0%" if rate else ".3g"
    data = [
        go.Bar(y=labels, x=[getattr(item, side) for item in items], name=name, orientation="h",
               marker={"color": color}, hovertemplate=f"%{{y}}<br>{name}: %{{x:{number}}}<extra></extra>")
        for side, name, color in (("base", theme.BASE_LABEL, theme.BASE_COLOR),
                                  ("trained", theme.TRAINED_LABEL, theme.TRAINED_COLOR))
    ]
    x_axis = _axis(axis_title, rangemode="tozero", **({"range": [0, 1], "tickformat": number} if rate else {}))
    return _figure(data, 90 + 2 * BAR_PX * len(items) + 6 * len(items), barmode="group", bargap=0.25,
                   xaxis=x_axis, yaxis=_axis(autorange="reversed", automargin=True, type="category"),
                   margin={"l": 10, "r": 20, "t": 40, "b": 45})


def layer_curves(layers: tuple[int, ...], curves: tuple[LayerCurve, ...]) -> Figure:
    """Each per-layer measure in a panel of its own (their units differ), layer on the x axis."""
    figure = make_subplots(rows=1, cols=len(curves), subplot_titles=[label(curve.name) for curve in curves],
                           horizontal_spacing=0.07)
    for column, curve in enumerate(curves, start=1):
        figure.add_trace(go.Scatter(
            x=list(layers), y=list(curve.values), mode="lines+markers", showlegend=False,
            line={"color": theme.ACCENT, "width": 2}, marker={"size": 5},
            hovertemplate=f"layer %{{x}}<br>{label(curve.name)}: %{{y:.4g}}<extra></extra>",
        ), row=1, col=column)
    figure.update_xaxes(_axis("layer", tickmode="array", tickvals=list(layers)))
    figure.update_yaxes(_axis(rangemode="tozero"))
    figure.update_layout(_layout(280, margin={"l": 40, "r": 20, "t": 40, "b": 45}))
    return json.loads(figure.to_json())


def lens_heatmap(grid: LensGrid) -> Figure:
    """KL(post-trained ‖ base) of the two models' logit lenses per layer × input position; hovering a cell
    shows the input token there and each model's top lens token (every token a label: model vocabulary)."""
    positions = list(range(len(grid.tokens)))
    tokens = [label(token) for token in grid.tokens]
    hover = [[[label(base), label(trained), tokens[position], position]
              for position, (base, trained) in enumerate(zip(base_row, trained_row))]
             for base_row, trained_row in zip(grid.base_top, grid.trained_top)]
    trace = go.Heatmap(
        z=[list(row) for row in grid.kl], x=positions, y=list(range(len(grid.kl))), customdata=hover,
        colorscale=theme.plotly_heat_scale(), zmin=0, xgap=1, ygap=1,
        hovertemplate=(f"layer %{{y}} · position %{{customdata[3]}}: %{{customdata[2]}}<br>KL %{{z:.3f}} nats<br>"
                       f"{theme.BASE_LABEL} top: %{{customdata[0]}}<br>{theme.TRAINED_LABEL} top: %{{customdata[1]}}"
                       "<extra></extra>"),
        colorbar={"title": {"text": "KL (nats)", "side": "right"}, "thickness": 12},
    )
    return _figure([trace], 110 + ROW_PX * len(grid.kl),
                   xaxis=_axis(tickmode="array", tickvals=positions, ticktext=tokens, tickangle=-60, showgrid=False),
                   yaxis=_axis("layer", tickmode="array", tickvals=list(range(len(grid.kl))), showgrid=False),
                   margin={"l": 60, "r": 20, "t": 20, "b": 70})


def localization_bars(localization: LocalizationView) -> Figure:
    """Per decoder block, the share of the KL gap it closes (post-trained block in the base) and opens (base
    block in the post-trained model), side by side."""
    layers = list(localization.layers)
    data = [
        go.Bar(x=layers, y=list(values), name=name, marker={"color": color},
               hovertemplate=f"block %{{x}}<br>{name}: %{{y:.1%}}<extra></extra>")
        for values, name, color in ((localization.kl_recovered, CLOSED_BY_TRAINED_BLOCK, theme.TRAINED_COLOR),
                                    (localization.reverse_kl_recovered, OPENED_BY_BASE_BLOCK, theme.BASE_COLOR))
    ]
    return _figure(data, 300, barmode="group", bargap=0.25,
                   xaxis=_axis("decoder block", tickmode="array", tickvals=layers),
                   yaxis=_axis("share of the KL gap", tickformat=".0%", rangemode="tozero"))


def amplification_curves(amplification: AmplificationView) -> Figure:
    """Per detector that counts a behaviour, its rate at each α with the 95 % interval as error bars."""
    series: dict[str, list[RatePoint]] = {}
    for point in amplification.points:
        series.setdefault(point.detector, []).append(point)
    data = [
        go.Scatter(
            x=[point.alpha for point in points], y=[point.rate for point in points], mode="lines+markers",
            name=label(title), line={"color": theme.SERIES_COLORS[index % len(theme.SERIES_COLORS)], "width": 2},
            marker={"size": 6},
            error_y={"type": "data", "symmetric": False, "array": [point.rate_high - point.rate for point in points],
                     "arrayminus": [point.rate - point.rate_low for point in points], "thickness": 1.2, "width": 4},
            hovertemplate=f"{label(title)}<br>α = %{{x:g}}: %{{y:.1%}} of answers<extra></extra>",
        )
        for index, (title, points) in enumerate(series.items())
    ]
    return _figure(data, 320, xaxis=_axis("α", tickmode="array", tickvals=list(amplification.alphas)),
                   yaxis=_axis("rate of the behaviour (95 % interval)", tickformat=".0%", range=[0, 1.05]))


def length_histogram(generations: GenerationsResult) -> Figure:
    """How many tokens each answer took, both models overlaid."""
    data = [
        go.Histogram(x=[completion.n_tokens for completion in completions], name=name, opacity=0.8,
                     marker={"color": color}, nbinsx=24,
                     hovertemplate=f"{name}: %{{y}} answers of %{{x}} tokens<extra></extra>")
        for completions, name, color in ((generations.base, theme.BASE_LABEL, theme.BASE_COLOR),
                                         (generations.trained, theme.TRAINED_LABEL, theme.TRAINED_COLOR))
    ]
    return _figure(data, 320, barmode="overlay", xaxis=_axis("output tokens per answer"), yaxis=_axis("answers"))


#: The band edges as gauge steps behind the bar, lightly tinted so the bar's colour stays the strongest mark.
BAND_STEPS = ((0.0, MODERATE_FROM, "LOW"), (MODERATE_FROM, HIGH_FROM, "MODERATE"),
              (HIGH_FROM, CRITICAL_FROM, "HIGH"), (CRITICAL_FROM, 100.0, "CRITICAL"))


def gauge_indicator(score: float | None, band: str, title: str) -> go.Indicator:
    """A 0–100 gauge whose bar takes the colour of ``band`` over the tinted bands; the report and the
    dashboard's Reward hacking page draw the same one. None (nothing to read) is a grey gauge with no
    number: not measured is not 0."""
    color = theme.BAND_COLORS.get(band, theme.UNAVAILABLE_COLOR) if score is not None else theme.UNAVAILABLE_COLOR
    return go.Indicator(
        mode="gauge+number" if score is not None else "gauge", value=score if score is not None else 0,
        number={"valueformat": ".0f", "font": {"color": color}},
        title={"text": label(title), "font": {"size": 13}},
        gauge={"axis": {"range": [0, 100], "tickvals": [0, MODERATE_FROM, HIGH_FROM, CRITICAL_FROM, 100]},
               "bar": {"color": color, "thickness": 0.3},
               "steps": [{"range": [low, high], "color": _tint(theme.BAND_COLORS[name])}
                         for low, high, name in BAND_STEPS]},
    )


def _tint(color: str) -> str:
    """``color`` at 18 % opacity."""
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.18)"


def gauge(score: float | None, band: str, title: str, *, height: int = 190) -> Figure:
    """``gauge_indicator`` as a report figure."""
    return _figure([gauge_indicator(score, band, title)], height, margin={"l": 35, "r": 35, "t": 45, "b": 10})
