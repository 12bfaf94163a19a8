"""The Internals page under AppTest, on a real internals run of the demo pair read back from the store.

The demo run (generations and internals with its causal half, math and sycophancy at 48 tokens, ~30 s on
2 cores) happens once per module; each test files its result under a finished run of its own store, as a
worker would, and opens the page on it. A hand-built result carries hostile tokens, another skipped
causal parts with their reasons, and a run whose internals stage was skipped carries its reason. The same
real run opens the Prompts page with its steered and amplified answers, and its stored result is drawn by
every door (page, HTML, Markdown, PDF, terminal) to check they word the causal half alike.
"""

from __future__ import annotations

import html
import io
import json
import shutil
from dataclasses import replace

import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from report_helpers import html_row, markdown_row, pdf_text, terminal_row
from rich.console import Console
from ui_helpers import markdown_strings, open_app

from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.internals.types import (
    AdlReading,
    AmplificationLevel,
    DetectorAtAlpha,
    InternalsResult,
    MetricTriple,
    PatchscopeReading,
    PromptLens,
    SteeringResult,
    StrengthTrial,
    TokenScore,
)
from afterburn_core.jobs import create_run
from afterburn_core.reports import load_report, render
from afterburn_core.reports.markdown import escape
from afterburn_core.runner import execute_run
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore, load_result
from afterburn_core.terminal import print_internals
from afterburn_core.views.internals import internals_view
from afterburn_core.views.internals_causal import (
    AMPLIFICATION_NOTE,
    CLOSED_BY_TRAINED_BLOCK,
    LOCALIZATION_NOTE,
    OPENED_BY_BASE_BLOCK,
    PART_TITLES,
    amplification_view,
    causal_view,
    steering_view,
)
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

INTERNALS = "pages/internals.py"
#: Two suites at 48 tokens: enough for the causal half to read fences, filler and wrong agreement, in ~30 s.
CONFIG = AnalysisConfig(device="cpu", suites=("math", "sycophancy"), max_new_tokens=48)
SKIP_REASON = "the architecture map found no decoder blocks in <b>Toy</b>"
HOSTILE_TOKENS = ("<img src=x onerror=alert(1)>", "[link](javascript:x)", ":red[x] **b**")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[GenerationsResult, InternalsResult]:
    """The real generations and internals results of demo:base → demo:trained, computed once."""
    with RunStore(tmp_path_factory.mktemp("internals-run")) as store:
        run_id = create_run(store, "demo:base", "demo:trained", CONFIG, analyses=("internals",))
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error
        return load_result(store, run_id, GenerationsResult), load_result(store, run_id, InternalsResult)


@pytest.fixture(scope="module")
def demo_internals(demo_run) -> InternalsResult:
    return demo_run[1]


def file_run(home, result: InternalsResult | None = None, skipped: str | None = None,
             generations: GenerationsResult | None = None) -> str:
    """A finished run holding ``result`` and ``generations`` (or an internals stage skipped for ``skipped``)."""
    with RunStore(home) as store:
        run_id = create_run(store, "demo:base", "demo:trained", CONFIG, analyses=("internals",))
        for stored in (result, generations):
            if stored is not None:
                store.put_result(run_id, f"test-{stored.KIND}-{run_id}", stored.KIND, stored.SCHEMA_VERSION,
                                 to_jsonable(stored))
        if skipped is not None:
            store.update_stage(run_id, InternalsResult.KIND, "skipped", 0, 0, skipped)
        store.finish_run(run_id, "done")
        return run_id


def open_internals(home, result: InternalsResult | None = None, skipped: str | None = None):
    return open_app(INTERNALS, run=file_run(home, result, skipped))


def frames(app) -> list:
    return [element.value for element in app.dataframe]


def lens_spec(app) -> dict:
    [chart] = app.get("plotly_chart")
    return json.loads(chart.proto.spec)


def hostile(result: InternalsResult) -> InternalsResult:
    """``result`` with hostile decoded tokens in its ADL tables, patchscope, persistent list and lens grids."""
    scores = tuple(TokenScore(900 + index, token, 0.3 - 0.1 * index, 1.5) for index, token in enumerate(HOSTILE_TOKENS))
    adl = (AdlReading(2, (0, 1, 2, 3, 4), 1.7, scores, scores[::-1],
                      (PatchscopeReading(1.0, HOSTILE_TOKENS, (900, 901, 902)),), HOSTILE_TOKENS[:2]),)
    lens = PromptLens("neutral/0", HOSTILE_TOKENS, ((0.1, 0.2, 0.3),) * result.num_layers,
                      (HOSTILE_TOKENS,) * result.num_layers, (HOSTILE_TOKENS[::-1],) * result.num_layers)
    return replace(result, adl=adl, lens_prompts=(lens,))


def test_the_page_shows_the_reading_curves_input_sets_method_and_cost(afterburn_home, demo_internals):
    app = open_internals(afterburn_home, demo_internals)

    view = internals_view(demo_internals)
    assert app.title[0].value == "Internals"
    assert any(escape_markdown(view.reading) in element.value for element in app.markdown)
    titles = [json.loads(chart.proto.spec).get("title") for chart in app.get("vega_lite_chart")]
    assert titles[:len(view.curves)] == [curve.name for curve in view.curves]
    sets = next(frame for frame in frames(app) if "input set" in frame.columns)
    assert list(sets["input set"]) == [row.input_set for row in view.input_sets]
    assert list(sets["input set"])[0] == "neutral" and "sycophancy" in list(sets["input set"])
    captions = [element.value for element in app.caption]
    assert escape_markdown(view.method_line) in captions and escape_markdown(view.cost_line) in captions


def test_the_adl_tables_hold_the_demos_promoted_words_and_follow_the_picker(afterburn_home, demo_internals):
    app = open_internals(afterburn_home, demo_internals)

    view = internals_view(demo_internals)
    picker = app.selectbox(key="internals_adl")
    assert picker.options == [table.title for table in view.adl] and picker.value == view.adl[0].title
    promoted = frames(app)[1]
    assert {"Great", " question"} <= set(promoted["token"])
    assert list(promoted["token"]) == [row.token for row in view.adl[0].promoted]
    assert list(promoted["probability"]) == [row.score for row in view.adl[0].promoted]
    patchscope = next(frame for frame in frames(app) if "scale (× mean norm)" in frame.columns)
    assert list(patchscope["scale (× mean norm)"]) == [scale for scale, _ in view.adl[0].patchscope]
    assert " · ".join(view.adl[0].persistent) in [element.value for element in app.text]

    single = next(table for table in view.adl if "averaged" not in table.title)
    picker.set_value(single.title).run()

    assert not app.exception
    assert list(frames(app)[1]["token"]) == [row.token for row in single.promoted]
    assert list(frames(app)[2]["token"]) == [row.token for row in single.demoted]
    assert "Patchscope reads the averaged difference only." in [element.value for element in app.caption]


def test_the_lens_heatmap_draws_the_picked_inputs_grid(afterburn_home, demo_internals):
    app = open_internals(afterburn_home, demo_internals)

    view = internals_view(demo_internals)
    picker = app.selectbox(key="internals_lens")
    assert picker.options == [grid.label for grid in view.lenses]
    [heatmap] = lens_spec(app)["data"]
    assert heatmap["z"] == [list(row) for row in view.lenses[0].kl]

    picker.set_value(view.lenses[-1].label).run()

    [heatmap] = lens_spec(app)["data"]
    grid = view.lenses[-1]
    assert heatmap["z"] == [list(row) for row in grid.kl]
    assert [cell[1] for cell in heatmap["customdata"][-1]] == list(grid.base_top[-1])  # demo tokens need no escape
    assert [cell[2] for cell in heatmap["customdata"][-1]] == list(grid.trained_top[-1])


def test_a_run_whose_internals_stage_was_skipped_says_why(afterburn_home):
    app = open_internals(afterburn_home, skipped=SKIP_REASON)

    [info] = app.info
    assert info.value == escape_markdown(f"No result: the internals analysis was skipped ({SKIP_REASON}).")
    assert [button.label for button in app.button] == ["Compute the internals analysis for this pair"]
    assert not app.get("plotly_chart") and not app.dataframe


def test_hostile_tokens_are_shown_as_text(afterburn_home, demo_internals):
    app = open_internals(afterburn_home, hostile(demo_internals))

    promoted, demoted = frames(app)[1:3]
    assert list(promoted["token"]) == list(HOSTILE_TOKENS) and list(demoted["token"]) == list(HOSTILE_TOKENS[::-1])
    patchscope = next(frame for frame in frames(app) if "tokens" in frame.columns)
    assert list(patchscope["tokens"][0]) == list(HOSTILE_TOKENS)
    assert " · ".join(HOSTILE_TOKENS[:2]) in [element.value for element in app.text]
    # Nothing a model wrote reaches a markdown-rendering field.
    assert not any(token in text for text in markdown_strings(app) for token in HOSTILE_TOKENS)
    # Plotly reads a few HTML tags in hover and tick text: there the tokens are escaped.
    spec = lens_spec(app)
    [heatmap] = spec["data"]
    assert heatmap["customdata"][0][0] == ["&lt;img src=x onerror=alert(1)&gt;",
                                           "&lt;img src=x onerror=alert(1)&gt;", ":red[x] **b**", "0"]
    assert spec["layout"]["xaxis"]["ticktext"][0] == "&lt;img src=x onerror=alert(1)&gt;"
    assert "<img" not in json.dumps(spec)


# --- the causal half ------------------------------------------------------------------------------------------

HOSTILE_REASON = "blocks of <img src=x onerror=alert(1)> [x](javascript:x) cannot be swapped"


def subheaders(app) -> list[str]:
    return [element.value for element in app.subheader]


def chart_values(app, field: str) -> list[dict]:
    """The data rows of the one Vega-Lite chart that encodes ``field``."""
    [chart] = [chart for chart in app.get("vega_lite_chart")
               if f'"field": "{field}"' in json.dumps(json.loads(chart.proto.spec))]
    return convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data).to_dict("records")


def test_the_causal_sections_show_steering_localization_and_amplification(afterburn_home, demo_internals):
    assert demo_internals.steering and demo_internals.localization and demo_internals.amplification
    app = open_internals(afterburn_home, demo_internals)

    assert not app.exception
    assert subheaders(app)[-3:] == list(PART_TITLES.values())
    causal = causal_view(demo_internals)
    markdown = [element.value for element in app.markdown]
    for line in (causal.steering.reading, causal.localization.reading, causal.amplification.reading):
        assert f":material/insights: {escape_markdown(line)}" in markdown
    captions = [element.value for element in app.caption]
    assert escape_markdown(causal.steering.method_line) in captions
    assert escape_markdown(LOCALIZATION_NOTE) in captions
    assert escape_markdown(f"{causal.amplification.sample_line} {AMPLIFICATION_NOTE}") in captions
    for table in (causal.steering.trials, causal.steering.metrics, causal.localization.table,
                  causal.amplification.table):
        shown = next(frame for frame in frames(app) if tuple(frame.columns) == table.columns)
        assert [tuple(row) for row in shown.itertuples(index=False)] == list(table.rows)
    trials = next(frame for frame in frames(app) if "within the band" in frame.columns)
    assert list(trials["within the band"]) == ["yes" if trial.accepted else "no"
                                               for trial in demo_internals.steering.trials]
    metrics = next(frame for frame in frames(app) if "steered base" in frame.columns)
    fences = metrics[metrics["metric"] == "fenced non-code answers"].iloc[0]
    triple = demo_internals.steering.metrics["fence_rate"]
    assert (fences["base"], fences["post-trained"]) == (f"{triple.base:.1%}", f"{triple.trained:.1%}")

    bars = chart_values(app, "share of the KL gap")
    assert [row["share of the KL gap"] for row in bars] == pytest.approx(
        [block.kl_recovered for block in demo_internals.localization]
        + [block.reverse_kl_recovered for block in demo_internals.localization])
    assert {row["swap"] for row in bars} == {CLOSED_BY_TRAINED_BLOCK, OPENED_BY_BASE_BLOCK}
    rates = chart_values(app, "rate")
    assert [(row["detector"], row["α"], row["rate"]) for row in rates] == [
        (point.detector, point.alpha, point.rate) for point in causal.amplification.points]
    assert {row["α"] for row in rates} == {0.0, 1.0, 2.0}
    table = next(frame for frame in frames(app) if "flagged" in frame.columns)
    detectors = {name for level in demo_internals.amplification for name in level.detectors}
    assert len(table) == 3 * len(detectors)
    texts = [element.value for element in app.text]
    assert all(line in texts for line in causal.amplification.lines) and causal.amplification.lines


def test_strength_zero_says_nothing_was_steered(afterburn_home, demo_internals):
    steering = replace(demo_internals.steering, strength=0.0,
                       trials=(StrengthTrial(1.0, 99.0, False),))
    app = open_internals(afterburn_home, replace(demo_internals, steering=steering))

    view = steering_view(steering)
    assert view.reading == (
        "No strength on the grid kept the base's perplexity within the band, so nothing was steered: the steered "
        "answers are the base's own (1 strength tried).")
    assert f":material/insights: {escape_markdown(view.reading)}" in [element.value for element in app.markdown]
    assert view.method_line.endswith("the first tried was already outside, so nothing was added at layer 2.")
    assert escape_markdown(view.method_line) in [element.value for element in app.caption]


def test_causal_parts_that_did_not_run_say_why(afterburn_home, demo_internals):
    result = replace(demo_internals, steering=None, localization=None, amplification=None,
                     skipped={"localization": HOSTILE_REASON,
                              "amplification": "two models need 9.1 GB; 4.0 GB is free"})
    app = open_internals(afterburn_home, result)

    assert not app.exception
    assert [element.value for element in app.info] == [escape_markdown(note) for note in (
        "The steering check was not computed: the run's steering setting was off, or the run had no generations "
        "to work on.",
        f"The layer localization did not run: {HOSTILE_REASON}",
        "The logit-difference amplification did not run: two models need 9.1 GB; 4.0 GB is free",
    )]
    assert "<img" not in " ".join(markdown_strings(app)).replace("\\<img", "")
    assert not any("within the band" in frame.columns or "flagged" in frame.columns for frame in frames(app))


def test_the_steering_reading_names_the_metric_moved_most_toward_the_trained_model():
    steering = SteeringResult(
        layer=2, strength=4.0, perplexity_base=20.0, perplexity_bound=40.0,
        trials=(StrengthTrial(2.0, 24.0, True), StrengthTrial(4.0, 31.0, True), StrengthTrial(8.0, 155.0, False)),
        metrics={"answer_tokens": MetricTriple(30.0, 33.0, 60.0), "fence_rate": MetricTriple(0.0, 0.6, 0.9),
                 "refusal_rate": MetricTriple(None, None, None), "format_gaming_score": MetricTriple(None, 5.0, 80.0)},
        completions=())

    view = steering_view(steering)

    assert view.reading == ("Steered at layer 2 with strength 4, the base moves toward the post-trained model on 3 "
                            "of 3 metrics; most on fenced non-code answers: 0.0% → 60.0% (post-trained 90.0%), "
                            "66.7% of the gap.")
    assert view.method_line.endswith("Strengths are tried from the smallest up while the base's perplexity on "
                                     "held-out neutral text stays within 10 … 40 (its own: 20); the last one "
                                     "within it is used.")
    assert view.trials.rows == (("2", "24", "yes"), ("4", "31", "yes"), ("8", "155", "no"))
    assert view.metrics.rows == (
        ("mean answer tokens", "30.0", "33.0", "60.0"), ("fenced non-code answers", "0.0%", "60.0%", "90.0%"),
        ("safety prompts refused", "–", "–", "–"), ("Format gaming score (0–100)", "–", "5", "80"))


def test_the_amplification_reading_names_the_largest_rise_with_its_rates():
    def at(alpha: float, rate: float) -> AmplificationLevel:
        return AmplificationLevel(alpha, {
            "format_gaming": DetectorAtAlpha(10 + 30 * rate, rate > 0.2, rate, rate / 2, min(1.0, rate * 2)),
            "sycophancy": DetectorAtAlpha(5.0, False, 0.1, 0.05, 0.2),
            "composite_like": DetectorAtAlpha(0.0, False, None, available=False)}, ())

    view = amplification_view((at(2.0, 0.34), at(0.0, 0.03), at(1.0, 0.12)))

    assert view.alphas == (0.0, 1.0, 2.0)
    assert view.reading == ("Format gaming: 3.0% of answers at α = 0, 34.0% at α = 2; the largest rise with α of "
                            "any detector.")
    assert view.lines == ("Format gaming: 3.0% of answers at α = 0, 34.0% at α = 2",
                          "Sycophancy: 10.0% of answers at α = 0, 10.0% at α = 2")
    assert view.sample_line == "0 answers per α; α = 0, 1, 2."
    assert ("Format gaming", "2", "a format its prompt did not ask for", "34.0%", "17.0%–68.0%", "20", "yes") \
        in view.table.rows
    assert [row[1:] for row in view.table.rows if row[0] == "composite_like"] == [
        (alpha, "–", "–", "–", "–", "not available") for alpha in ("0", "1", "2")]


OUTSIDE_THE_BLOCKS = ("The models differ (0.42 nats per answer token), but swapping any one decoder block closes "
                      "and opens none of it: the change lies outside the decoder blocks (embeddings, final norm or "
                      "head).")


@pytest.mark.parametrize("outside", [False, True], ids=["demo", "gap-outside-the-blocks"])
def test_every_door_words_the_causal_half_alike(afterburn_home, demo_internals, tmp_path, outside):
    """The page, the HTML, the Markdown, the PDF and the terminal show one localization sentence and one set of
    steering metric cells for the same stored result; also where the models differ but no block holds it."""
    result = demo_internals
    if outside:
        result = replace(demo_internals, localization_gap=0.42, localization=tuple(
            replace(block, kl_recovered=0.0, reverse_kl_recovered=0.0) for block in demo_internals.localization))
    causal = causal_view(result)
    sentence, metrics = causal.localization.reading, causal.steering.metrics
    assert (sentence == OUTSIDE_THE_BLOCKS) if outside else sentence.startswith("Block ")
    run_id = file_run(afterburn_home, result)

    app = open_app(INTERNALS, run=run_id)
    assert f":material/insights: {escape_markdown(sentence)}" in [element.value for element in app.markdown]
    shown = next(frame for frame in frames(app) if "steered base" in frame.columns)
    assert [tuple(row) for row in shown.itertuples(index=False)] == list(metrics.rows)

    with RunStore(afterburn_home) as store:
        report = load_report(store, run_id)
    page = render(report, "html").decode("utf-8")
    document = render(report, "md").decode("utf-8")
    assert f"<p>{html.escape(sentence)}</p>" in page and f"\n{escape(sentence)}\n" in document
    for row in metrics.rows:
        assert html_row(row, metrics.numeric) in page and markdown_row(row) in document, row
    if shutil.which("pdftotext"):
        flat = " ".join(pdf_text(render(report, "pdf"), tmp_path).split())
        assert " ".join(sentence.split()) in flat
        assert all(" ".join(row) in flat for row in metrics.rows)

    console = Console(file=io.StringIO(), record=True, width=160, color_system=None)
    print_internals(console, result)
    printed = console.export_text()
    assert f"{PART_TITLES['localization']}: {sentence}" in " ".join(printed.split())
    assert all(terminal_row(row).search(printed) for row in metrics.rows)


def test_the_prompts_page_of_the_run_shows_the_steered_and_amplified_answers(afterburn_home, demo_run):
    generations, internals = demo_run
    app = open_app("pages/prompts.py", run=file_run(afterburn_home, internals, generations=generations))

    assert not app.exception
    picker = app.selectbox(key="prompts_alpha")
    assert picker.options == ["0", "1", "2"] and picker.value == 2.0
    amplified = next(level for level in internals.amplification if level.alpha == 2.0)
    assert [element.value for element in app.code][1:] == [
        generations.base[0].text, generations.trained[0].text, internals.steering.completions[0].text,
        amplified.completions[0].text]

    picker.set_value(0.0).run()

    zero = next(level for level in internals.amplification if level.alpha == 0.0)
    assert [element.value for element in app.code][-1] == zero.completions[0].text
