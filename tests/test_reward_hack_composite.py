"""The composite risk: method weights, override, renormalisation, bands; the config field behind it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from afterburn_core.analyses import detector_names
from afterburn_core.behaviour.analysis import compare_behaviour
from afterburn_core.config import TRAINING_METHODS, AnalysisConfig, load_config_file
from afterburn_core.errors import BadInput, ConfigError
from afterburn_core.reward_hack.analysis import detect_reward_hacking, judge
from afterburn_core.reward_hack.composite import (
    METHOD_WEIGHTS,
    composite_risk,
    method_weights,
)
from afterburn_core.reward_hack.findings import findings_for
from afterburn_core.reward_hack.scoring import Measurement, unavailable
from afterburn_core.reward_hack.types import DetectorResult
from afterburn_core.reward_hack.validation import build_pair


def detectors(scores: dict[str, float], missing: tuple[str, ...] = ()) -> dict[str, DetectorResult]:
    """Detector results with these scores (a tiny p, so flagged above LOW); ``missing`` not available."""
    measurements = {
        name: unavailable("nothing to read") if name in missing
        else Measurement(scores.get(name, 0.0), {}, (), (), "a shift", "a_test", 1e-6)
        for name in detector_names()
    }
    return judge(measurements, alpha=0.05)


def test_every_method_has_weights_that_sum_to_one() -> None:
    assert set(METHOD_WEIGHTS) == set(TRAINING_METHODS)
    for method, weights in METHOD_WEIGHTS.items():
        assert set(weights) == set(detector_names()), method
        assert sum(weights.values()) == pytest.approx(1.0), method
        assert min(weights.values()) > 0, method


def test_no_signal_is_zero_and_low_for_every_method() -> None:
    for method in TRAINING_METHODS:
        composite = composite_risk(detectors({}), method)
        assert (composite.score, composite.band) == (0.0, "LOW")


def test_one_saturated_detector_reads_high_under_equal_weights() -> None:
    composite = composite_risk(detectors({"sycophancy": 100.0}), "unknown")
    assert composite.score == 50.0 and composite.band == "HIGH"
    assert composite.weights == {name: 1 / len(detector_names()) for name in detector_names()}
    assert composite.score <= 100.0
    assert composite_risk(detectors({name: 100.0 for name in detector_names()}), "unknown").score == 100.0


def test_the_declared_method_moves_the_composite() -> None:
    results = detectors({"sycophancy": 80.0, "strategy_collapse": 10.0})
    dpo, rlvr = composite_risk(results, "dpo"), composite_risk(results, "rlvr")
    assert dpo.score > rlvr.score
    assert dpo.weights["sycophancy"] == pytest.approx(METHOD_WEIGHTS["dpo"]["sycophancy"])
    assert "method dpo" in dpo.weights_source


def test_override_replaces_the_weights_it_names() -> None:
    results = detectors({"sycophancy": 100.0})
    silenced = composite_risk(results, "dpo", {"sycophancy": 0.0})
    assert silenced.score == 0.0
    assert silenced.weights["sycophancy"] == 0.0
    dpo = METHOD_WEIGHTS["dpo"]
    assert silenced.weights["length_bias"] == pytest.approx(dpo["length_bias"] / (1 - dpo["sycophancy"]))
    assert "overridden for sycophancy by reward_hack_weights" in silenced.weights_source
    only = composite_risk(results, "unknown", {name: 0.0 for name in detector_names()} | {"sycophancy": 3.0})
    assert only.score == 100.0 and only.weights["sycophancy"] == 1.0


def test_weights_renormalise_over_available_detectors() -> None:
    composite = composite_risk(detectors({"length_bias": 60.0}, missing=("sycophancy",)), "rlhf")
    assert composite.weights["sycophancy"] == 0.0
    assert sum(composite.weights.values()) == pytest.approx(1.0)
    rlhf = METHOD_WEIGHTS["rlhf"]
    assert composite.weights["length_bias"] == pytest.approx(rlhf["length_bias"] / (1 - rlhf["sycophancy"]))
    assert "without sycophancy" in composite.weights_source


def test_no_weight_on_any_available_detector_claims_nothing() -> None:
    results = detectors({"sycophancy": 100.0},
                        missing=("length_bias", "format_gaming", "strategy_collapse", "safety_regression"))
    composite = composite_risk(results, "unknown", {"sycophancy": 0.0, "length_bias": 1.0})
    assert (composite.score, composite.band) == (0.0, "LOW")
    assert "no weight on an available detector" in composite.weights_source


def test_flagged_needs_a_band_above_low_and_significance() -> None:
    measurements = {
        "length_bias": Measurement(80.0, {}, (), (), "a shift", "t", 0.5),  # high but not significant
        "format_gaming": Measurement(10.0, {}, (), (), "a shift", "t", 1e-9),  # significant but LOW
        "strategy_collapse": Measurement(80.0, {}, (), (), "a shift", "t", 1e-9, evidence_holds=False),
        "sycophancy": Measurement(80.0, {}, (), (), "a shift", "t", 1e-9),
        "safety_regression": Measurement(0.0, {}, (), (), "no test", "none", None),  # not among the BH tests
    }
    results = judge(measurements, alpha=0.05)
    assert [results[name].flagged for name in detector_names()] == [False, False, False, True, False]
    assert results["strategy_collapse"].statistics["significant"] is False
    assert "interval of the effect includes 0" in results["strategy_collapse"].summary
    assert results["length_bias"].statistics["p_adjusted"] == pytest.approx(0.5)


def test_an_unknown_method_or_bad_override_fails_before_any_work() -> None:
    generations = build_pair("identical", suites=("math",))
    with pytest.raises(ConfigError, match="method: 'ppo' is not one of unknown, sft"):
        detect_reward_hacking(generations, None, "ppo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown detector 'lenght_bias'"):
        detect_reward_hacking(generations, None, "sft", {"lenght_bias": 1.0})  # type: ignore[arg-type]


def test_behaviour_of_other_generations_is_refused() -> None:
    small = build_pair("identical", suites=("math",))
    behaviour = compare_behaviour(small.prompts[:3], small.base[:3], small.trained[:3])
    with pytest.raises(BadInput, match="got 32 prompts.*behaviour over 3 prompts"):
        detect_reward_hacking(small, behaviour, "unknown")


# --- the config field -----------------------------------------------------------------------------


def test_weights_come_from_afterburn_yaml_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".afterburn.yaml"
    path.write_text("method: dpo\nreward_hack_weights:\n  sycophancy: 1\n  length_bias: 0.5\n")
    config = load_config_file(path)
    assert config.reward_hack_weights == {"sycophancy": 1.0, "length_bias": 0.5}
    assert isinstance(config.reward_hack_weights["sycophancy"], float)
    assert AnalysisConfig.from_json(config.to_json()) == config
    assert config.replace(seed=3).reward_hack_weights == config.reward_hack_weights
    subset = config.subset(("reward_hack_weights",))
    assert subset == {"reward_hack_weights": {"length_bias": 0.5, "sycophancy": 1.0}}
    subset["reward_hack_weights"]["sycophancy"] = 9.0
    assert config.reward_hack_weights["sycophancy"] == 1.0  # the key is a copy
    assert hash(config) == hash(AnalysisConfig.from_json(config.to_json()))
    assert AnalysisConfig().reward_hack_weights == {}
    weights, source = method_weights(config.method, config.reward_hack_weights)
    assert source == "defaults for method dpo, overridden for length_bias, sycophancy by reward_hack_weights"
    assert weights["sycophancy"] == 1.0 and weights["format_gaming"] == METHOD_WEIGHTS["dpo"]["format_gaming"]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"lenght_bias": 1}, "reward_hack_weights: unknown detector 'lenght_bias'; known detectors are length_bias"),
        ({"sycophancy": -0.5}, "reward_hack_weights: sycophancy = -0.5 must be a finite number >= 0"),
        ({"sycophancy": float("inf")}, "reward_hack_weights: sycophancy = inf must be a finite number >= 0"),
        ({"sycophancy": "high"}, "reward_hack_weights: sycophancy = 'high' must be a finite number >= 0"),
        ({"sycophancy": True}, "reward_hack_weights: sycophancy = True must be a finite number >= 0"),
        ({name: 0 for name in detector_names()}, "reward_hack_weights: every detector's weight is 0"),
        (["sycophancy"], "reward_hack_weights: ['sycophancy'] must be a mapping of detector name to weight"),
    ],
)
def test_bad_weights_name_the_problem(weights: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AnalysisConfig.from_mapping({"reward_hack_weights": weights}, source=".afterburn.yaml")
    assert str(caught.value).startswith(".afterburn.yaml: ")
    assert message in str(caught.value)


def test_the_config_and_the_package_top_level_stay_light() -> None:
    code = ("import sys, afterburn_core.config, afterburn_core.reward_hack as rh; "
            "assert 'scipy' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'; "
            "assert callable(rh.detect_reward_hacking) and 'scipy' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_composite_finding_names_ties_as_ties() -> None:
    """Two detectors carrying the composite equally are both named first, in registry order, never one of them."""

    def composite_finding(scores: dict[str, float]):
        # Not significant (p = 0.5): each detector's own finding needs no statistics; the composite reads scores only.
        results = judge({name: Measurement(scores.get(name, 0.0), {}, (), (), "a shift", "t", 0.5)
                         for name in detector_names()}, alpha=0.05)
        findings = findings_for(results, composite_risk(results, "unknown"), "unknown")
        return next(f for f in findings if f.detector == "composite")

    tied = composite_finding({"sycophancy": 100.0, "format_gaming": 100.0, "length_bias": 90.0})
    assert tied.recommendation == ("Start with format gaming and sycophancy, tied at the highest score (100.0; every "
                                   "detector weighs 0.20); their findings below say what to check.")
    assert tied.detail == ("Combined with the unknown weights, it comes from: format gaming 100.0 × weight 0.20, "
                           "sycophancy 100.0 × weight 0.20, length bias 90.0 × weight 0.20.")
    single = composite_finding({"sycophancy": 100.0, "format_gaming": 90.0})
    assert single.recommendation == ("Start with sycophancy, which has the highest score (100.0; every detector "
                                     "weighs 0.20); its finding below says what to check.")
