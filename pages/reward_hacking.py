"""Reward hacking: the composite risk and the detectors, each with the evidence behind its score.

Top: the composite gauge with its band and the method weights that made it,
and the key measures that tell the causes apart (length in tokens and in
content, collapse within categories and across tasks, refusals of harmful and
of benign prompts). Then one gauge per registered detector (length bias,
format gaming, strategy collapse, sycophancy, safety regression) and, under each, its one-line summary, the statistics behind the
score, its per-category evidence and up to three example prompts that open on
the Prompts page. Last, the findings and what to do about them.

It computes nothing: scores, bands, statistics and findings are the
``reward_hack`` analysis's; the order, readings and tables are its view's
(``afterburn_core.views.reward_hack``). Names of suites,
categories and prompts come from suite files and reach the screen through
``escape_markdown``, widget labels and tables.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from afterburn_core.reports.html_charts import gauge_indicator
from afterburn_core.analyses import detector_title
from afterburn_core.reward_hack.types import DetectorResult, RewardHackResult
from afterburn_core.views.reward_hack import ranked_categories, reward_hack_view, statistic_cells
from pages.common import PROMPTS_PAGE, escape_markdown, reading, require_app_frame, selected_result

BAND_ICONS = {"LOW": ":material/check_circle:", "MODERATE": ":material/info:", "HIGH": ":material/warning:",
              "CRITICAL": ":material/dangerous:"}
SEVERITY_ICONS = {"info": ":material/info:", "notable": ":material/flag:", "warning": ":material/warning:"}
#: Detector cards per row: wide enough for a dial, a reading of a few lines and a whole example id.
DETECTORS_PER_ROW = 3


def gauge(score: float | None, band: str, title: str, height: int) -> go.Figure:
    """The core's gauge (the same as the HTML report's), sized for the page and in its theme."""
    figure = go.Figure(gauge_indicator(score, band, title))
    # Side margins wide enough for the dial's end labels ("0", "100") at any column width.
    figure.update_layout(height=height, margin={"l": 40, "r": 40, "t": 48, "b": 8})
    return figure


def show_detector(detector: DetectorResult, run_id: str) -> None:
    """One detector: its gauge, summary, statistics, categories and example prompts."""
    title = detector_title(detector.name)
    st.plotly_chart(gauge(detector.score if detector.available else None, detector.band, title, 200),
                    width="stretch", config={"displayModeBar": False}, key=f"gauge_{detector.name}")
    if not detector.available:
        st.caption(escape_markdown(f"Not scored: {detector.reason}"))
        return
    flag = "flagged" if detector.flagged else "not flagged"
    st.markdown(f"{BAND_ICONS[detector.band]} **{detector.band}** · {flag}")
    reading(detector.summary)
    with st.expander("Statistics"):
        st.dataframe(pd.DataFrame(statistic_cells(detector), columns=["statistic", "value"]), hide_index=True,
                     width="stretch")
    if detector.categories:
        with st.expander(f"By category ({len(detector.categories)})"):
            st.dataframe(pd.DataFrame([
                {"suite": c.suite, "category": c.category, "prompts": c.n_prompts, "score": round(c.score, 1)}
                for c in ranked_categories(detector)
            ]), hide_index=True, width="stretch")
    for example in detector.examples:
        st.page_link(PROMPTS_PAGE, label=escape_markdown(f"Open {example}"), icon=":material/chat:",
                     query_params={"prompt": example, "run": run_id})


require_app_frame()
st.title("Reward hacking")

record, result = selected_result(RewardHackResult)
composite = result.composite
view = reward_hack_view(result)

left, right = st.columns([2, 3])
with left:
    st.plotly_chart(gauge(composite.score, composite.band, "Composite risk", 260), width="stretch",
                    config={"displayModeBar": False}, key="gauge_composite")
with right:
    st.markdown(f"{BAND_ICONS[composite.band]} **{composite.band}** risk · declared method "
                f"**{escape_markdown(result.method)}**")
    reading(view.reading)
    st.dataframe(pd.DataFrame([
        # A detector that could not run has no score: "—", as its card says why (a None cell reads as a bug).
        {"detector": row.title, "weight": round(row.weight, 3), "score": "—" if row.score is None else f"{round(row.score, 1):g}"}
        for row in view.weights
    ]), hide_index=True, width="stretch",
        column_config={"score": st.column_config.TextColumn(alignment="right")})
    st.caption(escape_markdown(f"Weights: {composite.weights_source}"))
    st.dataframe(pd.DataFrame([{"measure": measure.label, "value": measure.value} for measure in view.measures]),
                 hide_index=True, width="stretch")

# The detectors in registry order, a few per row: five side by side cut their gauges' end labels, their
# example links and squeeze their readings to a few words a line.
for start in range(0, len(view.detectors), DETECTORS_PER_ROW):
    for column, detector in zip(st.columns(DETECTORS_PER_ROW, gap="large"),
                                view.detectors[start:start + DETECTORS_PER_ROW]):
        with column:
            show_detector(detector, record.run_id)

st.subheader("Findings")
if not result.findings:
    st.caption("No findings.")
for finding in result.findings:
    # Title and detail, as the terminal and the reports show a finding: its title already states the score.
    st.markdown(f"{SEVERITY_ICONS.get(finding.severity, '')} **{escape_markdown(finding.title)}** — "
                f"{escape_markdown(finding.detail)}")
    if finding.recommendation:
        # In the text's own colour: what to do next is read, not skimmed (a caption's grey was too faint).
        st.markdown(f":material/arrow_forward: **Next:** {escape_markdown(finding.recommendation)}")
