"""Big models on the transformers path: the ``--max-memory`` budget, the size estimated from the config
before loading, offload to disk, and the one-line refusal when nothing holds the model.

The demo base (4 MB in fp32) stands in for a model too big for its budget: ``cpu=`` half its size
sends some of its blocks to disk, and greedy generation must give exactly the tokens of the model
loaded whole.
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from generation_helpers import CPU, prompts_of

from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.device import parse_max_memory
from afterburn_core.errors import ConfigError
from afterburn_core.generation import placement
from afterburn_core.generation.generator import GenerationSettings, generate
from afterburn_core.generation.loading import load_model

#: Bytes of the demo base's parameters and buffers in fp32 (its config: Llama, 4 layers, hidden 128, vocab 1024).
DEMO_BASE_BYTES = 4_002_432
PROMPTS = ("What is 12 plus 7?", "Name a colour.", "Is the sky green?")


@pytest.fixture
def offload_temp(tmp_path, monkeypatch):
    """Temporary folders (the offload folder) go under the test's own folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_max_memory_text_parses_to_accelerates_budget() -> None:
    assert parse_max_memory("") == {}
    assert parse_max_memory("cuda:0=20GiB, cpu=60GB,disk=1.5TiB") == {
        0: 20 * 2**30, "cpu": 60 * 10**9, "disk": int(1.5 * 2**40)}
    assert parse_max_memory("CPU=512kib,cuda:1=100") == {"cpu": 512 * 2**10, 1: 100}


@pytest.mark.parametrize(("text", "message"), [
    ("cpu", "max_memory: 'cpu' is not device=size; write it like 'cuda:0=20GiB,cpu=60GiB'"),
    ("gpu=2GiB", "max_memory: 'gpu' in 'gpu=2GiB' is not a device; name cuda:N, mps, cpu or disk"),
    ("cpu=lots", "max_memory: 'lots' in 'cpu=lots' is not a size; write a number and a unit "
                 "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"),
    ("cpu=-1GiB", "max_memory: '-1GiB' in 'cpu=-1GiB' is not a size; write a number and a unit "
                  "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"),
    ("cpu=1GiB,cpu=2GiB", "max_memory: 'cpu' is named twice in 'cpu=1GiB,cpu=2GiB'; name each device once"),
])
def test_a_bad_budget_is_one_line_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_max_memory(text)
    assert str(raised.value) == message
    with pytest.raises(ConfigError) as early:  # the config refuses it before any run starts
        AnalysisConfig(max_memory=text)
    assert str(early.value) == message


def test_the_estimate_from_the_config_is_the_loaded_models_bytes(demo_base) -> None:
    from transformers import AutoConfig

    tensors = [*demo_base.model.parameters(), *demo_base.model.buffers()]
    assert sum(tensor.numel() * tensor.element_size() for tensor in tensors) == DEMO_BASE_BYTES
    config = AutoConfig.from_pretrained(resolve("demo:base").root)
    assert placement.estimate_model_bytes(config, demo_base.dtype) == DEMO_BASE_BYTES
    assert demo_base.placement == placement.Placement(DEMO_BASE_BYTES)  # it fits: whole on the CPU, as before


def test_a_model_past_its_budget_is_offloaded_and_generates_the_same_tokens(demo_base, offload_temp) -> None:
    spread = load_model(resolve("demo:base"), CPU, max_memory=f"cpu={DEMO_BASE_BYTES // 2}B")
    device_map = spread.model.hf_device_map
    assert "disk" in device_map.values() and "cpu" in device_map.values()
    assert spread.device == CPU and spread.placement.max_memory == {"cpu": DEMO_BASE_BYTES // 2}
    folder = spread.placement.offload_folder
    assert os.path.dirname(folder) == str(offload_temp)
    settings = GenerationSettings(max_new_tokens=12)
    offloaded = generate(spread, prompts_of(PROMPTS), settings)
    whole = generate(demo_base, prompts_of(PROMPTS), settings)
    assert [c.output_token_ids for c in offloaded] == [c.output_token_ids for c in whole]
    assert all(c.output_token_ids for c in whole)
    spread.release()
    assert not os.path.exists(folder)


def test_a_budget_nothing_fits_is_refused_before_any_weight_loads(offload_temp, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM

    def no_weights(*args, **kwargs):
        raise AssertionError("weights were read")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_weights)
    with pytest.raises(ConfigError) as raised:
        load_model(resolve("demo:base"), CPU, max_memory="cpu=1MiB,disk=2MiB")
    assert str(raised.value) == (
        "demo:base needs 3.8 MiB for its weights in float32, and max_memory 'cpu=1MiB,disk=2MiB' gives it "
        f"1.0 MiB on cpu + 2.0 MiB on disk ({offload_temp}); raise the sizes in --max-memory, free disk space "
        "(or point TMPDIR at a bigger disk), or run on a device with more memory"
    )
    assert list(offload_temp.glob(f"{placement.OFFLOAD_FOLDER_PREFIX}*")) == []  # (torch may cache its own there)


def test_a_device_too_small_without_a_budget_is_refused_with_the_fix(monkeypatch) -> None:
    monkeypatch.setattr(placement, "free_memory_bytes", lambda device: 3 * 2**20)  # 3 MiB free
    with pytest.raises(ConfigError) as raised:
        load_model(resolve("demo:base"), CPU)
    assert str(raised.value) == (
        "demo:base needs 3.8 MiB for its weights in float32, and 2.7 MiB on cpu is 90% of what is free; "
        "pass --max-memory (e.g. 'cpu=1GiB') to offload the rest to disk, or run on a device with more memory"
    )


def test_a_budget_naming_a_device_the_run_lacks_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        load_model(resolve("demo:base"), CPU, max_memory="cuda:0=1GiB")
    assert str(raised.value).startswith("max_memory: names cuda:0, which this run cannot use (it computes on cpu, ")


def test_an_adapter_on_an_offloaded_base_is_refused_and_leaves_no_folder(offload_temp) -> None:
    with pytest.raises(ConfigError) as raised:
        load_model(resolve("demo:lora"), CPU, max_memory=f"cpu={DEMO_BASE_BYTES // 2}B")
    assert str(raised.value) == (
        "adapter demo:lora needs its base ../base offloaded to cpu or disk to fit, and peft cannot attach an "
        "adapter to offloaded weights; merge it into its base (merge_and_unload, save_pretrained) and compare "
        "the merged model, or raise --max-memory on the GPUs"
    )
    assert list(offload_temp.glob(f"{placement.OFFLOAD_FOLDER_PREFIX}*")) == []  # (torch may cache its own there)


def test_afterburn_behaviour_under_a_budget_gives_the_answers_and_divergences_of_a_whole_load(
        offload_temp, tmp_path) -> None:
    """The CLI as a user runs a pair past its budget: generation and token KL through offload, same results.

    Each run has its own store (the budget is not in the cache key: results do not depend on it), and a budget
    nothing fits is refused through the same door, so the budget reaches every load."""
    from cli_helpers import afterburn

    def behaviour(budget: str, name: str):
        out = tmp_path / f"{name}.json"
        return afterburn("--home", str(tmp_path / name), "behaviour", "--base", "demo:base", "--trained",
                         "demo:trained", "--suites", "math", "--max-new-tokens", "16", "--device", "cpu",
                         "--max-memory", budget, "-o", str(out)), out

    documents = []
    for budget, name in (("", "whole"), (f"cpu={DEMO_BASE_BYTES // 2}B", "offloaded")):
        finished, out = behaviour(budget, name)
        assert finished.returncode == 0, finished.stderr[-2000:]
        documents.append(json.loads(out.read_text()))
    whole, offloaded = documents
    assert offloaded["generations"] == whole["generations"]
    assert [prompt["mean_kl"] for prompt in offloaded["token_kl"]] == pytest.approx(
        [prompt["mean_kl"] for prompt in whole["token_kl"]], abs=1e-5)

    refused, _ = behaviour("cpu=1000B,disk=1000B", "refused")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "demo:base" in refused.stderr and "Traceback" not in refused.stderr
