"""``afterburn behaviour`` end to end on the demo pair: the JSON contract, loadable and schema-valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import afterburn

from afterburn_core.behaviour.report import BehaviourReport
from afterburn_core.serde import from_jsonable, to_jsonable

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "behaviour.schema.json").read_text())


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("home")
    out = home / "behaviour.json"
    result = afterburn("behaviour", "--base", "demo", "--trained", "demo", "--home", str(home),
                       "--suites", "math", "--max-new-tokens", "96", "-o", str(out))
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_document_validates_and_loads_back(document: dict) -> None:
    jsonschema.validate(document, SCHEMA)
    report = from_jsonable(BehaviourReport, document)
    assert json.loads(json.dumps(to_jsonable(report))) == document
    assert {g["suite"] for g in document["generations"]} == {"math"}
    assert len(document["token_kl"]) == len(document["generations"])


def test_planted_length_and_fences_show_on_the_demo_pair(document: dict) -> None:
    overall = document["suites"]["math"]["overall"]
    assert overall["length"]["trained_mean"] > overall["length"]["base_mean"] and overall["length"]["significant"]
    fences = overall["format"]["fenced_non_code"]
    assert fences["trained"] > fences["base"] and fences["significant"]
    # Padding is never counted: every answer's length is its own tokens up to EOS.
    assert all(g["base"]["n_tokens"] <= 96 and g["trained"]["n_tokens"] <= 96 for g in document["generations"])


def test_bad_suite_is_one_line_exit_2(tmp_path: Path) -> None:
    result = afterburn("behaviour", "--base", "demo", "--trained", "demo", "--home", str(tmp_path),
                       "--suites", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "missing.yaml" in result.stderr and "Traceback" not in result.stderr
