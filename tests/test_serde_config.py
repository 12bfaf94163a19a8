"""Typed results round-trip through JSON; configs reject bad values with a named key."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import ConfigError
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.types import (
    CheckpointSummary,
    InventoryResult,
    ResolvedCheckpoint,
    RunRecord,
    StageProgress,
    TensorEntry,
)


def _checkpoint(reference: str, base: ResolvedCheckpoint | None = None) -> ResolvedCheckpoint:
    return ResolvedCheckpoint(
        reference=reference, kind="adapter" if base else "local_dir", root=f"/models/{reference}",
        weight_files=(f"/models/{reference}/model.safetensors",), weight_format="safetensors",
        config_path=None, fingerprint="ab" * 32, revision=None, adapter_base=base,
    )


def _summary(checkpoint: ResolvedCheckpoint) -> CheckpointSummary:
    return CheckpointSummary(
        checkpoint=checkpoint, architecture="LlamaForCausalLM", model_type="llama", num_layers=2,
        hidden_size=16, vocab_size=None, num_tensors=3, num_parameters=1234,
        parameters_by_dtype={"float32": 1000, "bfloat16": 234}, size_bytes=4468,
    )


def test_inventory_round_trips_through_json_text() -> None:
    base = _checkpoint("base")
    result = InventoryResult(
        base=_summary(base),
        trained=_summary(_checkpoint("adapter", base)),
        shared_tensors=2,
        base_only=(TensorEntry("lm_head.weight", (64, 16), "float32"),),
        trained_only=(),
        shape_changed=((TensorEntry("embed_tokens.weight", (64, 16), "float32"),
                        TensorEntry("embed_tokens.weight", (72, 16), "float32")),),
        dtype_changed=1,
    )
    text = json.dumps(to_jsonable(result), allow_nan=False)
    again = from_jsonable(InventoryResult, json.loads(text))
    assert again == result
    assert again.trained.checkpoint.adapter_base == base
    assert json.loads(text)["schema_version"] == InventoryResult.SCHEMA_VERSION


def test_non_finite_floats_survive_and_json_stays_standard() -> None:
    record = StageProgress("weights", "running", 1, 2, "x")
    assert from_jsonable(StageProgress, to_jsonable(record)) == record
    encoded = to_jsonable({"a": math.nan, "b": math.inf, "c": -math.inf})
    json.dumps(encoded, allow_nan=False)
    decoded = from_jsonable(dict[str, float], encoded)
    assert math.isnan(decoded["a"]) and decoded["b"] == math.inf and decoded["c"] == -math.inf


def test_from_jsonable_rejects_wrong_types_and_missing_fields() -> None:
    with pytest.raises(TypeError):
        from_jsonable(TensorEntry, {"name": "x", "shape": [1, "2"], "dtype": "float32"})
    with pytest.raises(KeyError, match="dtype"):
        from_jsonable(TensorEntry, {"name": "x", "shape": [1]})
    with pytest.raises(ValueError):
        from_jsonable(StageProgress, {"stage": "s", "status": "exploded", "done": 0, "total": 0})


def test_run_record_round_trip() -> None:
    record = RunRecord("r1", "a", "b", None, "f", "{}", "failed", 1.0, 2.0, 3.5, "boom", 42,
                       (StageProgress("resolve", "done", 2, 2),))
    assert from_jsonable(RunRecord, to_jsonable(record)) == record
    assert record.duration_s == 2.5  # from launch, not from when the worker started


def test_config_defaults_and_json_round_trip() -> None:
    config = AnalysisConfig(method="dpo", suites=("math", "my.yaml"), temperature=0.7)
    assert AnalysisConfig.from_json(config.to_json()) == config
    assert config.subset(("method", "suites")) == {"method": "dpo", "suites": ["math", "my.yaml"]}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"method": "ppo"}, "method: 'ppo' is not one of unknown, sft, dpo"),
        ({"device": "tpu"}, "device: 'tpu' is not one of auto, cpu, cuda, mps"),
        ({"max_new_tokens": 0}, "max_new_tokens: 0 must be a whole number from 1 to 4096"),
        ({"temperature": "hot"}, "temperature: 'hot' must be a number"),
        ({"exact_spectra": "yes"}, "exact_spectra: 'yes' must be true or false"),
        ({"metod": "sft"}, "unknown key 'metod'; known keys are method, device"),
    ],
)
def test_config_errors_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AnalysisConfig.from_mapping(values, source="test")
    assert message in str(caught.value)
    assert str(caught.value).startswith("test: ")


def test_yaml_config_file(tmp_path: Path) -> None:
    path = tmp_path / ".afterburn.yaml"
    path.write_text("method: grpo\nsuites: [math, code]\ntemperature: 1\n")
    assert load_config_file(path) == AnalysisConfig(method="grpo", suites=("math", "code"), temperature=1.0)


def test_yaml_config_is_safe_loaded_and_errors_name_file_and_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text(f"method: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="unsafe.yaml"):
        load_config_file(unsafe)
    assert not marker.exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("method: sft\n  device: [cpu\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(broken)
    assert str(caught.value) == f"{broken} line 2: a ': ' inside unquoted text starts a mapping; put the text in quotes"
    broken.write_text("method: [sft\n")
    with pytest.raises(ConfigError, match=r"broken.yaml line 2: not valid YAML \(while parsing a flow sequence"):
        load_config_file(broken)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config_file(tmp_path / "missing.yaml")



#: Nine aliases of nine aliases, nine levels deep, inside one setting: 9⁹ strings once expanded.
LAUGHS = "seed: [" + ", ".join(
    f"&{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi")) + "]\n"

BAD_CONFIG_FILES = [
    ("twice.yaml", "method: sft\nseed: 1\nmethod: dpo\n",
     "line 3: key 'method' appears twice in one mapping (first on line 1); keep one"),
    ("laughs.yaml", LAUGHS,
     "line 1: aliases (*name) expand to more than 100000 nodes; write the data out or use fewer aliases"),
    ("date.yaml", "seed: 2001-13-45\n", ": seed: '2001-13-45' must be a whole number from 0 to 4294967295"),
    ("digits.yaml", "seed: " + "9" * 5000 + "\n",
     "line 1: the value under key 'seed' is an integer of 5000 characters; the limit is 1000, quote it if it is text"),
    ("huge.yaml", "temperature: " + "9" * 999 + "\n", ": temperature: <a 3319-bit integer> must be a number from 0.0 to 10.0"),
    ("deep.yaml", "suites: " + "[" * 900 + "]" * 900 + "\n",
     "line 1: lists and mappings nest deeper than 64 levels; flatten the data"),
    ("deeper.yaml", "suites: " + "[" * 30_000 + "]" * 30_000 + "\n",  # past libyaml's own 1 000, under 64 KiB
     "line 1: lists and mappings nest deeper than 64 levels; flatten the data"),
    ("keys.yaml", "{1: a, b: c}\n", ": unknown key 1; known keys are method, device, suites, max_new_tokens, "
     "batch_size, temperature, top_p, seed, spectrum_top_k, exact_spectra, trust_remote_code, internals_passages, "
     "internals_tokens, adl_positions, adl_all_layers, steering, localization, amplification, amplification_alphas, "
     "amplification_samples, threads, backend, tensor_parallel_size, pipeline_parallel_size, "
     "max_memory, reward_hack_weights"),
    ("weights.yaml", "reward_hack_weights: {length_bias: " + "9" * 999 + "}\n",
     ": reward_hack_weights: length_bias = <a 3319-bit integer> must be a finite number >= 0"),
]


@pytest.mark.parametrize(("filename", "content", "message"), BAD_CONFIG_FILES, ids=[c[0] for c in BAD_CONFIG_FILES])
def test_untrusted_config_file_is_one_line_naming_key_or_line(tmp_path: Path, filename: str, content: str,
                                                               message: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}{'' if message.startswith(':') else ' '}{message}"


def test_config_file_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * 10_000, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: is over 64 KiB, not a settings file; a settings file holds a few 'key: value' lines"
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config_file(tmp_path)


def _nested(depth: int) -> list:
    outer: list = []
    inner = outer
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": 10**5000}, "seed: <a 16610-bit integer> must be a whole number from 0 to 4294967295"),
        ({"temperature": 10**400}, "temperature: <a 1329-bit integer> must be a number from 0.0 to 10.0"),
        ({"suites": _nested(100_000)}, "suites: ([[[...]]],) must be a list of suite names or file paths"),
        ({1: "a", "b": "c"}, "unknown key 1; known keys are method"),
        ({"reward_hack_weights": {("x",): 1}}, "reward_hack_weights: unknown detector ('x',); known detectors are"),
    ],
    ids=["digits", "float-overflow", "deep", "mixed-keys", "tuple-key"],
)
def test_config_values_from_code_are_quoted_within_bounds(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AnalysisConfig.from_mapping(values, source="api")
    assert str(caught.value).startswith(f"api: {message}")


def test_stored_config_is_parsed_with_the_depth_bound() -> None:
    with pytest.raises(ConfigError) as caught:
        AnalysisConfig.from_json('{"suites": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert str(caught.value) == ("stored run config: not valid JSON (nests deeper than 64 levels); "
                                 "delete the run and start it again")
