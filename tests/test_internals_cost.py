"""The internals cost estimate against real runs of the demo pairs, its wording, and the New run page showing it.

A real internals run (generations first) of demo:base → demo:trained (two passes, a scratch on disk) and of
demo:base → demo:lora (adapter toggled, no scratch), each once per module; the estimate, made from the
trained side's description and the run's prompt count, must count exactly the forward and patchscope passes
the run counted, and bound its scratch from above within a few percent.

The causal parts are compared with the parts themselves run on real generations (math suite, 16 tokens), their
forward passes counted by a global module hook on the outermost causal-LM module: localization's exactly, the
steering check's perplexity passes exactly (a zero direction accepts every strength, so the walk is the longest),
generation-like passes within the per-batch bound.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace

import pytest
import torch
from ui_helpers import DEMO_CONFIG, open_app

from afterburn_core.checkpoints import resolve
from afterburn_core.checkpoints.architecture import architecture_map
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.loading import load_model
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.generation.suites import load_suites
from afterburn_core.internals.amplification import AMPLIFICATION_MEMORY_SHARE, amplify
from afterburn_core.internals.analysis import DEFAULT_BATCH
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.internals.cost import (
    CausalPartCost,
    InternalsCostEstimate,
    estimate_internals_cost,
)
from afterburn_core.internals.localization import localize_blocks
from afterburn_core.internals.steering import STEERING_STRENGTHS, steer_base
from afterburn_core.internals.readings import NEUTRAL
from afterburn_core.internals.types import InternalsResult
from afterburn_core.jobs import cancel_run, create_run
from afterburn_core.runner import execute_run
from afterburn_core.store import RunStore, load_result
from afterburn_core.views.internals import cost_estimate_line
from afterburn_core.views.internals_cost import causal_cost_lines
from pages.common import escape_markdown

CONFIG = AnalysisConfig(device="cpu", **DEMO_CONFIG, steering=False, localization=False, amplification=False)
#: The causal parts' real runs: the math suite's 32 prompts, 16 tokens, batches of 8 so the batch count is known.
CAUSAL_CONFIG = AnalysisConfig(device="cpu", suites=("math",), max_new_tokens=16, batch_size=8)
CAUSAL_BATCHES = 4
#: How far above the real scratch the estimate may land: it assumes every row is internals_tokens wide,
#: and the demo's short neutral passages and suite prompts pad their batches to less (measured: 6.9%).
SCRATCH_SLACK = 1.10


def demo_result(tmp_path_factory, trained: str, config: AnalysisConfig, result_type):
    """The ``result_type`` result of a real run of demo:base against ``trained`` (only what it needs)."""
    with RunStore(tmp_path_factory.mktemp("internals-cost")) as store:
        run_id = create_run(store, "demo:base", trained, config, analyses=(result_type.KIND,))
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error
        return load_result(store, run_id, result_type)


def internals_run(tmp_path_factory, trained: str) -> InternalsResult:
    return demo_result(tmp_path_factory, trained, CONFIG, InternalsResult)


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
    passages = len(neutral_corpus().sample(0))  # every passage but the steering check's held-out ones
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

    for trained in ("demo:trained", "demo:lora"):
        if trained == "demo:lora":
            app.button(key="demo_pair_demo:lora").click().run()
        found = estimate(trained, AnalysisConfig(device="auto"))
        captions = [element.value for element in app.caption]
        lines = (cost_estimate_line(found), *causal_cost_lines(found))
        # The reading half's line, then one per causal part, in order, each its own caption.
        assert [part.part for part in found.causal] == ["steering", "localization", "amplification"]
        start = captions.index(escape_markdown(lines[0]))
        shown = captions[start:start + 4]
        assert shown[:3] == [escape_markdown(line) for line in lines[:3]]
        # The amplification budget follows the memory free when each line was made: compare up to it.
        assert shown[3].split(" within its budget")[0] == escape_markdown(lines[3]).split(" within its budget")[0]


# --- the causal half --------------------------------------------------------------------------------------


def causal_generations(tmp_path_factory, trained: str) -> GenerationsResult:
    return demo_result(tmp_path_factory, trained, CAUSAL_CONFIG, GenerationsResult)


@pytest.fixture(scope="module")
def full_generations(tmp_path_factory) -> GenerationsResult:
    return causal_generations(tmp_path_factory, "demo:trained")


@pytest.fixture(scope="module")
def adapter_generations(tmp_path_factory) -> GenerationsResult:
    return causal_generations(tmp_path_factory, "demo:lora")


@contextlib.contextmanager
def counted_forwards():
    """Counts forward passes of the outermost causal-LM module (a peft wrapper's inner model is not counted
    again), split by whether the call asked for no cache (the steering check's perplexity passes do)."""
    counts = {"uncached": 0, "cached": 0}
    depth = [0]

    def is_model(module) -> bool:
        return type(module).__name__.endswith("ForCausalLM")

    def before(module, args):
        if is_model(module):
            depth[0] += 1

    def after(module, args, kwargs, output):
        if is_model(module):
            depth[0] -= 1
            if depth[0] == 0:
                counts["uncached" if kwargs.get("use_cache") is False else "cached"] += 1

    handles = (torch.nn.modules.module.register_module_forward_pre_hook(before),
               torch.nn.modules.module.register_module_forward_hook(after, with_kwargs=True, always_call=True))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def causal_estimate(trained: str, config: AnalysisConfig = CAUSAL_CONFIG, prompts: int = 32) -> InternalsCostEstimate:
    return estimate(trained, config, prompts)


def test_the_causal_parts_follow_their_settings():
    all_on = replace(CAUSAL_CONFIG, batch_size=0)
    everything = causal_estimate("demo:trained", all_on)
    assert [part.part for part in everything.causal] == ["steering", "localization", "amplification"]
    off = replace(all_on, steering=False, localization=False, amplification=False)
    assert causal_estimate("demo:trained", off).causal == ()
    for name in ("steering", "localization", "amplification"):
        alone = replace(off, **{name: True})
        assert [part.part for part in causal_estimate("demo:trained", alone).causal] == [name]
        # The amplification budget follows the memory free at each call: every other number must match.
        assert (replace(causal_estimate("demo:trained", alone).part(name), budget_bytes=0)
                == replace(everything.part(name), budget_bytes=0))
    assert causal_estimate("demo:trained", all_on, prompts=0).causal == ()

    amplification = everything.part("amplification")
    # α = 0 runs the trained model alone; α = 1 and 2 both models: (1 + 2 + 2) × 16 steps per batch.
    assert (amplification.decodes, amplification.decode_steps_per_batch) == (3, 5 * 16)
    scaled = causal_estimate("demo:trained", replace(all_on, amplification_alphas=(1.0, 2.0, 4.0),
                                                     amplification_samples=3)).part("amplification")
    assert (scaled.decodes, scaled.decode_steps_per_batch) == (9, 3 * 3 * 2 * 16)
    longer = causal_estimate("demo:trained", replace(all_on, max_new_tokens=32))
    assert longer.part("amplification").decode_steps_per_batch == 2 * amplification.decode_steps_per_batch
    assert longer.part("steering").decode_steps_per_batch == 32
    assert longer.part("localization").disk_bytes == 2 * everything.part("localization").disk_bytes


def test_an_adapter_counts_one_model_and_no_log_prob_store():
    full, adapter = causal_estimate("demo:trained"), causal_estimate("demo:lora")
    description = resolve("demo:trained").description

    assert full.part("amplification").models == 2 and adapter.part("amplification").models == 1
    assert full.part("amplification").peak_bytes == 2 * adapter.part("amplification").peak_bytes
    assert adapter.part("amplification").budget_bytes is None
    # Two full models are held to a budget (its value follows the memory free at the moment it is read).
    assert full.part("amplification").budget_bytes is not None
    # 32 answers × ≤ 16 tokens × the vocabulary, fp32.
    assert full.part("localization").disk_bytes == 32 * 16 * description.vocab_size * 4
    assert adapter.part("localization").disk_bytes == 0
    assert full.part("localization").forward_passes == adapter.part("localization").forward_passes


def test_amplification_above_its_budget_says_the_run_would_skip_it():
    description = resolve("demo:trained").description
    # A million-wide hidden state: 12 × 4 × 10¹² parameters × 4 bytes, beyond any machine's memory.
    huge = replace(description, hidden_size=1_000_000)
    part = estimate_internals_cost(huge, CAUSAL_CONFIG, 32, device=torch.device("cpu")).part("amplification")
    assert part.exceeds_budget
    assert not causal_estimate("demo:trained").part("amplification").exceeds_budget


def test_the_causal_lines_word_each_part():
    estimate_ = InternalsCostEstimate(2, 1, 0, 2048, causal=(
        CausalPartCost("steering", 28, 1, 16, 1, 8_388_608),
        CausalPartCost("localization", 40, 0, 0, 1, 25_952_256, disk_bytes=2_097_152),
        CausalPartCost("amplification", 0, 3, 80, 2, 8_388_608, budget_bytes=1_073_741_824),
    ))
    assert causal_cost_lines(estimate_) == (
        "Steering: up to 28 perplexity forward passes, then the steered base answers every prompt (up to 16 decode "
        "steps per batch); one model, peak memory ≈ 8.0 MiB.",
        "Localization: 40 forward passes (2 + 2 × layers per batch of answers); one model + one block, "
        "peak memory ≈ 24.8 MiB; trained log-probs ≈ 2.0 MiB on disk.",
        "Amplification: 3 decodes (α × samples), up to 80 forward passes per batch of prompts; both models ≈ 8.0 MiB "
        f"in memory, within its budget of 1.0 GiB ({AMPLIFICATION_MEMORY_SHARE:.0%} of the memory available).",
    )
    over = replace(estimate_, causal=(CausalPartCost("amplification", 0, 1, 16, 2, 2_147_483_648,
                                                     budget_bytes=1_073_741_824),))
    assert causal_cost_lines(over) == (
        "Amplification: 1 decode (α × samples), up to 16 forward passes per batch of prompts; both models ≈ 2.0 GiB "
        "in memory, above its budget of 1.0 GiB (80% of the memory available): the run would skip it.",)
    adapter = replace(estimate_, causal=(CausalPartCost("localization", 40, 0, 0, 1, 1024),
                                         CausalPartCost("amplification", 0, 1, 16, 1, 4_194_304)))
    assert causal_cost_lines(adapter) == (
        "Localization: 40 forward passes (2 + 2 × layers per batch of answers); one model + one block, "
        "peak memory ≈ 1.0 KiB; nothing on disk (the adapter is toggled).",
        "Amplification: 1 decode (α × samples), up to 16 forward passes per batch of prompts; one model (the adapter "
        "toggled) ≈ 4.0 MiB.",
    )
    assert causal_cost_lines(None) == ()


@pytest.mark.parametrize("trained", ["demo:trained", "demo:lora"])
def test_localization_runs_exactly_the_estimated_forward_passes(trained, request):
    generations = request.getfixturevalue("full_generations" if trained == "demo:trained" else "adapter_generations")
    assert all(completion.output_token_ids for completion in generations.trained)
    layers = resolve(trained).description.num_layers
    estimated = causal_estimate(trained).part("localization")

    with counted_forwards() as counts:
        localize_blocks(resolve("demo:base"), resolve(trained), generations,
                        architecture_map(resolve(trained).description), CAUSAL_CONFIG, torch.device("cpu"))

    assert estimated.forward_passes == (2 + 2 * layers) * CAUSAL_BATCHES == sum(counts.values())


def test_the_steering_check_runs_within_the_estimate(full_generations):
    estimated = causal_estimate("demo:trained").part("steering")
    description = resolve("demo:base").description
    base = resolve("demo:base")

    with counted_forwards() as counts:
        # A zero direction keeps the perplexity, so every strength is accepted: the longest walk.
        result = steer_base(lambda: load_model(base, torch.device("cpu")), full_generations,
                            torch.zeros(description.hidden_size), 2, 1.0, architecture_map(description),
                            CAUSAL_CONFIG, neutral_corpus().heldout)

    assert len(result.trials) == len(STEERING_STRENGTHS) and result.strength == STEERING_STRENGTHS[-1]
    assert counts["uncached"] == estimated.forward_passes
    assert CAUSAL_BATCHES <= counts["cached"] <= estimated.decode_steps_per_batch * CAUSAL_BATCHES


def test_amplification_runs_within_the_estimate(full_generations):
    estimated = causal_estimate("demo:trained").part("amplification")

    with counted_forwards() as counts:
        levels = amplify(resolve("demo:base"), resolve("demo:trained"), full_generations, CAUSAL_CONFIG,
                         torch.device("cpu"))

    assert len(levels) == estimated.decodes
    # At least a prefill per model per decode per batch, at most every step of every one.
    assert (1 + 2 + 2) * CAUSAL_BATCHES <= sum(counts.values()) <= estimated.decode_steps_per_batch * CAUSAL_BATCHES


@pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")
def test_the_causal_toggles_drop_their_cost_lines_and_reach_the_launched_run(afterburn_home):
    app = open_app()
    app.toggle(key="new_run_amplification").set_value(False)
    app.toggle(key="new_run_steering").set_value(False).run()
    captions = [element.value for element in app.caption]
    # Captions are markdown-escaped ("Localization\\:"): compare the part names.
    assert not any(line.startswith(("Amplification", "Steering")) for line in captions)
    assert any(line.startswith("Localization") for line in captions), captions

    app.button(key="new_run_launch").click().run()
    assert not app.exception
    with RunStore(afterburn_home) as store:
        [record] = store.list_runs()
        config = AnalysisConfig.from_json(record.config_json)
        assert (config.steering, config.localization, config.amplification) == (False, True, False)
        cancel_run(store, record.run_id)  # the settings are what this test reads; the worker need not finish
