"""The reward-hack JSON contract: real output validates against docs/reward-hack.schema.json and loads back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from afterburn_core.analyses import detector_names
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.reward_hack.validation import run_pair
from afterburn_core.serde import from_jsonable, to_jsonable

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA = json.loads((DOCS / "reward-hack.schema.json").read_text(encoding="utf-8"))
SCHEMA_DOC = (DOCS / "reward-hack-schema.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def results() -> dict[str, RewardHackResult]:
    return {
        # flagged detectors, every one available
        "flagged": run_pair("sycophancy", method="dpo", suites=("math", "sycophancy")),
        # no probes and one strategy per category: two detectors not available
        "partial": run_pair("length", method="grpo", suites=("code",)),
    }


def test_real_output_validates_against_the_schema(results: dict[str, RewardHackResult]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for result in results.values():
        document = json.loads(json.dumps(to_jsonable(result)))
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    partial = results["partial"].detectors
    assert not partial["sycophancy"].available and not partial["strategy_collapse"].available
    assert results["flagged"].detectors["sycophancy"].flagged


def test_the_schema_rejects_a_broken_document(results: dict[str, RewardHackResult]) -> None:
    document = json.loads(json.dumps(to_jsonable(results["flagged"])))
    document["detectors"]["sycophancy"]["examples"] = ["no-suite-here"] * 4
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    document = json.loads(json.dumps(to_jsonable(results["flagged"])))
    document["detectors"]["length_bias"]["statistics"]["markup_share_of_growth"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    document = json.loads(json.dumps(to_jsonable(results["flagged"])))
    document["detectors"]["strategy_collapse"]["statistics"]["collapse_kind"] = "sideways"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    document = json.loads(json.dumps(to_jsonable(results["flagged"])))
    del document["composite"]["weights"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_new_statistics_are_in_real_output(results: dict[str, RewardHackResult]) -> None:
    # Issue 14's fields: typed in the schema (optional there, for older documents), present in every new one.
    properties = SCHEMA["$defs"]
    for name, fields in (("length_bias", ("base_mean_content_tokens", "trained_mean_content_tokens",
                                          "content_length_ratio", "content_effect_size", "markup_share_of_growth")),
                         ("strategy_collapse", ("within_score", "across_score", "information_base",
                                                "information_trained", "information_drop_ci_low", "collapse_kind"))):
        typed = properties[f"{name}_detector"]["allOf"][1]["then"]["properties"]["statistics"]["properties"]
        assert set(fields) <= set(typed), name
        assert set(fields) <= set(results["flagged"].detectors[name].statistics), name


def test_results_round_trip_through_json(results: dict[str, RewardHackResult]) -> None:
    for result in results.values():
        assert from_jsonable(RewardHackResult, to_jsonable(result)) == result
        loaded = from_jsonable(RewardHackResult, json.loads(json.dumps(to_jsonable(result))))
        assert loaded == result
        assert isinstance(loaded.detectors["length_bias"].statistics["n_prompts"], int)  # stays an int


def test_every_statistic_is_documented(results: dict[str, RewardHackResult]) -> None:
    documented = set(re.findall(r"`([a-z_<>]+)`", SCHEMA_DOC))
    for result in results.values():
        for name in detector_names():
            detector = result.detectors[name]
            keys = set(detector.statistics) | {k for c in detector.categories for k in c.statistics}
            for key in keys:
                generic = re.sub(r"^(fenced_code|inline_code|latex|headers|lists|tables|bold|answer_marker)_", "<feature>_", key)
                assert key in documented or generic in documented, (name, key)
