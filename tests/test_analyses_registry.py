"""The analyses registry: a kind registered in a test is run, stored, listed and reported by modules
that never heard of it; detectors declared once serve the config, the composite and every view."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import pytest

from afterburn_core.analyses import (
    AnalysisKind,
    analysis,
    analysis_kinds,
    config_fields_for,
    detector_names,
    method_weights_table,
    register_analysis,
    stage_names,
    stages_for,
    unregister_analysis,
)
from afterburn_core.config import TRAINING_METHODS, AnalysisConfig
from afterburn_core.errors import BadInput, ConfigError
from afterburn_core.jobs import create_run
from afterburn_core.reports import from_json, load_report, to_json
from afterburn_core.runner import execute_run
from afterburn_core.store import RunStore, load_result, load_results


@dataclasses.dataclass(frozen=True)
class TensorCountResult:
    """A toy result: how many tensors the inventory paired, and the seed it was asked for."""

    KIND: ClassVar[str] = "tensor_count"
    SCHEMA_VERSION: ClassVar[int] = 1

    shared_tensors: int
    seed: int
    schema_version: int = dataclasses.field(default=SCHEMA_VERSION)


def count_tensors(context, progress) -> TensorCountResult:
    progress.update(0, 1, "counting")
    return TensorCountResult(context.result("inventory").shared_tensors, context.config.seed)


@pytest.fixture
def toy_kind():
    """A kind that reads the inventory, keyed by the seed; unregistered again after the test."""
    registered = register_analysis(AnalysisKind(
        "tensor_count", "Tensor count", TensorCountResult, count_tensors, config_fields=("seed",),
        depends_on=("inventory",),
    ))
    yield registered
    unregister_analysis("tensor_count")


def test_a_registered_kind_is_run_stored_listed_and_reported(toy_kind, store: RunStore, tiny_pair) -> None:
    assert stages_for(("tensor_count",)) == ("resolve", "inventory", "tensor_count")
    run_id = create_run(store, str(tiny_pair[0]), str(tiny_pair[1]), AnalysisConfig(seed=7), ("tensor_count",))
    assert execute_run(store, run_id) == "done"

    assert [stage.stage for stage in store.get_run(run_id).stages] == ["resolve", "inventory", "tensor_count"]
    inventory = load_result(store, run_id, analysis("inventory").result_type)
    assert load_result(store, run_id, TensorCountResult) == TensorCountResult(inventory.shared_tensors, 7)
    assert set(load_results(store, run_id)) == {"inventory", "tensor_count"}

    report = load_report(store, run_id)
    assert report.tensor_count == TensorCountResult(inventory.shared_tensors, 7)
    document = json.loads(to_json(report))
    assert document["tensor_count"] == {"shared_tensors": inventory.shared_tensors, "seed": 7, "schema_version": 1}
    assert document["weights"] is None  # every registered kind has its key, null when the run lacks it
    assert from_json(to_json(report)) == report


def test_a_registered_kind_is_cached_by_its_config_fields(toy_kind, store: RunStore, tiny_pair) -> None:
    def run(seed: int) -> str:
        run_id = create_run(store, str(tiny_pair[0]), str(tiny_pair[1]), AnalysisConfig(seed=seed), ("tensor_count",))
        execute_run(store, run_id)
        return {stage.stage: stage.message for stage in store.get_run(run_id).stages}["tensor_count"]

    assert run(1) == "computed"
    assert run(1) == "cached"
    assert run(2) == "computed"  # a field it reads changed: a new result, never a stale hit


def test_registration_checks_order_and_names(toy_kind) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_analysis(toy_kind)
    with pytest.raises(ValueError, match="depends on 'later'"):
        register_analysis(dataclasses.replace(toy_kind, kind="early", depends_on=("later",)))
    with pytest.raises(ValueError, match="'tensor_count' depends on it"):
        unregister_analysis("inventory")
    with pytest.raises(BadInput, match="unknown analysis 'nope'; choose from inventory, weights"):
        stages_for(("nope",))


def test_stages_are_the_registered_kinds_in_order() -> None:
    assert stage_names() == ("resolve", *analysis_kinds())
    assert analysis_kinds()[:6] == ("inventory", "weights", "generations", "token_kl", "behaviour", "reward_hack")
    assert stages_for(("reward_hack",)) == ("resolve", "generations", "behaviour", "reward_hack")


def test_config_fields_of_a_kind_include_its_dependencies() -> None:
    assert config_fields_for(("weights",)) == ("spectrum_top_k", "exact_spectra", "seed", "device", "threads")
    reward_hack = config_fields_for(("reward_hack",))
    assert {"method", "reward_hack_weights", "suites", "max_new_tokens", "seed"} <= set(reward_hack)
    assert "spectrum_top_k" not in reward_hack


def test_every_detector_weighs_in_under_every_training_method() -> None:
    table = method_weights_table()
    assert set(table) == set(TRAINING_METHODS)
    for method, weights in table.items():
        assert tuple(weights) == detector_names(), method
        assert sum(weights.values()) == pytest.approx(1.0), method


def test_the_config_knows_the_detectors_from_the_registry() -> None:
    with pytest.raises(ConfigError, match="unknown detector 'verbosity'; known detectors are length_bias, "):
        AnalysisConfig(reward_hack_weights={"verbosity": 1.0})


def test_the_config_imports_no_analysis_module() -> None:
    source = (Path(__file__).resolve().parent.parent / "afterburn_core" / "config.py").read_text(encoding="utf-8")
    for package in ("reward_hack", "weights", "generation", "behaviour", "checkpoints"):
        assert f"afterburn_core.{package}" not in source
