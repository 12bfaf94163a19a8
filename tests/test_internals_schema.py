"""The internals JSON contract, as a user gets it: ``afterburn internals -o out.json`` in a real subprocess on
the demo pair validates against docs/internals.schema.json, loads back losslessly, and carries the
relevance column the run's own generations give; bad output names are one line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import afterburn

from afterburn_core.internals.types import InternalsResult
from afterburn_core.serde import from_jsonable, to_jsonable

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA = json.loads((DOCS / "internals.schema.json").read_text(encoding="utf-8"))
SCHEMA_DOC = (DOCS / "internals-schema.md").read_text(encoding="utf-8")
#: One short suite keeps the generations (the relevance column's data) to seconds.
SETTINGS = ("--suites", "math", "--max-new-tokens", "48", "--internals-passages", "64", "--device", "cpu")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[dict, str]:
    folder = tmp_path_factory.mktemp("internals-cli")
    out = folder / "internals.json"
    result = afterburn("internals", "--base", "demo:base", "--trained", "demo:trained", *SETTINGS,
                       "--home", str(folder / "home"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text(encoding="utf-8")), result.stderr


def test_cli_output_validates_against_the_schema(written) -> None:
    document, stderr = written
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert "wrote " in stderr and document["schema_version"] == 2
    assert document["base"]["reference"] == "demo:base" and document["corpus"]["passages"] == 64
    assert {entry["input_set"] for entry in document["input_sets"]} == {"neutral", "math"}
    # The causal half ran: the steered answers align with the prompts, one share per block, every α.
    assert document["skipped"] == {}
    assert len(document["steering"]["completions"]) == len(document["amplification"][0]["completions"]) == 32
    assert [block["layer"] for block in document["localization"]] == [0, 1, 2, 3]
    assert document["localization_gap"] > 0
    assert [level["alpha"] for level in document["amplification"]] == [0.0, 1.0, 2.0]


def test_relevance_comes_from_the_runs_generations(written) -> None:
    document, _ = written
    promoted = [token for reading in document["adl"] for token in reading["promoted"]]
    assert promoted and all(token["relevance"] is not None for token in promoted)
    # The trained model writes its filler on every answer; the base never does.
    great = [token["relevance"] for token in promoted if token["token"] == "Great"]
    assert great and min(great) > 0


def test_the_document_loads_back_losslessly(written) -> None:
    document, _ = written
    result = from_jsonable(InternalsResult, document)
    assert to_jsonable(result) == document


def test_the_schema_rejects_a_broken_document(written) -> None:
    document = json.loads(json.dumps(written[0]))
    document["layers"][0]["relative_norm"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    document = json.loads(json.dumps(written[0]))
    del document["adl"][0]["promoted"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    document = json.loads(json.dumps(written[0]))
    document["amplification"][0]["detectors"]["sycophancy"]["rate"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    document = json.loads(json.dumps(written[0]))
    document["skipped"] = {"steering": ""}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_every_contract_field_is_documented() -> None:
    for name in SCHEMA["required"]:
        assert f"`{name}`" in SCHEMA_DOC, name
    for part in ("steering", "localization", "amplification"):
        for name in SCHEMA["$defs"][part].get("required", ()):
            assert f"`{name}`" in SCHEMA_DOC, (part, name)


def test_a_bad_output_name_is_one_line_before_any_work(tmp_path) -> None:
    result = afterburn("internals", "--base", "demo:base", "--trained", "demo:trained", "--home", str(tmp_path),
                       "-o", str(tmp_path / "out.txt"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: -o {tmp_path / 'out.txt'}: internals writes JSON; "
                                                  "name the file *.json"]
