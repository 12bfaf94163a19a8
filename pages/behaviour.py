"""Behaviour: how the post-trained model answers differently, read from the run's stored ``BehaviourStats``.

Pick a suite and a group (the whole suite or one category). Top to bottom:
every test of the group with the ones significant after the
Benjamini–Hochberg correction first, answer lengths (the per-prompt
distributions, the medians and the test), the strategy mix, format use,
chain-of-thought markers, accuracy and refusals, lexical diversity and, when
the suite has probes, sycophancy. Each chart carries a one-line reading made
from the numbers it shows.

It computes nothing: statistics, intervals and corrected p-values are the
``behaviour`` analysis's; the length histogram plots the ``n_tokens`` that
the ``generations`` analysis stored, selected by suite and category (counts
of answers are a stored rate times its n, at most). Category and suite names
come from suite files and reach the screen through ``escape_markdown``,
widgets' plain labels, charts and tables.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from afterburn_core.behaviour.types import (
    BehaviourStats,
    GroupStats,
    NumericShift,
    ProportionShift,
    SetMetricShift,
    StrategyShift,
)
from afterburn_core.behaviour.listing import group_tests, shift_cells
from afterburn_core.generation.results import GenerationsResult
from pages.common import (
    PROMPTS_PAGE,
    escape_markdown,
    reading,
    require_app_frame,
    selected_result,
    stored_result,
)

SUITE_KEY = "behaviour_suite"
MODELS = ("base", "post-trained")
MODEL_COLORS = alt.Scale(domain=list(MODELS), range=["#8c8c8c", "#e4572e"])
TEST_NAMES = {
    "mann_whitney_u": "Mann–Whitney U",
    "mcnemar_exact": "McNemar exact",
    "paired_permutation_tvd": "paired permutation (total variation)",
    "paired_permutation": "paired permutation",
}
CORRECTIONS = {"benjamini_hochberg": "Benjamini–Hochberg"}
#: Marks a significant measure in chart labels (after the correction).
SIGNIFICANT_MARK = " ✱"
HISTOGRAM_BINS = 30
BAR_STEP_PX = 16

Shift = NumericShift | ProportionShift | SetMetricShift | StrategyShift


def category_key(suite: str) -> str:
    """Session key of the group picker of ``suite`` (one per suite: each has its own categories)."""
    return f"behaviour_category_{suite}"


def correction_name(stats: BehaviourStats) -> str:
    return CORRECTIONS.get(stats.correction, stats.correction)


def verdict(shift: Shift, stats: BehaviourStats) -> str:
    """``McNemar exact: significant after Benjamini–Hochberg (p_adj 4.2e-05)`` and the like."""
    test = TEST_NAMES.get(shift.test, shift.test)
    if shift.p_value is None or shift.p_adjusted is None:
        return f"{test}: not tested (no data)"
    word = "significant" if shift.significant else "not significant"
    return f"{test}: {word} after {correction_name(stats)} (p_adj {shift.p_adjusted:.2g})"


def percent(value: float) -> str:
    return f"{value:.0%}"


def points(value: float) -> str:
    return f"{value * 100:+.0f} points"


def interval(ci: tuple[float, float] | None, fmt) -> str:
    return "" if ci is None else f", 95% CI {fmt(ci[0])} to {fmt(ci[1])}"


def rate_change(shift: ProportionShift | SetMetricShift, *, as_rate: bool = True, of: str = "") -> str:
    """``0% → 94%{of} (+94 points, 95% CI +76 to +98)``; ``as_rate=False`` for plain numbers."""
    if as_rate:
        return f"{percent(shift.base)} → {percent(shift.trained)}{of} ({points(shift.difference)}" \
               f"{interval(shift.ci, lambda value: f'{value * 100:+.0f}')})"
    return f"{shift.base:.3g} → {shift.trained:.3g} ({shift.difference:+.3g}" \
           f"{interval(shift.ci, lambda value: f'{value:+.3g}')})"


def significant_label(label: str, shift: Shift) -> str:
    return label + (SIGNIFICANT_MARK if shift.significant else "")


# --- the group's tests at a glance ----------------------------------------------------------------


def show_overview(group: GroupStats, stats: BehaviourStats) -> None:
    st.subheader("Shifts at a glance")
    tests = group_tests(group)
    significant = [f"{measure}" for _, measure, shift in tests if shift.significant]
    line = (f"{len(significant)} of {len(tests)} tests in this group are significant after the "
            f"{correction_name(stats)} correction (α = {stats.alpha:g}, over all {stats.n_tests} tests of the run)")
    reading(line + (f": {', '.join(significant)}." if significant else "."))
    ordered = sorted(tests, key=lambda test: (not test[2].significant,
                                              1.0 if test[2].p_adjusted is None else test[2].p_adjusted))
    cells = [shift_cells(shift) for _, _, shift in ordered]
    st.dataframe(
        {"Area": [area for area, _, _ in ordered], "Measure": [measure for _, measure, _ in ordered],
         "Base": [cell[0] for cell in cells], "Post-trained": [cell[1] for cell in cells],
         "Change": [cell[2] for cell in cells],
         "Test": [TEST_NAMES.get(shift.test, shift.test) for _, _, shift in ordered],
         "p": [shift.p_value for _, _, shift in ordered],
         "p (corrected)": [shift.p_adjusted for _, _, shift in ordered],
         "Significant": [shift.significant for _, _, shift in ordered]},
        hide_index=True, width="stretch", height=min(420, 38 + 35 * len(ordered)),
        column_config={"p": st.column_config.NumberColumn(format="%.2g"),
                       "p (corrected)": st.column_config.NumberColumn(format="%.2g")},
    )
    st.caption(escape_markdown(
        f"Significant = {correction_name(stats)}-adjusted p below α = {stats.alpha:g}; the correction runs over "
        f"every test of every suite and category in this run ({stats.n_tests} tests, {stats.n_significant} "
        f"significant). ✱ marks the significant measures in the charts below."))


# --- charts -----------------------------------------------------------------------------------------


def paired_bars(frame: pd.DataFrame, *, title: str, rate: bool = True) -> alt.Chart:
    """Base and post-trained bars side by side per ``frame.label`` (columns label, model, value)."""
    number_format = ".0%" if rate else ".3g"
    x_scale = alt.Scale(domain=[0, 1]) if rate else alt.Scale(zero=True)
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("value:Q", title=title, scale=x_scale, axis=alt.Axis(format=number_format)),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=300)),
        yOffset=alt.YOffset("model:N", sort=list(MODELS)),
        color=alt.Color("model:N", scale=MODEL_COLORS, title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("label:N", title="measure"), alt.Tooltip("model:N", title="model"),
                 alt.Tooltip("value:Q", title=title, format=".3f")],
    ).properties(
        # One step per bar; "fit-x" fits the width only, so the legend on top adds height instead
        # of squeezing the bars (Streamlit's default fits both).
        width="container", height=alt.Step(BAR_STEP_PX),
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
    )


def shifts_frame(items: list[tuple[str, ProportionShift | SetMetricShift]]) -> pd.DataFrame:
    return pd.DataFrame([
        {"label": significant_label(label, shift), "model": model, "value": value}
        for label, shift in items for model, value in zip(MODELS, (shift.base, shift.trained))
    ])


def show_length(group: GroupStats, stats: BehaviourStats, lengths: pd.DataFrame | None) -> None:
    st.subheader("Answer length")
    shift = group.length
    direction = "longer" if shift.median_shift > 0 else "shorter" if shift.median_shift < 0 else "as long"
    line = (f"Post-trained answers are {direction}: median {shift.base_median:.3g} → {shift.trained_median:.3g} "
            f"tokens ({shift.median_shift:+.3g}{interval(shift.ci, lambda value: f'{value:+.3g}')}), "
            f"Cohen's d {shift.effect_size:.2f}; {verdict(shift, stats)}.")
    reading(line)
    if lengths is None:
        st.caption("The run's generations are not stored, so the per-answer distribution cannot be drawn.")
        return
    bars = alt.Chart(lengths).mark_bar(opacity=0.6, binSpacing=0).encode(
        x=alt.X("tokens:Q", bin=alt.Bin(maxbins=HISTOGRAM_BINS), title="output tokens per answer"),
        y=alt.Y("count():Q", stack=None, title="answers"),
        color=alt.Color("model:N", scale=MODEL_COLORS, title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("tokens:Q", bin=True, title="tokens"),
                 alt.Tooltip("count():Q", title="answers")],
    )
    medians = alt.Chart(pd.DataFrame({"model": list(MODELS), "median": [shift.base_median, shift.trained_median]})
                        ).mark_rule(strokeDash=[6, 4], size=2).encode(
        x="median:Q", color=alt.Color("model:N", scale=MODEL_COLORS, legend=None),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("median:Q", title="median tokens")],
    )
    st.altair_chart((bars + medians).properties(width="container", height=260), width="stretch", alt=line)
    wilcoxon = "" if shift.wilcoxon_p is None else f" The paired Wilcoxon signed-rank p is {shift.wilcoxon_p:.2g} (not corrected)."
    st.caption(f"{shift.n} answers per model; dashed lines are the medians. Means {shift.base_mean:.3g} → "
               f"{shift.trained_mean:.3g} tokens.{wilcoxon}")


def show_strategy(group: GroupStats, stats: BehaviourStats) -> None:
    st.subheader("Strategy")
    shift = group.strategy
    labels = list(dict.fromkeys([*shift.base, *shift.trained]))
    moved = max(labels, key=lambda label: (abs(shift.trained.get(label, 0.0) - shift.base.get(label, 0.0)),
                                           shift.base.get(label, 0.0)))
    if shift.effect_size == 0:
        used = sorted((label for label in labels if shift.base.get(label)), key=lambda label: -shift.base[label])
        mix = ", ".join(f"{label} {percent(shift.base[label])}" for label in used)
        line = (f"The strategy mix did not change: {mix} under both models "
                f"(entropy {shift.entropy_base:.2f} bits); {verdict(shift, stats)}.")
    else:
        line = (f"Strategy mix: total variation {shift.effect_size:.2f} between base and post-trained "
                f"({moved} {percent(shift.base.get(moved, 0.0))} → {percent(shift.trained.get(moved, 0.0))}); "
                f"entropy {shift.entropy_base:.2f} → {shift.entropy_trained:.2f} bits; {verdict(shift, stats)}.")
    reading(line)
    frame = pd.DataFrame([{"label": label, "model": model, "value": distribution.get(label, 0.0)}
                          for label in labels
                          for model, distribution in zip(MODELS, (shift.base, shift.trained))])
    st.altair_chart(paired_bars(frame, title="share of answers"), width="stretch", alt=line)
    if shift.entropy_drop_ci is not None:
        low, high = shift.entropy_drop_ci
        st.caption(f"Entropy drop (base − post-trained) 95% CI {low:.2f} to {high:.2f} bits; "
                   "a collapse onto one strategy shows as a drop.")


def show_formats(group: GroupStats, stats: BehaviourStats) -> None:
    st.subheader("Format use")
    if not group.format:
        st.caption("No format features were measured.")
        return
    items = sorted(group.format.items(), key=lambda item: -abs(item[1].difference))
    feature, top = items[0]
    n_significant = sum(shift.significant for _, shift in items)
    if top.difference == 0:
        line = f"No format's use changed: all {len(items)} features have the same rate under both models."
    else:
        verb = "rose" if top.difference > 0 else "fell"
        line = (f"{feature} use {verb} most, in {rate_change(top, of=' of answers')}, {verdict(top, stats)}; "
                f"{n_significant} of {len(items)} format features shifted significantly.")
    reading(line)
    shown = [(name, shift) for name, shift in items if shift.base or shift.trained] or items
    st.altair_chart(paired_bars(shifts_frame(shown), title="share of answers"), width="stretch", alt=line)
    hidden = len(items) - len(shown)
    if hidden:
        st.caption(f"{hidden} features used by neither model are left out of the chart (they are in the table above).")


def show_reasoning(group: GroupStats, stats: BehaviourStats) -> None:
    st.subheader("Chain of thought")
    reasoning = group.reasoning
    depth = reasoning.cot_depth
    rates = [("self-correction", reasoning.self_correction), ("verification", reasoning.verification)]
    n_significant = sum(shift.significant for shift in (depth, *(shift for _, shift in rates)))
    line = (f"Reasoning links per answer: mean {depth.base_mean:.2f} → {depth.trained_mean:.2f} "
            f"({verdict(depth, stats)}); self-correction {percent(reasoning.self_correction.base)} → "
            f"{percent(reasoning.self_correction.trained)}, verification {percent(reasoning.verification.base)} → "
            f"{percent(reasoning.verification.trained)}; {n_significant} of 3 significant.")
    reading(line)
    depth_column, chart_column = st.columns([1, 3], gap="large")
    change = depth.trained_mean - depth.base_mean
    depth_column.metric("CoT depth (mean links)", f"{depth.trained_mean:.2f}",
                        delta=f"{change:+.2f} from base", delta_color="off",
                        delta_arrow="auto" if change else "off",
                        help="Reasoning links per post-trained answer (mean); the delta is against the base model.")
    chart_column.altair_chart(paired_bars(shifts_frame(rates), title="share of answers"), width="stretch", alt=line)


def show_outcomes(group: GroupStats, stats: BehaviourStats) -> None:
    st.subheader("Accuracy and refusals")
    items: list[tuple[str, ProportionShift]] = []
    if group.accuracy is None:
        st.caption("No accuracy: no prompt of this group has an expected answer or a check.")
    else:
        accuracy = group.accuracy
        reading(f"Accuracy on {accuracy.n} graded prompts: {rate_change(accuracy)}; {accuracy.base_only} answered "
                f"right only by base, {accuracy.trained_only} only by post-trained; {verdict(accuracy, stats)}.")
        items.append(("accuracy", accuracy))
    if group.refusal_rate is None:
        st.caption("No refusal rate: no prompt of this group is marked as one to refuse "
                   "(category or tag safety, harmful, should\\_refuse).")
    else:
        refusal = group.refusal_rate
        reading(f"Refusal rate on {refusal.n} prompts that should be refused: {rate_change(refusal)}; "
                f"{verdict(refusal, stats)}.")
        items.append(("refusal rate", refusal))
    if items:
        st.altair_chart(paired_bars(shifts_frame(items), title="share of prompts"), width="stretch",
                        alt="Accuracy and refusal rate, base against post-trained.")


def show_diversity(group: GroupStats, stats: BehaviourStats) -> None:
    st.subheader("Diversity")
    diversity = group.diversity
    items = [("distinct-1", diversity.distinct_1), ("distinct-2", diversity.distinct_2),
             ("repeated openings", diversity.repeated_openings)]
    n_significant = sum(shift.significant for _, shift in items)
    line = (f"Distinct-2 {rate_change(diversity.distinct_2, as_rate=False)}, repeated openings "
            f"{rate_change(diversity.repeated_openings)}; {n_significant} of 3 significant after "
            f"{correction_name(stats)}.")
    reading(line)
    st.altair_chart(paired_bars(shifts_frame(items), title="share (distinct n-grams, answers)"), width="stretch",
                    alt=line)
    st.caption("Distinct-n: distinct n-grams over all n-grams of the group's answers (lower = more repetitive); "
               "repeated openings: answers whose opening another answer shares.")


def show_sycophancy(group: GroupStats, stats: BehaviourStats) -> None:
    probes = group.sycophancy
    if probes is None:
        return
    st.subheader("Sycophancy")
    items = [(label, shift) for label, shift in (("agrees with a wrong assertion", probes.wrong_agreement),
                                                 ("agrees with a right assertion", probes.right_agreement),
                                                 ("flips to the wrong assertion", probes.flips))
             if shift is not None]
    if not items:
        st.caption(f"{probes.n_probes} probes, but none could be scored.")
        return
    parts = []
    if probes.wrong_agreement is not None:
        parts.append(f"agreement with wrong assertions {rate_change(probes.wrong_agreement)}, "
                     f"{verdict(probes.wrong_agreement, stats)}")
    if probes.flips is not None:
        flips = probes.flips
        parts.append(f"flips {round(flips.base * flips.n)} → {round(flips.trained * flips.n)} of {flips.n} probes "
                     "(right when asked plainly, then agreeing with the wrong claim)")
    if probes.right_agreement is not None:
        parts.append(f"agreement with right assertions {percent(probes.right_agreement.base)} → "
                     f"{percent(probes.right_agreement.trained)}")
    line = f"Over {probes.n_probes} probes: " + "; ".join(parts) + "."
    reading(line)
    st.altair_chart(paired_bars(shifts_frame(items), title="share of probes"), width="stretch", alt=line)


def length_frame(generations: GenerationsResult | None, suite: str, category: str | None) -> pd.DataFrame | None:
    """The stored output lengths of the group's prompts, one row per answer and model."""
    if generations is None:
        return None
    rows = [{"model": model, "tokens": completion.n_tokens}
            for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained)
            if prompt.suite == suite and (category is None or prompt.category == category)
            for model, completion in zip(MODELS, (base, trained))]
    return pd.DataFrame(rows) if rows else None


def evidence_link(generations: GenerationsResult | None, suite: str, category: str | None, run_id: str) -> None:
    """A link to the prompt of this group whose length changed most (the Prompts page opens it)."""
    if generations is None:
        return
    members = [(trained.n_tokens - base.n_tokens, prompt)
               for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained)
               if prompt.suite == suite and (category is None or prompt.category == category)]
    if not members:
        return
    change, prompt = max(members, key=lambda member: abs(member[0]))
    link = f"{prompt.suite}/{prompt.prompt_id}"
    st.page_link(PROMPTS_PAGE, label=escape_markdown(f"Open {link}, the answer whose length changed most "
                                                     f"({change:+d} tokens)"),
                 icon=":material/chat:", query_params={"prompt": link, "run": run_id})


require_app_frame()
st.title("Behaviour")

record, stats = selected_result(
    BehaviourStats,
    "This run has no behaviour statistics: its suites were not run, or it was made before the behaviour "
    "analysis existed. Launch the pair again from the New run page.",
)
if not stats.suites:
    st.info("The behaviour analysis found no suite with prompts in this run.")
    st.stop()
generations: GenerationsResult | None = stored_result(record.run_id, GenerationsResult)

st.caption(escape_markdown(
    f"{stats.n_prompts} prompts in {len(stats.suites)} suites · {stats.n_tests} tests, {stats.n_significant} "
    f"significant after {correction_name(stats)} at α = {stats.alpha:g} · seed {stats.seed}"))
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

show_overview(group, stats)
show_length(group, stats, length_frame(generations, suite, category))
evidence_link(generations, suite, category, record.run_id)
show_strategy(group, stats)
show_formats(group, stats)
show_reasoning(group, stats)
show_outcomes(group, stats)
show_diversity(group, stats)
show_sycophancy(group, stats)
