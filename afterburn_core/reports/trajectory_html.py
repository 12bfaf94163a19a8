"""The trajectory report as one self-contained HTML file that opens offline.

Sections in the order of ``views.trajectory.SECTION_TITLES``: which checkpoint to ship, then the
composite risk over its bands and each detector's score per step (flagged steps as diamonds, each
emergence a dotted line) with what the trainer logged, the weight drift against the base and the
previous checkpoint and per module type, the behaviour metrics per step against the base's value, and
the tables of steps and of checkpoints with their runs. Each chart has the view's readings under it.

Plotly's bundle is embedded once and the figures sit in one JSON block, as in the run report
(``reports.html``: its render script, its Content Security Policy through ``html_template.page``).
Every string goes through ``html_template.tag`` (escaped) or, in a chart, ``html_charts.label``, so a
checkpoint folder's name is text, never markup. Cost: the plotly bundle (~4.8 MB) plus a few kB per chart.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from afterburn_core import __version__
from afterburn_core.reports.html import FIGURES_ID, RENDER_SCRIPT
from afterburn_core.reports.html_charts import label
from afterburn_core.reports.html_template import Safe, join, json_block, page, tag
from afterburn_core.trajectory.types import TrajectoryResult
from afterburn_core.views import theme, wording
from afterburn_core.views.trajectory import (
    BAND_RANGES,
    CHECKPOINT_COLUMNS,
    SECTION_TITLES,
    Series,
    TrajectoryView,
    trajectory_view,
)

CHART_HEIGHT_PX = 300
SMALL_CHART_HEIGHT_PX = 230


def step_figure(series: tuple[Series, ...], *, rate: bool = False, score: bool = False,
                base_value: float | None = None, height: int = CHART_HEIGHT_PX) -> dict[str, Any]:
    """Each series as a line over the training steps; ``score``: a 0–100 axis over the tinted bands."""
    number = ".0%" if rate else ".3g"
    data = []
    for index, line in enumerate(series):
        color = theme.SERIES_COLORS[index % len(theme.SERIES_COLORS)]
        data.append(go.Scatter(
            x=[point.step for point in line.points], y=[point.value for point in line.points], name=label(line.title),
            mode="lines+markers", line={"color": color, "width": 2},
            marker={"size": [12 if point.flagged else 7 for point in line.points],
                    "symbol": ["diamond" if point.flagged else "circle" for point in line.points]},
            customdata=[[label(point.run_id), "flagged" if point.flagged else "", point.band or ""]
                        for point in line.points],
            hovertemplate=(f"{label(line.title)}<br>step %{{x}}: %{{y:{number}}} %{{customdata[2]}} "
                           "%{customdata[1]}<br>run %{customdata[0]}<extra></extra>"),
        ))
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": line.emergence.at_step, "x1": line.emergence.at_step,
               "y0": 0, "y1": 1, "line": {"color": theme.SERIES_COLORS[index % len(theme.SERIES_COLORS)],
                                          "dash": "dot", "width": 1.5}}
              for index, line in enumerate(series) if line.emergence]
    if score:
        shapes += [{"type": "rect", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": low, "y1": high,
                    "fillcolor": theme.BAND_COLORS[band], "opacity": 0.1, "line": {"width": 0}, "layer": "below"}
                   for low, high, band in BAND_RANGES]
    if base_value is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": base_value,
                       "y1": base_value, "line": {"color": theme.BASE_COLOR, "dash": "dash", "width": 1}})
    steps = sorted({point.step for line in series for point in line.points})
    y_axis = {"range": [0, 100]} if score else {"range": [0, 1.05], "tickformat": ".0%"} if rate else {
        "rangemode": "tozero"}
    figure = go.Figure(data=data, layout={
        "template": "none", "height": height, "shapes": shapes, "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "font": {"family": "-apple-system, Segoe UI, Roboto, Arial, sans-serif", "size": 12, "color": theme.INK},
        "margin": {"l": 55, "r": 20, "t": 40, "b": 45},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "xaxis": {"title": {"text": "training step"}, "tickmode": "array", "tickvals": steps,
                  "gridcolor": theme.RULE, "zeroline": False},
        "yaxis": {"gridcolor": theme.RULE, "zeroline": False, **y_axis},
    })
    return json.loads(figure.to_json())


class _Charts:
    """The figures of the page, each given a div id in the order it appears."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def div(self, figure: dict[str, Any]) -> Safe:
        chart_id = f"chart-{len(self.figures) + 1}"
        self.figures[chart_id] = figure
        return tag("div", id=chart_id, class_="chart", role="img")


def _readings(series: tuple[Series, ...]) -> Safe:
    return tag("ul", (tag("li", line.reading) for line in series), class_="readings")


def _section(key: str, *children: object) -> Safe:
    return tag("section", tag("h2", SECTION_TITLES[key]), *children, id=key, class_="wrap")


def _table(headers: tuple[str, ...], rows: tuple[tuple[str, ...], ...], mono: tuple[int, ...] = ()) -> Safe:
    return tag("table", tag("thead", tag("tr", (tag("th", header) for header in headers))),
               tag("tbody", (tag("tr", (tag("td", cell, class_="mono" if index in mono else None)
                                        for index, cell in enumerate(row))) for row in rows)))


def _risk(view: TrajectoryView, charts: _Charts) -> Safe:
    measured = tuple(line for line in view.detectors if any(point.value is not None for point in line.points))
    parts: list[object] = [charts.div(step_figure((view.composite,), score=True)), _readings((view.composite,)),
                           charts.div(step_figure(measured, score=True)), _readings(view.detectors)]
    if view.logged:
        parts += [tag("h3", SECTION_TITLES["logged"]),
                  tag("div", (charts.div(step_figure((line,), height=SMALL_CHART_HEIGHT_PX)) for line in view.logged),
                      class_="grid2"), _readings(view.logged)]
    return _section("risk", *parts)


def _weights(view: TrajectoryView, charts: _Charts) -> Safe:
    return _section("weights", charts.div(step_figure(view.drift)), _readings(view.drift),
                    charts.div(step_figure(view.modules)), _readings(view.modules))


def _behaviour(view: TrajectoryView, charts: _Charts) -> Safe:
    panels = (tag("div", charts.div(step_figure((line,), rate=line.is_rate, base_value=line.base_value,
                                                height=SMALL_CHART_HEIGHT_PX)), tag("p", line.reading, class_="note"))
              for line in view.behaviour)
    return _section("behaviour", tag("div", panels, class_="grid2"))


def _masthead(result: TrajectoryResult, view: TrajectoryView, generated_at: float) -> Safe:
    return tag("header", tag("div",
        tag("div", "Afterburn trajectory report", class_="eyebrow"), tag("h1", view.title),
        tag("div", f"base {result.base.reference} ({result.base.fingerprint}) · method {result.method} · report by "
                   f"afterburn {__version__} on {wording.when(generated_at)}", class_="meta"),
        class_="wrap"), class_="masthead")


def render_trajectory_html(result: TrajectoryResult, generated_at: float) -> str:
    """The trajectory as one self-contained HTML document."""
    view = trajectory_view(result)
    charts = _Charts()
    body = tag("main",
               tag("section", tag("h2", "Which checkpoint to ship"), tag("p", view.recommendation, class_="lead"),
                   class_="wrap"),
               _risk(view, charts), _weights(view, charts), _behaviour(view, charts),
               _section("checkpoints", _table(view.columns, view.rows),
                        _table(CHECKPOINT_COLUMNS, view.checkpoints, mono=(1, 3, 4))))
    return page(title=f"Afterburn trajectory: {view.title}",
                body=join(_masthead(result, view, generated_at), body, json_block(charts.figures, FIGURES_ID)),
                scripts=(get_plotlyjs(), RENDER_SCRIPT))
