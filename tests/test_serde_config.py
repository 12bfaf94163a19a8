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
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+: not valid YAML"):
        load_config_file(broken)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config_file(tmp_path / "missing.yaml")
