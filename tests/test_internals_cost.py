"""The internals cost estimate against real runs of the demo pairs, its wording, and the New run page showing it.

A real internals run (generations first) of demo:base → demo:trained (two passes, a scratch on disk) and of
demo:base → demo:lora (adapter toggled, no scratch), each once per module; the estimate, made from the
trained side's description and the run's prompt count, must count exactly the forward and patchscope passes
the run counted, and bound its scratch from above within a few percent.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from ui_helpers import DEMO_CONFIG, open_app

from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.suites import load_suites
from afterburn_core.internals.analysis import DEFAULT_BATCH
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.internals.cost import InternalsCostEstimate, estimate_internals_cost
from afterburn_core.internals.readings import NEUTRAL
from afterburn_core.internals.types import InternalsResult
from afterburn_core.jobs import create_run
from afterburn_core.runner import execute_run
from afterburn_core.store import RunStore, load_result
from afterburn_core.views.internals import cost_estimate_line
from pages.common import escape_markdown

CONFIG = AnalysisConfig(device="cpu", **DEMO_CONFIG, steering=False, localization=False, amplification=False)
#: How far above the real scratch the estimate may land: it assumes every row is internals_tokens wide,
#: and the demo's short neutral passages and suite prompts pad their batches to less (measured: 6.9%).
SCRATCH_SLACK = 1.10


def internals_run(tmp_path_factory, trained: str) -> InternalsResult:
    with RunStore(tmp_path_factory.mktemp("internals-cost")) as store:
        run_id = create_run(store, "demo:base", trained, CONFIG, analyses=("internals",))
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error
        return load_result(store, run_id, InternalsResult)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> InternalsResult:
    return internals_run(tmp_path_factory, "demo:trained")


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory) -> InternalsResult:
    return internals_run(tmp_path_factory, "demo:lora")


def prompts_read(result: InternalsResult) -> int:
    return sum(entry.sequences for entry in result.input_sets if entry.input_set != NEUTRAL)


def estimate(trained: str, config: AnalysisConfig = CONFIG, prompts: int | None = None) -> InternalsCostEstimate:
    count = sum(len(suite.prompts) for suite in load_suites(config.suites)) if prompts is None else prompts
    found = estimate_internals_cost(resolve(trained).description, config, count)
    assert found is not None
    return found


def test_the_estimate_counts_a_two_pass_runs_passes_exactly_and_bounds_its_scratch(full_run):
    assert full_run.method == "two_pass" and full_run.cost.scratch_bytes > 0
    assert prompts_read(full_run) == sum(len(suite.prompts) for suite in load_suites(CONFIG.suites))

    estimated = estimate("demo:trained", prompts=prompts_read(full_run))

    assert estimated.forward_passes == full_run.cost.forward_passes
    assert estimated.patchscope_passes == full_run.cost.patchscope_passes
    assert full_run.cost.scratch_bytes <= estimated.scratch_bytes <= SCRATCH_SLACK * full_run.cost.scratch_bytes


def test_the_estimate_of_an_adapter_counts_its_passes_and_no_scratch(adapter_run):
    assert adapter_run.method == "adapter_toggle"

    estimated = estimate("demo:lora", prompts=prompts_read(adapter_run))

    assert estimated.forward_passes == adapter_run.cost.forward_passes
    assert estimated.patchscope_passes == adapter_run.cost.patchscope_passes
    assert estimated.scratch_bytes == adapter_run.cost.scratch_bytes == 0
    # One model in memory and no copy of the base's lens head (vocab × hidden fp32 on the CPU).
    description = resolve("demo:trained").description
    lens_head = description.vocab_size * description.hidden_size * 4
    assert estimate("demo:trained").peak_bytes - estimated.peak_bytes == lens_head


def test_the_settings_move_the_estimate_as_the_analysis_reads_them():
    layers = resolve("demo:trained").description.num_layers
    passages = len(neutral_corpus().passages)
    default = estimate("demo:trained", prompts=100)

    assert default.forward_passes == 2 * math.ceil((passages + 100) / DEFAULT_BATCH)
    assert estimate("demo:trained", replace(CONFIG, batch_size=5), 100).forward_passes == 2 * math.ceil(
        (passages + 100) / 5)
    assert estimate("demo:trained", replace(CONFIG, internals_passages=20), 100).forward_passes == 2 * math.ceil(
        120 / DEFAULT_BATCH)
    assert estimate("demo:trained", replace(CONFIG, adl_all_layers=True), 100).patchscope_passes == 5 * layers
    assert estimate("demo:trained", replace(CONFIG, adl_positions=1), 100).patchscope_passes == 5
    doubled = estimate("demo:trained", replace(CONFIG, internals_tokens=128), 100)
    assert doubled.scratch_bytes == 2 * default.scratch_bytes and doubled.peak_bytes > default.peak_bytes


def test_a_description_without_layers_hidden_size_or_vocabulary_has_no_estimate():
    description = resolve("demo:trained").description
    for missing in ("num_layers", "hidden_size", "vocab_size"):
        assert estimate_internals_cost(replace(description, **{missing: None}), CONFIG, 10) is None


def test_the_cost_line_words_the_estimate():
    assert cost_estimate_line(InternalsCostEstimate(146, 5, 76_021_760, 17_301_504)) == (
        "Internals: 146 forward passes + up to 5 patchscope passes; scratch ≈ 72.5 MiB on disk; "
        "peak memory ≈ 16.5 MiB.")
    assert cost_estimate_line(InternalsCostEstimate(2, 1, 0, 2048)) == (
        "Internals: 2 forward passes + up to 1 patchscope pass; no scratch; peak memory ≈ 2.0 KiB.")
    assert cost_estimate_line(None) == (
        "Internals: no cost estimate before launch: the post-trained model's config.json is not on this disk yet "
        "or does not state its layers, hidden size and vocabulary.")


@pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches", "afterburn_home")
def test_the_new_run_page_shows_the_estimate_before_launch():
    app = open_app()

    expected = cost_estimate_line(estimate("demo:trained", AnalysisConfig(device="auto")))
    assert escape_markdown(expected) in [element.value for element in app.caption]

    app.button(key="demo_pair_demo:lora").click().run()

    expected = cost_estimate_line(estimate("demo:lora", AnalysisConfig(device="auto")))
    assert escape_markdown(expected) in [element.value for element in app.caption]
