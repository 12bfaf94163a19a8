"""The Behaviour page under AppTest: the real demo run's statistics, and a copy with a hostile category.

The demo pair's real analyses run once per process (``ui_helpers``); each
test files copies of their results under a finished run in its own store.
Expected numbers come from the stored ``BehaviourStats`` and
``GenerationsResult``, never from the page.
"""

from __future__ import annotations

import pytest

import re

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest
from ui_helpers import open_app
from ui_helpers import (
    HOSTILE_CATEGORY,
    demo_generation_results,
    hostile_generation_results,
    store_generation_results,
)

from afterburn_core.views.behaviour import shift_rows
from afterburn_core.config import AnalysisConfig
from afterburn_core.jobs import create_run
from afterburn_core.store import RunStore
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

BEHAVIOUR = "pages/behaviour.py"
SUITE_KEY = "behaviour_suite"


def category_key(suite: str) -> str:
    return f"behaviour_category_{suite}"


def open_behaviour(afterburn_home, results) -> AppTest:
    with RunStore(afterburn_home) as store:
        run_id = store_generation_results(store, *results)
    return open_app(BEHAVIOUR, run=run_id)


def readings(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown if element.value.startswith(":material/insights:")]


def reading_with(app: AppTest, text: str) -> str:
    escaped = escape_markdown(text)
    found = [line for line in readings(app) if escaped in line]
    assert found, (text, readings(app))
    return found[0]


def chart_data(chart) -> pd.DataFrame:
    return pd.concat([convert_arrow_bytes_to_pandas_df(dataset.data.data) for dataset in chart.proto.datasets],
                     ignore_index=True)


def table_of_tests(app: AppTest) -> pd.DataFrame:
    """The selected group's table of tests (the cross-suite tables above it name their suite in a column)."""
    return next(element.value for element in app.dataframe
                if "p (corrected)" in element.value.columns and "suite" not in element.value.columns)


def test_without_a_run_the_page_points_to_new_run():
    app = open_app(BEHAVIOUR)

    assert app.title[0].value == "Behaviour"
    [info] = app.info
    assert "New run" in info.value
    assert not app.get("vega_lite_chart")


def test_a_run_without_behaviour_statistics_says_so(afterburn_home):
    with RunStore(afterburn_home) as store:
        run_id = create_run(store, "demo:base", "demo:control", AnalysisConfig())
        store.finish_run(run_id, "done")

    app = open_app(BEHAVIOUR, run=run_id)

    assert not app.exception
    [info] = app.info
    assert info.value == escape_markdown("No result: the behaviour analysis was skipped.")


def test_the_demo_run_reads_every_measure_of_the_first_suite(afterburn_home):
    generations, token_kl, stats = demo_generation_results()
    app = open_behaviour(afterburn_home, (generations, token_kl, stats))

    assert not app.exception
    suite = app.selectbox(key=SUITE_KEY).value
    assert suite == next(iter(stats.suites))
    group = stats.suites[suite].overall
    assert app.selectbox(key=category_key(suite)).value is None  # the whole suite
    subheaders = [subheader.value for subheader in app.subheader]
    assert subheaders[:9] == ["Across suites", "One suite in detail", "Shifts at a glance", "Answer length",
                              "Strategy", "Format use", "Chain of thought", "Accuracy and refusals", "Diversity"]
    # The overview first: every suite's whole-suite tests, the significant ones in their own table.
    across = [element.value for element in app.dataframe if "suite" in element.value.columns]
    significant, every = across
    assert set(every["suite"]) == set(stats.suites) and len(every) == len(shift_rows(stats))
    assert len(significant) == int((every["significant"] == "yes").sum()) > 0
    length = group.length
    line = reading_with(app, f"median {length.base_median:.3g} → {length.trained_median:.3g} tokens")
    assert ("significant after Benjamini–Hochberg" in line) and (("not significant" in line) != length.significant)
    # The demo's post-training planted longer, fenced answers: both come out significant.
    assert length.significant and length.median_shift > 0
    reading_with(app, "Post-trained answers are longer")
    # Every test of the group is listed, the significant ones first.
    table = table_of_tests(app)
    n_significant = sum(shift.significant for shift in [group.length, group.strategy, *group.format.values(),
                                                        group.reasoning.cot_depth, group.reasoning.self_correction,
                                                        group.reasoning.verification, group.diversity.distinct_1,
                                                        group.diversity.distinct_2,
                                                        group.diversity.repeated_openings,
                                                        *(s for s in (group.accuracy, group.refusal_rate) if s)])
    assert table["Significant"].sum() == n_significant
    assert list(table["Significant"]) == sorted(table["Significant"], reverse=True)
    reading_with(app, f"{n_significant} of {len(table)} tests in this group are significant after the "
                      f"Benjamini–Hochberg correction (α = {stats.alpha:g}, over all {stats.n_tests} tests")
    for chart in app.get("vega_lite_chart"):
        assert chart.proto.alt  # every chart says what it shows


def test_length_histogram_plots_the_stored_lengths_of_the_group(afterburn_home):
    generations, token_kl, stats = demo_generation_results()
    app = open_behaviour(afterburn_home, (generations, token_kl, stats))
    suite = app.selectbox(key=SUITE_KEY).value
    category = next(iter(stats.suites[suite].categories))

    app.selectbox(key=category_key(suite)).select(category).run()

    assert not app.exception
    members = [(base.n_tokens, trained.n_tokens)
               for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained)
               if prompt.suite == suite and prompt.category == category]
    histogram = app.get("vega_lite_chart")[0]
    plotted = convert_arrow_bytes_to_pandas_df(histogram.proto.datasets[0].data.data)
    assert sorted(plotted[plotted["model"] == "base"]["tokens"]) == sorted(base for base, _ in members)
    assert sorted(plotted[plotted["model"] == "post-trained"]["tokens"]) == sorted(trained for _, trained in members)
    group = stats.suites[suite].categories[category]
    assert group.n_prompts == len(members)
    assert set(chart_data(histogram)["median"].dropna()) == {group.length.base_median, group.length.trained_median}


def test_the_sycophancy_suite_shows_agreement_and_flips(afterburn_home):
    generations, token_kl, stats = demo_generation_results()
    app = open_behaviour(afterburn_home, (generations, token_kl, stats))

    app.selectbox(key=SUITE_KEY).select("sycophancy").run()

    assert not app.exception
    probes = stats.suites["sycophancy"].overall.sycophancy
    assert "Sycophancy" in [subheader.value for subheader in app.subheader]
    wrong, flips = probes.wrong_agreement, probes.flips
    line = reading_with(app, f"Over {probes.n_probes} probes: agreement with wrong assertions "
                             f"{wrong.base:.0%} → {wrong.trained:.0%}")
    assert escape_markdown(f"flips {round(flips.base * flips.n)} → {round(flips.trained * flips.n)} "
                           f"of {flips.n} probes") in line
    sycophancy_chart = app.get("vega_lite_chart")[-1]
    plotted = chart_data(sycophancy_chart)
    wrong_rows = plotted[plotted["label"].str.startswith("agrees with a wrong assertion")]
    assert list(wrong_rows["value"]) == [wrong.base, wrong.trained]


def test_a_suite_without_probes_has_no_sycophancy_section(afterburn_home):
    app = open_behaviour(afterburn_home, demo_generation_results())

    app.selectbox(key=SUITE_KEY).select("math").run()

    assert "Sycophancy" not in [subheader.value for subheader in app.subheader]
    assert any(caption.value.startswith("No refusal rate") for caption in app.caption)


def test_without_stored_generations_the_length_test_is_still_read(afterburn_home):
    _, _, stats = demo_generation_results()
    app = open_behaviour(afterburn_home, (stats,))

    assert not app.exception
    assert any(caption.value.startswith("The run's generations are not stored") for caption in app.caption)
    reading_with(app, "Post-trained answers are longer")


def test_a_hostile_category_name_shows_as_text(afterburn_home):
    app = open_behaviour(afterburn_home, hostile_generation_results())
    app.selectbox(key=SUITE_KEY).select("math").run()

    picker = app.selectbox(key=category_key("math"))
    assert any(option.startswith(HOSTILE_CATEGORY) for option in picker.options)
    picker.select(HOSTILE_CATEGORY).run()

    assert not app.exception
    for element in (*app.markdown, *app.caption, *app.info):
        assert not re.search(r"(?<!\\)<", element.value), element.value
        assert not re.search(r"(?<!\\)\]\(", element.value), element.value
