"""The Weights page under AppTest: a stored ``WeightDiffResult`` read back through the real store.

Most results are built by hand (``ui_helpers``) with the demo pair's shape and
planted edits, so each test knows the numbers the page must show; the last
tests run the real analysis on the bundled demo pair and adapter. Charts are
checked through what the browser would receive: the Vega-Lite spec, its
dataset and the chart's one-line reading.
"""

from __future__ import annotations

import pytest

import json
import re
from dataclasses import replace

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest
from ui_helpers import finished_run, open_app
from ui_helpers import (
    EDITED_PROJECTION,
    EMBEDDING,
    MOVED_TOKENS,
    RESCALED_NORM,
    SPECTRUM_TOP_K,
    adapter_result,
    store_result,
    weight_diff_result,
)

from afterburn_core.config import AnalysisConfig
from afterburn_core.demo import MEASUREMENTS_PATH
from afterburn_core.jobs import create_run
from afterburn_core.store import RunStore
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

WEIGHTS = "pages/weights.py"


def charts(app: AppTest) -> list:
    return list(app.get("vega_lite_chart"))


def chart_spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def chart_data(chart) -> pd.DataFrame:
    """Every dataset of a (layered) chart, stacked: what the browser plots."""
    return pd.concat(
        [convert_arrow_bytes_to_pandas_df(dataset.data.data) for dataset in chart.proto.datasets], ignore_index=True
    )


def readings(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown if element.value.startswith(":material/insights:")]


def reading_of(text: str) -> str:
    return f":material/insights: {escape_markdown(text)}"


def frame_with(app: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with this column."""
    return next(element.value for element in app.dataframe if column in element.value.columns)


def open_weights(afterburn_home, result) -> AppTest:
    with RunStore(afterburn_home) as store:
        run_id = store_result(store, result)
    return open_app(WEIGHTS, run=run_id)


def test_without_a_run_the_page_points_to_new_run():
    app = open_app(WEIGHTS)

    assert app.title[0].value == "Weights"
    [info] = app.info
    assert "New run" in info.value
    assert not charts(app) and not app.dataframe


def test_a_run_without_a_weight_diff_says_so(afterburn_home):
    with RunStore(afterburn_home) as store:
        run_id = create_run(store, "demo:base", "demo:control", AnalysisConfig())
        store.finish_run(run_id, "done")

    app = open_app(WEIGHTS, run=run_id)

    assert not app.exception
    [info] = app.info
    assert info.value == escape_markdown("No result: the weight diff was skipped.")
    assert not charts(app) and not app.dataframe


def test_profile_concentration_and_findings_come_first(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result())

    assert not app.exception
    assert ":blue-badge[:material/biotech: surgical]" in [element.value for element in app.markdown]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Top 10% share"] == "62%"
    assert metrics["Gini"] == "0.71"
    assert metrics["Tensors compared"] == "39"
    [warning] = app.warning
    assert warning.value.startswith("**Low\\-rank edit** · model\\.layers\\.1\\.self\\_attn\\.q\\_proj\\.weight")
    assert [info.value.split(" · ")[0] for info in app.info] == ["**Norm rescaled**", "**Embedding rows moved**"]
    assert any(element.value.startswith(":material/info: **Change is concentrated**") for element in app.markdown)
    assert any("Every tensor pairs up one to one" in caption.value for caption in app.caption)


def test_metric_selector_recolours_the_layer_heatmap(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result())
    heatmap = charts(app)[0]
    assert chart_spec(heatmap)["layer"][0]["encoding"]["color"]["title"] == "Relative change"
    cells = chart_data(heatmap).drop_duplicates()
    assert cells.set_index(["layer", "module"]).loc[("1", "q_proj"), "value"] == 0.42
    assert heatmap.proto.alt == "Change peaks in layer 1 q_proj: 6.1× the median relative change (0.420 against 0.069)."
    assert reading_of(heatmap.proto.alt) in readings(app)

    app.segmented_control(key="weights_cell_metric").set_value("Effective rank").run()

    assert not app.exception
    heatmap = charts(app)[0]
    assert chart_spec(heatmap)["layer"][0]["encoding"]["color"]["title"] == "Effective rank"
    assert chart_spec(heatmap)["layer"][0]["encoding"]["color"]["scale"]["reverse"] is True  # low ranks stand out
    cells = chart_data(heatmap).drop_duplicates().set_index(["layer", "module"])
    assert cells.loc[("1", "q_proj"), "value"] == 2.3
    assert ("0", "norm") not in cells.index  # a 1-D tensor has no rank: a blank cell, not a zero
    assert heatmap.proto.alt.startswith("Lowest effective rank: layer 1 q_proj at 2.3, against a median of")


def test_head_projection_selector_switches_the_head_grid(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result())
    assert charts(app)[1].proto.alt.startswith("Head change (combined) peaks at layer 1 head 0:")

    app.segmented_control(key="weights_head_projection").set_value("q").run()

    heads = charts(app)[1]
    assert heads.proto.alt == "Head change (q) peaks at layer 1 head 0: 10.8× the median head (0.610 against 0.056)."
    grid = chart_data(heads).drop_duplicates().set_index(["layer", "head"])["value"]
    assert grid[("1", "2")] == 0.48
    assert len(grid) == 16


def test_selecting_a_tensor_shows_its_spectrum(afterburn_home):
    result = weight_diff_result()
    by_name = {tensor.name: tensor for tensor in result.tensors}
    app = open_weights(afterburn_home, result)

    picker = app.selectbox(key="weights_spectrum_tensor")
    assert picker.value == EDITED_PROJECTION  # the most changed tensor first
    spectrum = charts(app)[2]
    plotted = convert_arrow_bytes_to_pandas_df(spectrum.proto.datasets[0].data.data)
    assert tuple(plotted["sigma"]) == by_name[EDITED_PROJECTION].singular_values
    assert set(chart_data(spectrum)["marker"].dropna()) == {"effective rank 2.3", "rank₉₀ = 2"}
    assert chart_spec(spectrum)["layer"][0]["encoding"]["y"]["scale"]["type"] == "log"
    assert spectrum.proto.alt == (
        "σ₁ alone holds 62% of this tensor's change; 90% of it lies in 2 of 128 possible directions "
        "(effective rank 2.3)."
    )

    diffuse = "model.layers.3.mlp.up_proj.weight"
    picker.select(diffuse).run()

    assert not app.exception
    spectrum = charts(app)[2]
    plotted = convert_arrow_bytes_to_pandas_df(spectrum.proto.datasets[0].data.data)
    assert tuple(plotted["sigma"]) == by_name[diffuse].singular_values
    assert f"so 90% needs more than {SPECTRUM_TOP_K} of 128 directions" in spectrum.proto.alt
    # Its effective rank lies beyond the 16 computed values: said in words, not drawn off the chart.
    assert "marker" not in chart_data(spectrum).columns
    method = next(caption.value for caption in app.caption if caption.value.startswith("Method"))
    assert "randomized range finder" in method and "error bound 0\\.00025" in method
    assert f"Only the top {SPECTRUM_TOP_K} of 128 singular values are computed" in method
    assert "lies beyond the computed values" in method


def test_top_tensors_table_is_sorted_and_downloadable(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result())

    table = frame_with(app, "Effective rank")
    assert table["Tensor"].iloc[0] == EDITED_PROJECTION
    assert list(table["Relative change"]) == sorted(table["Relative change"], reverse=True)
    assert len(table) == 39
    assert [button.label for button in app.get("download_button")] == ["Download every tensor (CSV)"]


def test_norm_shifts_and_embedding_drift_name_the_planted_edits(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result())

    # Against its peers (the same norm in every layer), the number the diagnosis's outlier finding prints.
    assert reading_of(
        f"{RESCALED_NORM} moved most: mean ×1.25, 2.8× the median ‖ΔW‖/‖W‖ of its 4 peers "
        "model.layers.*.post_attention_layernorm.weight (0.25 against 0.088)."
    ) in readings(app)
    assert reading_of(
        "The most-moved row, token 517 'ing', drifted 15.0× the median row drift (1.47 against 0.098)."
    ) in readings(app)
    tokens = frame_with(app, "Token")
    assert list(tokens["Token"][:8]) == [repr(token) for token in MOVED_TOKENS]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Rows compared"] == "1,024"
    assert readings(app)[-1] == reading_of(
        "The most-moved row, token 517 'ing', drifted 15.0× the median row drift (1.47 against 0.098)."
    )


def test_unpaired_resized_and_tied_tensors_are_listed(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result(unpaired=True))

    assert not app.exception
    assert f"**Not compared one to one** ({escape_markdown('1 base only, 1 post-trained only, 1 resized, 1 tied')})" in [
        element.value for element in app.markdown
    ]
    unpaired = frame_with(app, "Note")
    rows = dict(zip(unpaired["Status"], zip(unpaired["Tensor"], unpaired["Post-trained shape"], unpaired["Note"])))
    assert rows["resized"] == (EMBEDDING, "1032 × 128", "metrics cover the shared rows; 8 rows added")
    assert rows["tied"][2] == f"shares its storage with {EMBEDDING}; its change is that tensor's"
    assert rows["base only"][1] == "—"


def as_stored(result):
    """``result`` named as the engine writes it: the normalized key in ``name`` (and in ``tied_to``, the norm
    shifts, the embedding drift), the name its file stores in ``stored_name``."""
    def key(name):
        return name.removeprefix("model.")

    return replace(
        result,
        tensors=tuple(replace(tensor, name=key(tensor.name), stored_name=tensor.name,
                              tied_to=key(tensor.tied_to) if tensor.tied_to else None) for tensor in result.tensors),
        norms=tuple(replace(shift, name=key(shift.name)) for shift in result.norms),
        embeddings=replace(result.embeddings, tensor=key(result.embeddings.tensor)),
    )


def test_tensors_are_named_as_stored_and_the_search_finds_either_name(afterburn_home):
    app = open_weights(afterburn_home, as_stored(weight_diff_result(unpaired=True)))

    assert not app.exception
    table = frame_with(app, "Effective rank")
    assert (table["Tensor"].iloc[0], table["Key"].iloc[0]) == (EDITED_PROJECTION, "layers.1.self_attn.q_proj.weight")
    assert app.selectbox(key="weights_spectrum_tensor").value == EDITED_PROJECTION
    assert reading_of(
        f"{RESCALED_NORM} moved most: mean ×1.25, 2.8× the median ‖ΔW‖/‖W‖ of its 4 peers "
        "layers.*.post_attention_layernorm.weight (0.25 against 0.088)."
    ) in readings(app)
    unpaired = frame_with(app, "Note")
    assert dict(zip(unpaired["Status"], unpaired["Note"]))["tied"] == (
        f"shares its storage with {EMBEDDING}; its change is that tensor's")
    assert escape_markdown(f"{EMBEDDING}: the most-moved rows; the dashed line is the median drift. Tokens are "
                           "decoded and quoted, invisible characters written out.") in [c.value for c in app.caption]

    search = app.text_input(key="weights_tensor_search")
    search.input("model.layers.3.mlp.up").run()
    assert list(frame_with(app, "Effective rank")["Tensor"]) == ["model.layers.3.mlp.up_proj.weight"]
    search.input("LAYERS.1.SELF_ATTN.Q_PROJ.WEIGHT").run()
    assert list(frame_with(app, "Effective rank")["Key"]) == ["layers.1.self_attn.q_proj.weight"]
    search.input("lora_A").run()
    assert frame_with(app, "Effective rank").empty
    assert escape_markdown("No tensor's name holds 'lora_A'.") in [caption.value for caption in app.caption]
    assert not app.exception


def test_model_strings_render_as_plain_text(afterburn_home):
    hostile_tokens = (
        "<img src=x onerror=alert(1)>", "[click](javascript:alert(1))", "**bold**\nnext line",
        "\u202eevil", ":red[x] $x$", "\x00", " lead", "ok",
    )
    hostile_name = "model.layers.1.**q**[x](javascript:alert(1))<script>alert(1)</script>"
    result = weight_diff_result(token_strings=hostile_tokens)
    result = replace(result, tensors=tuple(
        replace(tensor, name=hostile_name) if tensor.name == EDITED_PROJECTION else tensor for tensor in result.tensors
    ))
    app = open_weights(afterburn_home, result)

    assert not app.exception
    tokens = frame_with(app, "Token")
    assert list(tokens["Token"][:8]) == [repr(token) for token in hostile_tokens]
    assert "'\\u202eevil'" in list(tokens["Token"])  # the direction override is spelled out, not applied
    assert frame_with(app, "Effective rank")["Tensor"].iloc[0] == hostile_name
    assert app.selectbox(key="weights_spectrum_tensor").value == hostile_name
    drift_bars = charts(app)[4]
    assert f"517  {hostile_tokens[0]!r}" in list(chart_data(drift_bars)["label"])
    assert reading_of(f"{hostile_name} changed most: relative change 0.420, 1.7× the next one; "
                      "39 of 39 compared tensors changed.") in readings(app)
    for element in (*app.markdown, *app.caption, *app.info, *app.warning):
        assert not re.search(r"(?<!\\)<", element.value), element.value  # no tag survives unescaped
        assert not re.search(r"(?<!\\)\]\(", element.value), element.value  # nor a link
        assert "\n" not in element.value and "\u202e" not in element.value


def test_an_adapter_gets_the_lora_view(afterburn_home):
    app = open_weights(afterburn_home, adapter_result(rank=8))

    assert not app.exception
    assert "LoRA adapter" in [subheader.value for subheader in app.subheader]
    assert reading_of(
        "The adapter touches q_proj, v_proj, o_proj in layers 0–3 (12 tensors), rank 8 in each."
    ) in readings(app)
    lora = frame_with(app, "‖s·B·A‖")
    assert set(lora["Rank"]) == {8} and len(lora) == 12
    assert set(lora["Module"]) == {"q_proj", "v_proj", "o_proj"}
    method = next(caption.value for caption in app.caption if caption.value.startswith("Method"))
    assert "from the LoRA factors" in method and "ΔW = s·B·A has rank 8, every other singular value is exactly 0" in method
    captions = [caption.value for caption in app.caption]
    assert any(caption.startswith(escape_markdown("No per-head scores")) for caption in captions)
    assert any(caption.startswith("No embedding matrix was compared") for caption in captions)


def test_a_full_fine_tune_has_no_lora_view(afterburn_home):
    app = open_weights(afterburn_home, weight_diff_result())

    assert "LoRA adapter" not in [subheader.value for subheader in app.subheader]


# --- the real analysis on the bundled demo pair -------------------------------------------------


def test_the_demo_pair_through_the_real_analysis_shows_what_was_planted(afterburn_home):
    planted = json.loads(MEASUREMENTS_PATH.read_text())["planted"]
    with RunStore(afterburn_home) as store:
        run_id = finished_run(store, "demo:base", "demo:trained")

    app = open_app(WEIGHTS, run=run_id)

    assert not app.exception
    [heatmap, heads, spectrum, norms, drift_bars] = charts(app)
    assert heatmap.proto.alt.startswith("Change peaks in layer 1 q_proj:")
    # Named as the demo's safetensors store them (model.…), not by the normalized key the sides pair by.
    assert planted["projection"] == "model.layers.1.self_attn.q_proj.weight"
    assert app.selectbox(key="weights_spectrum_tensor").value == planted["projection"]
    assert f"90% of it lies in {planted['projection_rank']} of 128 possible directions" in spectrum.proto.alt
    assert norms.proto.alt.startswith(f"{planted['norm_tensor']} moved most: mean ×1.2")
    table = frame_with(app, "Effective rank")
    assert (table["Tensor"].iloc[0], table["Key"].iloc[0]) == (planted["projection"], "layers.1.self_attn.q_proj.weight")
    tokens = frame_with(app, "Token id")
    assert set(tokens["Token id"][:8]) == set(planted["moved_token_ids"])
    assert "LoRA adapter" not in [subheader.value for subheader in app.subheader]


def test_the_demo_adapter_through_the_real_analysis_gets_the_lora_view(afterburn_home):
    with RunStore(afterburn_home) as store:
        run_id = finished_run(store, "demo:base", "demo:lora")

    app = open_app(WEIGHTS, run=run_id)

    assert not app.exception
    # The demo adapter: r = 8 on q_proj, v_proj and o_proj of all 4 layers (afterburn_core/demo/README.md).
    assert reading_of(
        "The adapter touches q_proj, v_proj, o_proj in layers 0–3 (12 tensors), rank 8 in each."
    ) in readings(app)
    method = next(caption.value for caption in app.caption if caption.value.startswith("Method"))
    assert "from the LoRA factors" in method and "has rank 8" in method
