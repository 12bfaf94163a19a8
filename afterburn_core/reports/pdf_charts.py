"""The PDF report's charts, drawn with reportlab's own graphics (vector, no image library).

A heatmap of rectangles on the report's sequential scale, paired bars
(base and post-trained in their two colours), singular-value spectra on a log
axis, 0–100 gauges in their band's colour with their scale marked, and the internals' per-layer curves
as small panels side by side, and the share of the KL gap each decoder block
closes and opens (layer localization). Each function returns a
``Drawing`` of the width it is given; every label passes ``pdf_fonts.drawable``
(a ``String`` is not markup, so no XML escaping is needed). Knows nothing of
runs: it draws what ``digest`` selected.
"""

from __future__ import annotations

import math

from reportlab.graphics.shapes import Drawing, Line, PolyLine, Rect, String, Wedge
from reportlab.lib.colors import HexColor

from afterburn_core.reward_hack.scoring import CRITICAL_FROM, HIGH_FROM, MODERATE_FROM
from afterburn_core.views import theme
from afterburn_core.reports.pdf_fonts import drawable, fonts
from afterburn_core.views.behaviour import Paired
from afterburn_core.views.internals import LayerCurve
from afterburn_core.views.internals_causal import CLOSED_BY_TRAINED_BLOCK, OPENED_BY_BASE_BLOCK, LocalizationView
from afterburn_core.views.weights import Grid
from afterburn_core.weights.types import TensorDiff

CELL_HEIGHT = 15
BAR_HEIGHT = 5.5
LABEL_WIDTH = 120
#: Longest label drawn beside a chart; a longer one is cut (the tables beside hold it whole).
LABEL_CHARS = 26
#: A gauge's width (points) where it has room: a third of a page's text column.
GAUGE_SIZE = 110
#: The gauge's marked values: its ends and the band edges (the HTML gauge's ticks).
GAUGE_TICKS = (0.0, MODERATE_FROM, HIGH_FROM, CRITICAL_FROM, 100.0)


def _text(x: float, y: float, text: str, *, size: float = 7.5, color: str = theme.INK, anchor: str = "start",
          bold: bool = False) -> String:
    return String(x, y, drawable(text, keep=""), fontName=fonts().bold if bold else fonts().family, fontSize=size,
                  fillColor=HexColor(color), textAnchor=anchor)


def _cut(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _legend(drawing: Drawing, x: float, y: float) -> None:
    for offset, (name, color) in enumerate(((theme.BASE_LABEL, theme.BASE_COLOR),
                                            (theme.TRAINED_LABEL, theme.TRAINED_COLOR))):
        left = x + offset * 80
        drawing.add(Rect(left, y, 8, 8, fillColor=HexColor(color), strokeColor=None))
        drawing.add(_text(left + 11, y + 1, name))


def heatmap(grid: Grid, width: float) -> Drawing:
    """One rectangle per cell coloured by its value (blank where there is none), labelled with the value."""
    values = [value for row in grid.values for value in row if value is not None]
    top = max(values, default=0.0) or 1.0
    label_width, legend_width = 48, 56
    cell_width = (width - label_width - legend_width) / max(1, len(grid.columns))
    height = CELL_HEIGHT * len(grid.rows) + 30
    drawing = Drawing(width, height)
    for column_index, column in enumerate(grid.columns):
        drawing.add(_text(label_width + (column_index + 0.5) * cell_width, height - 12, _cut(column, 8),
                          anchor="middle"))
    for row_index, (row, values_in_row) in enumerate(zip(grid.rows, grid.values)):
        y = height - 20 - CELL_HEIGHT * (row_index + 1)
        drawing.add(_text(label_width - 6, y + 4.5, _cut(row, 10), anchor="end"))
        for column_index, value in enumerate(values_in_row):
            if value is None:
                continue
            fill = theme.heat_color(value / top)
            x = label_width + column_index * cell_width
            drawing.add(Rect(x + 0.6, y + 0.6, cell_width - 1.2, CELL_HEIGHT - 1.2, fillColor=HexColor(fill),
                             strokeColor=None))
            drawing.add(_text(x + cell_width / 2, y + 4.5, f"{value:.2f}", size=6.5, color=theme.ink_on(fill),
                              anchor="middle"))
    steps = 24
    legend_x, legend_bottom = width - legend_width + 14, height - 20 - CELL_HEIGHT * len(grid.rows)
    step_height = CELL_HEIGHT * len(grid.rows) / steps
    for step in range(steps):
        drawing.add(Rect(legend_x, legend_bottom + step * step_height, 9, step_height + 0.3,
                         fillColor=HexColor(theme.heat_color(step / (steps - 1))), strokeColor=None))
    drawing.add(_text(legend_x + 12, legend_bottom, "0", size=6.5))
    drawing.add(_text(legend_x + 12, legend_bottom + steps * step_height - 6, f"{top:.2f}", size=6.5))
    return drawing


def _ticks(top: float, rate: bool) -> list[float]:
    if rate:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    step = 10 ** math.floor(math.log10(top)) if top > 0 else 1.0
    while top / step > 5:
        step *= 2
    return [step * index for index in range(int(top / step) + 2)]


def paired_bars(items: tuple[Paired, ...], width: float, *, title: str, rate: bool) -> Drawing:
    """Base and post-trained bars per measure, one row each (✱: significant)."""
    row_height = 2 * BAR_HEIGHT + 7
    plot_height = row_height * len(items)
    height = plot_height + 44
    drawing = Drawing(width, height)
    drawing.add(_text(0, height - 10, title, size=8.5, bold=True))
    _legend(drawing, width - 170, height - 11)
    ticks = _ticks(max([max(item.base, item.trained) for item in items] + [0.0]), rate)
    scale = (width - LABEL_WIDTH - 10) / ticks[-1]
    bottom = 18
    for tick in ticks:
        x = LABEL_WIDTH + tick * scale
        drawing.add(Line(x, bottom, x, bottom + plot_height, strokeColor=HexColor(theme.RULE), strokeWidth=0.5))
        drawing.add(_text(x, bottom - 10, f"{tick:.0%}" if rate else f"{tick:g}", size=6.5, anchor="middle",
                          color=theme.MUTED))
    for index, item in enumerate(items):
        y = bottom + plot_height - row_height * (index + 1) + 3.5
        shown = _cut(item.label) + (" ✱" if item.significant else "")
        drawing.add(_text(LABEL_WIDTH - 6, y + BAR_HEIGHT - 2.5, shown, anchor="end"))
        for offset, (value, color) in enumerate(((item.base, theme.BASE_COLOR), (item.trained, theme.TRAINED_COLOR))):
            drawing.add(Rect(LABEL_WIDTH, y + (1 - offset) * BAR_HEIGHT, max(0.0, value * scale), BAR_HEIGHT,
                             fillColor=HexColor(color), strokeColor=None))
    return drawing


def spectra(tensors: tuple[TensorDiff, ...], width: float) -> Drawing:
    """σᵢ of each tensor's ΔW against i, log-scaled, one line per tensor with a legend below."""
    curves = [[value for value in tensor.singular_values or () if value > 0] for tensor in tensors]
    everything = [value for curve in curves for value in curve]
    legend_rows = (len(tensors) + 1) // 2
    plot_height, left, bottom = 150, 40, 26 + 12 * legend_rows
    drawing = Drawing(width, plot_height + bottom + 12)
    if not everything:
        return drawing
    low, high = math.floor(math.log10(min(everything))), math.ceil(math.log10(max(everything)))
    high = max(high, low + 1)
    longest = max(len(curve) for curve in curves)
    plot_width = width - left - 10

    def position(index: int, value: float) -> tuple[float, float]:
        x = left + plot_width * (index / max(1, longest - 1))
        return x, bottom + plot_height * (math.log10(value) - low) / (high - low)

    for decade in range(low, high + 1):
        y = bottom + plot_height * (decade - low) / (high - low)
        drawing.add(Line(left, y, left + plot_width, y, strokeColor=HexColor(theme.RULE), strokeWidth=0.5))
        drawing.add(_text(left - 4, y - 2.5, f"1e{decade}", size=6.5, anchor="end", color=theme.MUTED))
    drawing.add(_text(left + plot_width / 2, bottom - 14, f"index i (1 … {longest})", size=7, anchor="middle",
                      color=theme.MUTED))
    for number, (tensor, curve) in enumerate(zip(tensors, curves)):
        color = HexColor(theme.SERIES_COLORS[number % len(theme.SERIES_COLORS)])
        if len(curve) > 1:
            points = [coordinate for index, value in enumerate(curve) for coordinate in position(index, value)]
            drawing.add(PolyLine(points, strokeColor=color, strokeWidth=1.2))
        legend_x = (number % 2) * (width / 2)
        legend_y = bottom - 28 - 12 * (number // 2)
        drawing.add(Rect(legend_x, legend_y + 2, 10, 2.5, fillColor=color, strokeColor=None))
        drawing.add(_text(legend_x + 14, legend_y, _cut(tensor.display_name, 52), size=7))
    return drawing


def layer_curves(layers: tuple[int, ...], curves: tuple[LayerCurve, ...], width: float) -> Drawing:
    """Each per-layer measure in a small panel of its own (their units differ): 0 to its maximum, layers across."""
    gap, plot_height, bottom = 14, 70, 16
    panel_width = (width - gap * (len(curves) - 1)) / max(1, len(curves))
    drawing = Drawing(width, plot_height + bottom + 24)
    for number, curve in enumerate(curves):
        left = number * (panel_width + gap)
        top = max(curve.values, default=0.0) or 1.0
        drawing.add(_text(left, plot_height + bottom + 12, _cut(curve.name, 34), size=7, bold=True))
        drawing.add(_text(left, plot_height + bottom + 3, f"max {top:.3g}", size=6.5, color=theme.MUTED))
        drawing.add(Rect(left, bottom, panel_width, plot_height, fillColor=None, strokeColor=HexColor(theme.RULE),
                         strokeWidth=0.5))

        def position(index: int, value: float, left: float = left, top: float = top) -> tuple[float, float]:
            return (left + panel_width * index / max(1, len(layers) - 1),
                    bottom + plot_height * max(0.0, value) / top)

        points = [coordinate for index, value in enumerate(curve.values) for coordinate in position(index, value)]
        if len(curve.values) > 1:
            drawing.add(PolyLine(points, strokeColor=HexColor(theme.ACCENT), strokeWidth=1.2))
        if layers:
            drawing.add(_text(left, bottom - 9, f"layer {layers[0]}", size=6.5, color=theme.MUTED))
            drawing.add(_text(left + panel_width, bottom - 9, str(layers[-1]), size=6.5, color=theme.MUTED,
                              anchor="end"))
    return drawing


def localization_bars(localization: LocalizationView, width: float) -> Drawing:
    """Per decoder block two bars, the gap share closed and opened, on an axis from the lowest share (0 or
    below) to the highest (100 % or above); the legend names each swap as the table's columns do."""
    series = ((localization.kl_recovered, CLOSED_BY_TRAINED_BLOCK, theme.TRAINED_COLOR),
              (localization.reverse_kl_recovered, OPENED_BY_BASE_BLOCK, theme.BASE_COLOR))
    low = min([0.0, *localization.kl_recovered, *localization.reverse_kl_recovered])
    high = max([1.0, *localization.kl_recovered, *localization.reverse_kl_recovered])
    left, bottom, plot_height = 34, 18, 110
    drawing = Drawing(width, plot_height + bottom + 22)
    plot_width = width - left - 6

    def y_of(value: float) -> float:
        return bottom + plot_height * (value - low) / (high - low)

    for tick in (low, 0.0, 0.5, 1.0, high) if low < 0 or high > 1 else (0.0, 0.25, 0.5, 0.75, 1.0):
        drawing.add(Line(left, y_of(tick), left + plot_width, y_of(tick), strokeColor=HexColor(theme.RULE),
                         strokeWidth=0.5))
        drawing.add(_text(left - 4, y_of(tick) - 2.5, f"{tick:.0%}", size=6.5, anchor="end", color=theme.MUTED))
    slot = plot_width / max(1, len(localization.layers))
    bar = min(14.0, slot * 0.35)
    for index, layer in enumerate(localization.layers):
        center = left + slot * (index + 0.5)
        for offset, (values, _, color) in enumerate(series):
            drawing.add(Rect(center - bar + offset * bar, min(y_of(0.0), y_of(values[index])), bar,
                             abs(y_of(values[index]) - y_of(0.0)), fillColor=HexColor(color), strokeColor=None))
        drawing.add(_text(center, bottom - 10, str(layer), size=6.5, anchor="middle", color=theme.MUTED))
    x = left
    for _, name, color in series:
        drawing.add(Rect(x, plot_height + bottom + 10, 8, 8, fillColor=HexColor(color), strokeColor=None))
        legend = _text(x + 11, plot_height + bottom + 11, name)
        drawing.add(legend)
        x = legend.getBounds()[2] + 16  # the next entry starts after this one's text, however long
    return drawing


def gauge(score: float, band: str, title: str, *, available: bool = True, size: float = GAUGE_SIZE) -> Drawing:
    """A half-ring from 0 to 100 filled up to ``score`` in the colour of ``band``, the score in its middle, the
    scale's ends and band edges marked around it (as the HTML gauge's ticks). Unavailable: grey, no number
    (not measured is not 0)."""
    color = theme.BAND_COLORS.get(band, theme.UNAVAILABLE_COLOR) if available else theme.UNAVAILABLE_COLOR
    radius = size / 2 - 6
    height = radius + 50
    drawing = Drawing(size, height)
    center_x, center_y = size / 2, 22
    drawing.add(Wedge(center_x, center_y, radius, 0, 180, radius1=radius * 0.68, fillColor=HexColor(theme.PANEL),
                      strokeColor=HexColor(theme.RULE), strokeWidth=0.5))
    filled = max(0.0, min(100.0, score)) * 1.8 if available else 0.0
    if filled > 0:
        drawing.add(Wedge(center_x, center_y, radius, 180 - filled, 180, radius1=radius * 0.68,
                          fillColor=HexColor(color), strokeColor=None))
    for tick in GAUGE_TICKS:
        angle = math.radians(180 - tick * 1.8)
        cos, sin = math.cos(angle), math.sin(angle)
        drawing.add(Line(center_x + radius * cos, center_y + radius * sin, center_x + (radius + 3) * cos,
                         center_y + (radius + 3) * sin, strokeColor=HexColor(theme.MUTED), strokeWidth=0.6))
        if tick in (0, 100):  # the ends: under the ring, inside the drawing
            x, y = center_x + radius * 0.84 * cos, center_y - 8
        else:
            x, y = center_x + (radius + 5) * cos, center_y + (radius + 5) * sin
        drawing.add(_text(x, y, f"{tick:.0f}", size=5.5, color=theme.MUTED,
                          anchor="middle" if tick in (0, 50, 100) else "end" if tick < 50 else "start"))
    if available:
        drawing.add(_text(center_x, center_y + 2, f"{score:.0f}", size=16, color=color, anchor="middle", bold=True))
        drawing.add(_text(center_x, center_y - 12, band, size=7.5, color=color, anchor="middle", bold=True))
    else:  # in the ring's hole, where the number would be: below it the words would run into the scale's ends
        drawing.add(_text(center_x, center_y + 4, "not available", size=6.5, color=color, anchor="middle", bold=True))
    # A narrowed gauge (six in a row) takes a smaller title so neighbours' titles keep apart.
    drawing.add(_text(center_x, height - 10, title, size=8.5 if size >= GAUGE_SIZE else 7.5, anchor="middle",
                      bold=True))
    return drawing
