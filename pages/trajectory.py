"""Trajectory: the checkpoints of one training run against their base, step by step.

Top to bottom: which stored trajectory (a picker, mirrored in ``?trajectory=<key>``); the checkpoint to
ship; the composite risk over its bands and each detector's score, flagged steps filled and each
emergence a dashed rule, with what the trainer logged (loss, reward) beside them; the weight drift
against the base and the previous checkpoint, and per module type; the behaviour metrics per step
against the base's value; the table of steps and of checkpoints with their runs. Clicking a point, or
picking a step under the table, opens that checkpoint's run on the Checkpoints page (every run page then
shows it). Without a stored trajectory it shows the ``afterburn trajectory`` call that makes one: a
trajectory is many runs, and the worker runs one, so trajectories are run from a terminal.

It computes nothing: series, readings, tables and the recommendation are the view's
(``afterburn_core.views.trajectory``); this page reshapes them for its charts. Checkpoint references are
paths a user or a stranger named: they reach the screen through tables, chart tooltips and
``escape_markdown`` only.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from afterburn_core.errors import AfterburnError
from afterburn_core.trajectory.stored import StoredTrajectory, load_trajectory, stored_trajectories
from afterburn_core.views import theme
from afterburn_core.views.trajectory import (
    BAND_RANGES,
    CHECKPOINT_COLUMNS,
    SECTION_TITLES,
    Series,
    command_line,
    trajectory_label,
    trajectory_view,
)
from pages.common import OVERVIEW_PAGE, escape_markdown, get_store, reading, require_app_frame, select_run

#: Query parameter of this page: ``?trajectory=<key>`` opens that stored trajectory.
TRAJECTORY_QUERY_PARAM = "trajectory"
PICKER_KEY = "trajectory_picker"
OPEN_STEP_KEY = "trajectory_open_step"
#: The selection a click on a chart's point makes: the run id of that checkpoint.
POINT_SELECTION = "checkpoint"
#: Heights of a chart, its legend and axes included (Streamlit fits the whole chart in it).
CHART_HEIGHT_PX = 300
SMALL_CHART_HEIGHT_PX = 240


def series_frame(series: tuple[Series, ...]) -> pd.DataFrame:
    """One row per (series, step): the long form every chart here reads."""
    return pd.DataFrame([
        {"series": line.title, "step": point.step, "value": point.value, "flagged": "flagged" if point.flagged else "",
         "band": point.band or "", "run": point.run_id}
        for line in series for point in line.points
    ], columns=["series", "step", "value", "flagged", "band", "run"])


def steps_axis(steps: list[int]) -> alt.X:
    return alt.X("step:Q", title="training step", scale=alt.Scale(domain=[min(steps), max(steps)], nice=False),
                 axis=alt.Axis(values=steps, format="d"))


def step_chart(series: tuple[Series, ...], *, rate: bool = False, score: bool = False, base_value: float | None = None,
               height: int = CHART_HEIGHT_PX) -> alt.LayerChart:
    """Each series as a line over the steps; flagged points filled, emergence steps as dashed rules, a click
    on a point selects its run. ``score``: a 0–100 axis over the tinted bands; ``base_value``: a dotted rule."""
    frame = series_frame(series).dropna(subset=["value"])
    steps = sorted({point.step for line in series for point in line.points})
    number_format = ".0%" if rate else ".3g"
    y_scale = alt.Scale(domain=[0, 100]) if score else alt.Scale(domain=[0, 1]) if rate else alt.Scale(zero=True)
    colors = alt.Scale(domain=[line.title for line in series],
                       range=[theme.SERIES_COLORS[index % len(theme.SERIES_COLORS)] for index in range(len(series))])
    picked = alt.selection_point(name=POINT_SELECTION, fields=["run"], on="click")
    # One line: its title names the chart; several: a legend on top does.
    legend = None if len(series) == 1 else alt.Legend(orient="top", title=None, labelLimit=0)
    lines = alt.Chart(frame).encode(
        x=steps_axis(steps),
        y=alt.Y("value:Q", title=series[0].title if len(series) == 1 else None, scale=y_scale,
                axis=alt.Axis(format=number_format)),
        color=alt.Color("series:N", scale=colors, legend=legend),
    )
    points = lines.mark_point(size=70, filled=True).encode(
        shape=alt.Shape("flagged:N", scale=alt.Scale(domain=["", "flagged"], range=["circle", "diamond"]), legend=None),
        size=alt.condition("datum.flagged == 'flagged'", alt.value(150), alt.value(60)),
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=number_format),
                 alt.Tooltip("band:N"), alt.Tooltip("flagged:N"), alt.Tooltip("run:N")],
    ).add_params(picked)
    layers = [lines.mark_line(), points]
    if score:
        bands = pd.DataFrame([{"from": low, "to": high, "band": band} for low, high, band in BAND_RANGES])
        # Filled with the band's own colour, unscaled: on the shared colour scale the bands would recolour the lines.
        bands["tint"] = [theme.BAND_COLORS[band] for band in bands["band"]]
        layers.insert(0, alt.Chart(bands).mark_rect(opacity=0.12).encode(
            y="from:Q", y2="to:Q", fill=alt.Fill("tint:N", scale=None), tooltip=[alt.Tooltip("band:N")]))
    emerged = [{"series": line.title, "step": line.emergence.at_step} for line in series if line.emergence]
    if emerged:
        layers.append(alt.Chart(pd.DataFrame(emerged)).mark_rule(strokeDash=[5, 3], strokeWidth=1.5).encode(
            x="step:Q", color=alt.Color("series:N", scale=colors, legend=None),
            tooltip=[alt.Tooltip("series:N", title="emerged"), alt.Tooltip("step:Q", title="by step")]))
    if base_value is not None:
        layers.append(alt.Chart(pd.DataFrame({"base": [base_value]})).mark_rule(
            strokeDash=[2, 2], color=theme.BASE_COLOR).encode(y="base:Q", tooltip=[alt.Tooltip("base:Q", format=number_format)]))
    return alt.layer(*layers).properties(width="container", height=height)


def show_chart(series: tuple[Series, ...], key: str, **options) -> None:
    """Draw the chart; a click on a point opens that checkpoint's run."""
    event = st.altair_chart(step_chart(series, **options), width="stretch", on_select="rerun", key=key)
    clicked = event.selection.get(POINT_SELECTION) if event and event.selection else None
    if clicked:
        open_run(clicked[0]["run"])


def open_run(run_id: str) -> None:
    select_run(run_id)
    st.switch_page(OVERVIEW_PAGE)


def readings(series: tuple[Series, ...]) -> None:
    for line in series:
        reading(line.reading)


def picked_trajectory(stored: tuple[StoredTrajectory, ...]) -> StoredTrajectory:
    """The trajectory the picker holds, first set from ``?trajectory=`` (an unknown key says why)."""
    keys = [item.key for item in stored]
    linked = st.query_params.get(TRAJECTORY_QUERY_PARAM)
    if PICKER_KEY not in st.session_state:
        st.session_state[PICKER_KEY] = linked if linked in keys else keys[0]
        if linked and linked not in keys:
            try:
                load_trajectory(get_store(), linked)
            except AfterburnError as error:
                st.error(escape_markdown(str(error)))
    labels = {item.key: trajectory_label(item) for item in stored}
    key = st.selectbox("Trajectory", keys, format_func=labels.__getitem__, key=PICKER_KEY,
                       help="Stored trajectories, newest first. The page's link (?trajectory=…) opens the same one.")
    st.query_params[TRAJECTORY_QUERY_PARAM] = key
    return stored[keys.index(key)]


def show_command() -> None:
    """The ``afterburn trajectory`` call for what the user types."""
    base = st.text_input("Base model", value="demo:base", help="Folder, .safetensors file, hub id[@rev] or demo:base.")
    listed = st.text_area("Checkpoints, in training order (one a line)", placeholder="runs/grpo/output",
                          help="Checkpoint folders, a training output folder (its checkpoint-<step> folders), "
                               "owner/name@rev1,rev2, or LoRA adapters.")
    st.code(command_line(base.strip(), [line.strip() for line in listed.splitlines() if line.strip()]),
            language="bash")


require_app_frame()
st.title("Trajectory")

try:
    found = stored_trajectories(get_store())
except AfterburnError as error:
    st.error(escape_markdown(str(error)))
    st.stop()
if not found:
    st.info("No trajectory stored yet. A trajectory is a run per checkpoint: start it from a terminal with the "
            "command below; it appears here once it is done.")
    show_command()
    st.stop()

trajectory = picked_trajectory(found)
view = trajectory_view(trajectory.result)
st.caption(escape_markdown(view.title))
reading(view.recommendation)

st.subheader(SECTION_TITLES["risk"])
risk, logged = st.columns([3, 2], gap="large") if view.logged else (st.container(), None)
with risk:
    show_chart((view.composite,), "trajectory_composite", score=True)
    reading(view.composite.reading)
    measured = tuple(line for line in view.detectors if any(point.value is not None for point in line.points))
    show_chart(measured, "trajectory_detectors", score=True)
    readings(view.detectors)
if logged is not None:
    with logged:
        st.markdown(f"**{SECTION_TITLES['logged']}**")
        for line in view.logged:
            show_chart((line,), f"trajectory_logged_{line.name}", height=SMALL_CHART_HEIGHT_PX)
            reading(line.reading)

st.subheader(SECTION_TITLES["weights"])
drift, modules = st.columns(2, gap="large")
with drift:
    show_chart(view.drift, "trajectory_drift")
    readings(view.drift)
with modules:
    show_chart(view.modules, "trajectory_modules")
    with st.expander("Per module type"):
        readings(view.modules)

st.subheader(SECTION_TITLES["behaviour"])
for start in range(0, len(view.behaviour), 2):
    for column, line in zip(st.columns(2, gap="large"), view.behaviour[start:start + 2]):
        with column:
            show_chart((line,), f"trajectory_behaviour_{line.name}", rate=line.is_rate, base_value=line.base_value,
                       height=SMALL_CHART_HEIGHT_PX)
            reading(line.reading)

st.subheader(SECTION_TITLES["checkpoints"])
st.dataframe(pd.DataFrame(list(view.rows), columns=list(view.columns)), hide_index=True, width="stretch")
st.dataframe(pd.DataFrame(list(view.checkpoints), columns=list(CHECKPOINT_COLUMNS)), hide_index=True, width="stretch")
steps = [row[0] for row in view.checkpoints]
pick, go = st.columns([3, 1], vertical_alignment="bottom")
step = pick.selectbox("Open the run of step", steps, key=OPEN_STEP_KEY)
if go.button("Open run", icon=":material/open_in_new:"):
    open_run(view.run_ids[steps.index(step)])

with st.expander("Run another trajectory"):
    show_command()
