"""The Internals page under AppTest, on a real internals run of the demo pair read back from the store.

The demo run (generations and internals, ~10 s on 2 cores) happens once per module; each test files its
result under a finished run of its own store, as a worker would, and opens the page on it. A hand-built
result carries hostile tokens, and a run whose internals stage was skipped carries its reason.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from ui_helpers import DEMO_CONFIG, markdown_strings, open_app

from afterburn_core.config import AnalysisConfig
from afterburn_core.internals.types import AdlReading, InternalsResult, PatchscopeReading, PromptLens, TokenScore
from afterburn_core.jobs import create_run
from afterburn_core.runner import execute_run
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore, load_result
from afterburn_core.views.internals import internals_view
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

INTERNALS = "pages/internals.py"
CONFIG = AnalysisConfig(device="cpu", **DEMO_CONFIG)
SKIP_REASON = "the architecture map found no decoder blocks in <b>Toy</b>"
HOSTILE_TOKENS = ("<img src=x onerror=alert(1)>", "[link](javascript:x)", ":red[x] **b**")


@pytest.fixture(scope="module")
def demo_internals(tmp_path_factory) -> InternalsResult:
    """The real internals result of demo:base → demo:trained, computed once."""
    with RunStore(tmp_path_factory.mktemp("internals-run")) as store:
        run_id = create_run(store, "demo:base", "demo:trained", CONFIG, analyses=("internals",))
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error
        return load_result(store, run_id, InternalsResult)


def file_run(home, result: InternalsResult | None = None, skipped: str | None = None) -> str:
    """A finished run holding ``result`` (or an internals stage skipped for ``skipped``); its id."""
    with RunStore(home) as store:
        run_id = create_run(store, "demo:base", "demo:trained", CONFIG, analyses=("internals",))
        if result is not None:
            store.put_result(run_id, f"test-internals-{run_id}", InternalsResult.KIND, InternalsResult.SCHEMA_VERSION,
                             to_jsonable(result))
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
    curves = app.get("vega_lite_chart")
    assert [json.loads(chart.proto.spec)["title"] for chart in curves] == [curve.name for curve in view.curves]
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
    assert info.value == (f"No result: the internals analysis was skipped ({SKIP_REASON}). "
                          "Launch the pair again from the New run page.")
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
