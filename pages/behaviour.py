"""Behaviour: how the post-trained model answers differently, drawn from ``afterburn_core.views.behaviour``.

Pick a suite and a group (the whole suite or one category). Top to bottom:
every test of the group with the ones significant after the
Benjamini–Hochberg correction first, answer lengths (the per-prompt
distributions, the medians and the test), the strategy mix, format use,
chain-of-thought markers, accuracy and refusals, lexical diversity and, when
the suite has probes, sycophancy. Each chart carries the view's one-line
reading.

It computes nothing: statistics, intervals and corrected p-values are the
``behaviour`` analysis's, the ranking and the readings its view's
(``behaviour_view``, ``behaviour_readings.group_view``); the length histogram
plots the ``n_tokens`` that the ``generations`` analysis stored, selected by
suite and category. Category and suite names come from suite files and reach
the screen through ``escape_markdown``, widgets' plain labels, charts and
tables.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from afterburn_core.behaviour.types import BehaviourStats, GroupStats
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.views.behaviour import (
    SHIFT_COLUMNS,
    Paired,
    behaviour_view,
    named_test,
    shift_rows,
    suite_tests_title,
)
from afterburn_core.views.behaviour_readings import (
    GroupView,
    Section,
    group_lengths,
    group_view,
    largest_length_change,
)
from afterburn_core.views.theme import MODEL_LABELS
from pages.charts import MODEL_SCALE, paired_bars
from pages.common import (
    PROMPTS_PAGE,
    escape_markdown,
    reading,
    require_app_frame,
    selected_result,
    stored_result,
)

SUITE_KEY = "behaviour_suite"
HISTOGRAM_BINS = 30


def category_key(suite: str) -> str:
    """Session key of the group picker of ``suite`` (one per suite: each has its own categories)."""
    return f"behaviour_category_{suite}"


def bars_frame(items: tuple[Paired, ...]) -> pd.DataFrame:
    return pd.DataFrame([{"label": item.marked, "model": model, "value": value}
                         for item in items for model, value in zip(MODEL_LABELS, (item.base, item.trained))])


def show_section(section: Section, title: str) -> None:
    """A section's reading and its paired bars (shares of ``title``), then its note."""
    reading(section.reading)
    st.altair_chart(paired_bars(bars_frame(section.bars), title=title), width="stretch", alt=section.reading)
    if section.note:
        st.caption(escape_markdown(section.note))


def show_overview(view: GroupView) -> None:
    st.subheader("Shifts at a glance")
    reading(view.overview.reading)
    rows = view.tests
    st.dataframe(
        {"Area": [row.area for row in rows], "Measure": [row.measure for row in rows],
         "Base": [row.base for row in rows], "Post-trained": [row.trained for row in rows],
         "Change": [row.change for row in rows], "Test": [named_test(row.shift) for row in rows],
         "p": [row.shift.p_value for row in rows], "p (corrected)": [row.p_adjusted for row in rows],
         "Significant": [row.significant for row in rows]},
        hide_index=True, width="stretch", height="content",  # a group has ~15 tests: all in view, no inner scroll
        column_config={"Measure": st.column_config.TextColumn(width="large"),
                       "p": st.column_config.NumberColumn(format="%.2g"),
                       "p (corrected)": st.column_config.NumberColumn(format="%.2g")},
    )
    st.caption(escape_markdown(view.overview.note))


def show_length(section: Section, lengths: pd.DataFrame | None) -> None:
    st.subheader("Answer length")
    reading(section.reading)
    if lengths is None:
        st.caption("The run's generations are not stored, so the per-answer distribution cannot be drawn.")
        return
    histogram = alt.Chart(lengths).mark_bar(opacity=0.6, binSpacing=0).encode(
        # Whole tokens and whole answers: integer ticks only ("2, 4", never "2.0, 4.0").
        x=alt.X("tokens:Q", bin=alt.Bin(maxbins=HISTOGRAM_BINS, minstep=1), title="output tokens per answer",
                axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("count():Q", stack=None, title="answers", axis=alt.Axis(format="d", tickMinStep=1)),
        color=alt.Color("model:N", scale=MODEL_SCALE, title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("tokens:Q", bin=True, title="tokens"),
                 alt.Tooltip("count():Q", title="answers")],
    )
    median = section.bars[0]
    medians = alt.Chart(pd.DataFrame({"model": list(MODEL_LABELS), "median": [median.base, median.trained]})
                        ).mark_rule(strokeDash=[6, 4], size=2).encode(
        x="median:Q", color=alt.Color("model:N", scale=MODEL_SCALE, legend=None),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("median:Q", title="median tokens")],
    )
    st.altair_chart((histogram + medians).properties(width="container", height=260), width="stretch",
                    alt=section.reading)
    st.caption(escape_markdown(section.note))


def show_reasoning(group: GroupStats, section: Section) -> None:
    st.subheader("Chain of thought")
    reading(section.reading)
    depth = group.reasoning.cot_depth
    depth_column, chart_column = st.columns([1, 3], gap="large")
    change = depth.trained_mean - depth.base_mean
    depth_column.metric("CoT depth (mean links)", f"{depth.trained_mean:.2f}",
                        delta=f"{change:+.2f} from base", delta_color="off",
                        delta_arrow="auto" if change else "off",
                        help="Reasoning links per post-trained answer (mean); the delta is against the base model.")
    chart_column.altair_chart(paired_bars(bars_frame(section.bars), title="share of answers"), width="stretch",
                              alt=section.reading)


def show_outcomes(view: GroupView) -> None:
    st.subheader("Accuracy and refusals")
    if view.accuracy is None:
        st.caption("No accuracy: no prompt of this group has an expected answer or a check.")
    else:
        reading(view.accuracy.reading)
    if view.refusal is None:
        st.caption("No refusal rate: no prompt of this group is marked as one to refuse "
                   "(category or tag safety, harmful, should\\_refuse).")
    else:
        reading(view.refusal.reading)
    items = tuple(bar for section in (view.accuracy, view.refusal) if section is not None for bar in section.bars)
    if items:
        st.altair_chart(paired_bars(bars_frame(items), title="share of prompts"), width="stretch",
                        alt="Accuracy and refusal rate, base against post-trained.")


def show_sycophancy(section: Section | None) -> None:
    if section is None:
        return
    st.subheader("Sycophancy")
    if not section.bars:
        st.caption(escape_markdown(section.note))
        return
    show_section(section, "share of probes")


def show_evidence(generations: GenerationsResult | None, suite: str, category: str | None, run_id: str) -> None:
    """A link to the prompt of this group whose length changed most (the Prompts page opens it)."""
    evidence = None if generations is None else largest_length_change(generations, suite, category)
    if evidence is not None:
        st.page_link(PROMPTS_PAGE, label=escape_markdown(evidence.label), icon=":material/chat:",
                     query_params={"prompt": evidence.link, "run": run_id})


require_app_frame()
st.title("Behaviour")

record, stats = selected_result(BehaviourStats)
if not stats.suites:
    st.info("The behaviour analysis found no suite with prompts in this run.")
    st.stop()
generations: GenerationsResult | None = stored_result(record.run_id, GenerationsResult)

st.caption(escape_markdown(behaviour_view(stats).caption))
# Across suites first: every whole-suite test, significant ones on top (the reports' table), then one suite.
st.subheader("Across suites")
rows = shift_rows(stats)
significant = [row.cells() for row in rows if row.significant]
st.markdown(f"**{escape_markdown(suite_tests_title(stats, significant_only=True))}**")
if significant:
    st.dataframe(pd.DataFrame(significant, columns=list(SHIFT_COLUMNS)), hide_index=True, width="stretch")
else:
    st.caption("No test on a whole suite is significant.")
with st.expander(escape_markdown(suite_tests_title(stats, significant_only=False))):
    st.dataframe(pd.DataFrame([(*row.cells(), "yes" if row.significant else "no") for row in rows],
                              columns=[*SHIFT_COLUMNS, "significant"]), hide_index=True, width="stretch")
st.subheader("One suite in detail")
suite_column, group_column = st.columns(2)
suite = suite_column.selectbox("Suite", list(stats.suites), key=SUITE_KEY)
suite_stats = stats.suites[suite]
category = group_column.selectbox(
    "Group", [None, *suite_stats.categories], key=category_key(suite),
    format_func=lambda name: (f"Whole suite ({suite_stats.overall.n_prompts} prompts)" if name is None
                              else f"{name} ({suite_stats.categories[name].n_prompts} prompts)"),
    help="The whole suite, or one of its categories. Smaller groups have less power: a real shift may "
         "not reach significance.",
)
group = suite_stats.overall if category is None else suite_stats.categories[category]

view = group_view(suite, group, stats)
show_overview(view)
lengths = None if generations is None else group_lengths(generations, suite, category)
show_length(view.length, pd.DataFrame(lengths, columns=["model", "tokens"]) if lengths else None)
show_evidence(generations, suite, category, record.run_id)
st.subheader("Strategy")
show_section(view.strategy, "share of answers")
st.subheader("Format use")
if view.formats is None:
    st.caption("No format features were measured.")
else:
    show_section(view.formats, "share of answers")
show_reasoning(group, view.reasoning)
show_outcomes(view)
st.subheader("Diversity")
show_section(view.diversity, "share (distinct n-grams, answers)")
st.caption("Distinct-n: distinct n-grams over all n-grams of the group's answers (lower = more repetitive); "
           "repeated openings: answers whose opening another answer shares.")
show_sycophancy(view.sycophancy)
