"""The Weights page's Experts section under AppTest, on a real MoE weight diff read back from the store.

The result is the real engine's (``analyze_weights``) on ``moe_factories``'
tiny Mixtral, stacked on disk (``mlp.experts.gate_up_proj`` [E, 2I, H]), with a
rank-2 change planted in expert ``EXPERT`` of layer ``EXPERT_LAYER``; it is
filed under a finished run by ``ui_helpers.store_result`` and the page reads it
back through ``load_result``, as it would from a worker.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from moe_factories import EXPERT, EXPERT_LAYER, EXPERTS, build_moe, moe_spec, stacked_name
from ui_helpers import open_app, store_result

from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.store import RunStore
from afterburn_core.views import weights_detail
from afterburn_core.weights.analysis import analyze_weights
from afterburn_core.weights.types import WeightDiffResult
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

WEIGHTS = "pages/weights.py"


@pytest.fixture(scope="module")
def moe_result(tmp_path_factory) -> WeightDiffResult:
    pair = build_moe(moe_spec("mixtral"), tmp_path_factory.mktemp("mixtral"))["stacked"]
    return analyze_weights(resolve(str(pair.base)), resolve(str(pair.trained)), AnalysisConfig(device="cpu"))


def open_weights(afterburn_home, result: WeightDiffResult):
    with RunStore(afterburn_home) as store:
        run_id = store_result(store, result)
    return open_app(WEIGHTS, run=run_id)


def experts_table(app):
    return next(element.value for element in app.dataframe if "Expert" in element.value.columns)


def test_experts_section_opens_on_the_planted_layer_with_the_planted_expert_first(afterburn_home, moe_result):
    app = open_weights(afterburn_home, moe_result)

    assert not app.exception
    assert "Experts" in [header.value for header in app.subheader]
    picker = app.selectbox(key="weights_moe_layer")
    assert picker.options == ["layer 0", "layer 1"] and picker.value == f"layer {EXPERT_LAYER}"
    table = experts_table(app)
    assert table["Expert"][0] == str(EXPERT) and sorted(table["Expert"]) == [str(e) for e in range(EXPERTS)]
    assert table["rank₉₀"][0] == 2 and bool(table["Low rank"][0])
    assert table["Most changed matrix"][0] == f"{stacked_name(EXPERT_LAYER, 'gate_up_proj')}[{EXPERT}]"
    view = weights_detail.experts(moe_result.experts)
    shown = [element.value for element in app.markdown]
    assert any(escape_markdown(view.reading) in text for text in shown)
    assert any(escape_markdown(view.layers[EXPERT_LAYER].reading) in text for text in shown)


def test_picking_the_other_layer_shows_its_table(afterburn_home, moe_result):
    app = open_weights(afterburn_home, moe_result)

    app.selectbox(key="weights_moe_layer").set_value(f"layer {1 - EXPERT_LAYER}").run()

    assert not app.exception
    view = weights_detail.experts(moe_result.experts).layers[1 - EXPERT_LAYER]
    table = experts_table(app)
    assert list(table["Expert"]) == view.table["Expert"]
    assert table["Relative change"].max() < 0.01  # only the 1e-3 noise moved this layer's experts
    assert any(escape_markdown(view.reading) in element.value for element in app.markdown)


def test_a_dense_result_has_no_experts_section(afterburn_home, moe_result):
    app = open_weights(afterburn_home, replace(moe_result, experts=()))

    assert not app.exception
    assert "Experts" not in [header.value for header in app.subheader]
    with pytest.raises(KeyError):
        app.selectbox(key="weights_moe_layer")
