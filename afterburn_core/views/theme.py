"""The colours and labels of every door: the dashboard, the HTML and PDF reports and the terminal read them here.

Base and post-trained keep one label and one colour each everywhere; risk
bands, finding severities and weight profiles each have one colour scale
(a weight profile as a named tone, which the dashboard's badges take, and
its hex value, which the reports take). Data only, plus the interpolation of
the heatmap scale the PDF needs (plotly interpolates the same stops itself).
"""

from __future__ import annotations

#: How a report names the two models.
BASE_LABEL = "base"
TRAINED_LABEL = "post-trained"
#: Neutral grey for the reference, a warm red for what training made, so "the coloured one changed"
#: reads the same in every view.
BASE_COLOR = "#8c8c8c"
TRAINED_COLOR = "#e4572e"
#: Both models in legend order, with their colours (the dashboard's paired charts).
MODEL_LABELS = (BASE_LABEL, TRAINED_LABEL)
MODEL_COLORS = (BASE_COLOR, TRAINED_COLOR)

INK = "#1f2933"
MUTED = "#5f6b76"
RULE = "#d9dee3"
PANEL = "#f5f7f9"
ACCENT = "#1f4e79"

#: Risk bands of the reward-hack analysis, from harmless to alarming.
BAND_COLORS = {"LOW": "#2f9e44", "MODERATE": "#e0a800", "HIGH": "#e8590c", "CRITICAL": "#c92a2a"}
UNAVAILABLE_COLOR = "#adb5bd"
SEVERITY_COLORS = {"info": "#5f6b76", "notable": "#d08c00", "warning": "#c92a2a"}
SEVERITY_ORDER = {"warning": 0, "notable": 1, "info": 2}
#: Weight profiles from still to wild, as the named tones Streamlit's badges take, and those tones in hex
#: (Open Color's gray 6, blue 8, green 8, orange 8, red 8) for the reports.
PROFILE_TONES = {"identical": "gray", "surgical": "blue", "standard": "green", "heavy": "orange", "extreme": "red"}
TONE_COLORS = {"gray": "#868e96", "blue": "#1971c2", "green": "#2f9e44", "orange": "#e8590c", "red": "#c92a2a"}
PROFILE_COLORS = {profile: TONE_COLORS[tone] for profile, tone in PROFILE_TONES.items()}

#: ColorBrewer OrRd (9 classes), the sequential scheme of the dashboard's heatmaps (Vega "orangered").
HEAT_STOPS = ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f", "#b30000", "#7f0000")


def plotly_heat_scale() -> list[list[float | str]]:
    """``HEAT_STOPS`` as a plotly colorscale."""
    last = len(HEAT_STOPS) - 1
    return [[index / last, color] for index, color in enumerate(HEAT_STOPS)]


def heat_color(fraction: float) -> str:
    """The ``HEAT_STOPS`` colour at ``fraction`` (0..1, clamped), linearly interpolated in RGB."""
    position = min(1.0, max(0.0, fraction)) * (len(HEAT_STOPS) - 1)
    low = int(position)
    high = min(low + 1, len(HEAT_STOPS) - 1)
    weight = position - low
    low_rgb, high_rgb = _rgb(HEAT_STOPS[low]), _rgb(HEAT_STOPS[high])
    mixed = (round(a + (b - a) * weight) for a, b in zip(low_rgb, high_rgb))
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def ink_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (relative luminance, sRGB)."""
    red, green, blue = _rgb(background)
    return "#ffffff" if 0.2126 * red + 0.7152 * green + 0.0722 * blue < 140 else INK


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)

#: Lines that are neither model (the spectra of different tensors): cool hues, so none reads as base or post-trained.
SERIES_COLORS = ("#1f4e79", "#2a9d8f", "#7b5ea7", "#3d85c6", "#b08900", "#495057")
