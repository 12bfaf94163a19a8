"""The trajectory report as a PDF (reportlab): the recommendation, charts over the steps, readings, tables.

The parts of the HTML trajectory report (``views.trajectory.SECTION_TITLES``); each chart is a
reportlab drawing (``step_lines``): the series as lines over the training steps, flagged steps as
diamonds, each emergence a dashed line, the bands tinted behind a 0–100 score. Paragraph styles and
tables are the run report's (``reports.pdf``); every string reaches a ``Paragraph`` through
``pdf_fonts.markup`` and a drawing through ``pdf_fonts.drawable``, so a checkpoint folder's name is text.
"""

from __future__ import annotations


from reportlab.graphics.shapes import Drawing, Line, PolyLine, Polygon, Rect, String
from reportlab.lib.colors import HexColor
from reportlab.platypus import CondPageBreak, KeepTogether, Spacer
from reportlab.lib.units import mm

from afterburn_core import __version__
from afterburn_core.reports.pdf import WIDTH, Styles, build_a4, paragraph, table
from afterburn_core.reports.pdf_fonts import drawable, fonts, markup
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

PLOT_HEIGHT = 110
#: Room left of the plot for the value ticks, below it for the steps, above it for the legend.
LEFT, BOTTOM, LEGEND_ROW = 34, 18, 11
#: How strongly the bands are tinted behind a score: light, so the lines stay the strongest mark.
BAND_OPACITY = 0.12
#: Legend labels longer than this are cut (the readings under the chart hold them whole).
LEGEND_CHARS = 40


def _text(x: float, y: float, text: str, *, size: float = 6.5, color: str = theme.MUTED,
          anchor: str = "start") -> String:
    return String(x, y, drawable(text, keep=""), fontName=fonts().family, fontSize=size, fillColor=HexColor(color),
                  textAnchor=anchor)


def _tick(value: float, rate: bool) -> str:
    return f"{value:.0%}" if rate else f"{value:.3g}"


def step_lines(series: tuple[Series, ...], width: float, *, rate: bool = False, score: bool = False,
               base_value: float | None = None) -> Drawing:
    """Each series as a line over the steps (see the module docstring), its legend above."""
    steps = sorted({point.step for line in series for point in line.points})
    values = [point.value for line in series for point in line.points if point.value is not None]
    top = 100.0 if score else 1.0 if rate else max([*values, base_value or 0.0, 0.0]) or 1.0
    legend_rows = (len(series) + 1) // 2
    drawing = Drawing(width, PLOT_HEIGHT + BOTTOM + 6 + LEGEND_ROW * legend_rows)
    plot_width = width - LEFT - 8
    span = (steps[-1] - steps[0]) or 1

    def x_of(step: int) -> float:
        return LEFT + plot_width * ((step - steps[0]) / span if len(steps) > 1 else 0.5)

    def y_of(value: float) -> float:
        return BOTTOM + PLOT_HEIGHT * max(0.0, value) / top

    if score:
        for low, high, band in BAND_RANGES:
            drawing.add(Rect(LEFT, y_of(low), plot_width, y_of(high) - y_of(low), strokeColor=None,
                             fillColor=HexColor(theme.BAND_COLORS[band]), fillOpacity=BAND_OPACITY))
    for tick in (0.0, top / 2, top):
        drawing.add(Line(LEFT, y_of(tick), LEFT + plot_width, y_of(tick), strokeColor=HexColor(theme.RULE),
                         strokeWidth=0.5))
        drawing.add(_text(LEFT - 4, y_of(tick) - 2.5, _tick(tick, rate), anchor="end"))
    for step in steps:
        drawing.add(_text(x_of(step), BOTTOM - 10, str(step), anchor="middle"))
    if base_value is not None:
        drawing.add(Line(LEFT, y_of(base_value), LEFT + plot_width, y_of(base_value),
                         strokeColor=HexColor(theme.BASE_COLOR), strokeWidth=0.8, strokeDashArray=[3, 2]))
    for index, line in enumerate(series):
        color = HexColor(theme.SERIES_COLORS[index % len(theme.SERIES_COLORS)])
        measured = [point for point in line.points if point.value is not None]
        if len(measured) > 1:
            drawing.add(PolyLine([c for point in measured for c in (x_of(point.step), y_of(point.value))],
                                 strokeColor=color, strokeWidth=1.3))
        for point in measured:
            x, y = x_of(point.step), y_of(point.value)
            radius = 3.5 if point.flagged else 1.8
            drawing.add(Polygon([x, y - radius, x + radius, y, x, y + radius, x - radius, y], fillColor=color,
                                strokeColor=None) if point.flagged else
                        Rect(x - radius, y - radius, 2 * radius, 2 * radius, fillColor=color, strokeColor=None))
        if line.emergence is not None:
            x = x_of(line.emergence.at_step)
            drawing.add(Line(x, BOTTOM, x, BOTTOM + PLOT_HEIGHT, strokeColor=color, strokeWidth=0.8,
                             strokeDashArray=[2, 2]))
        legend_x = (index % 2) * (width / 2)
        legend_y = BOTTOM + PLOT_HEIGHT + 6 + LEGEND_ROW * (legend_rows - 1 - index // 2)
        drawing.add(Rect(legend_x, legend_y + 2, 10, 2.5, fillColor=color, strokeColor=None))
        title = line.title if len(line.title) <= LEGEND_CHARS else line.title[:LEGEND_CHARS - 1] + "…"
        drawing.add(_text(legend_x + 14, legend_y, title, size=7, color=theme.INK))
    return drawing


def _readings(series: tuple[Series, ...], styles: Styles) -> list:
    return [paragraph(f"• {markup(line.reading)}", styles.small) for line in series]


def _section(key: str, styles: Styles) -> list:
    return [CondPageBreak(70 * mm), paragraph(SECTION_TITLES[key], styles.h1)]


def _story(result: TrajectoryResult, view: TrajectoryView, generated_at: float, styles: Styles) -> list:
    story = [
        paragraph("Afterburn trajectory report", styles.title), Spacer(1, 3 * mm),
        paragraph(markup(view.title), styles.subtitle), Spacer(1, 2 * mm),
        paragraph(markup(f"base {result.base.reference} ({result.base.fingerprint}) · method {result.method} · "
                         f"report by afterburn {__version__} on {wording.when(generated_at)}"), styles.muted),
        paragraph("Which checkpoint to ship", styles.h1), paragraph(markup(view.recommendation), styles.body),
        *_section("risk", styles),
        KeepTogether([step_lines((view.composite,), WIDTH, score=True), *_readings((view.composite,), styles)]),
        Spacer(1, 3 * mm),
        step_lines(tuple(line for line in view.detectors if any(point.value is not None for point in line.points)),
                   WIDTH, score=True),
        *_readings(view.detectors, styles),
    ]
    if view.logged:
        # The heading goes with the first chart: a heading alone at the foot of a page reads as a missing chart.
        story += [KeepTogether([*([paragraph(SECTION_TITLES["logged"], styles.h2)] if first else []),
                                step_lines((line,), WIDTH), *_readings((line,), styles)])
                  for first, line in zip([True, *[False] * len(view.logged)], view.logged)]
    story += [*_section("weights", styles), step_lines(view.drift, WIDTH), *_readings(view.drift, styles),
              Spacer(1, 3 * mm), step_lines(view.modules, WIDTH), *_readings(view.modules, styles)]
    story += _section("behaviour", styles)
    story += [KeepTogether([step_lines((line,), WIDTH, rate=line.is_rate, base_value=line.base_value),
                            *_readings((line,), styles), Spacer(1, 2 * mm)]) for line in view.behaviour]
    share = 1 / len(view.columns)
    story += [*_section("checkpoints", styles),
              table(tuple(map(markup, view.columns)), [tuple(map(markup, row)) for row in view.rows], styles,
                    (share,) * len(view.columns)),
              Spacer(1, 3 * mm),
              table(CHECKPOINT_COLUMNS, [tuple(map(markup, row)) for row in view.checkpoints], styles,
                    (0.08, 0.5, 0.14, 0.14, 0.14))]
    return story


def render_trajectory_pdf(result: TrajectoryResult, generated_at: float) -> bytes:
    """The trajectory as PDF bytes (A4)."""
    styles = Styles()
    view = trajectory_view(result)
    footer = drawable(f"Afterburn trajectory · {view.title}", keep="")
    return build_a4(_story(result, view, generated_at, styles), footer, footer, f"afterburn {__version__}")
