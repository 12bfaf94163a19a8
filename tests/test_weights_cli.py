"""``afterburn weight-diff`` end to end on the bundled demo pairs: the JSON contract and the summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import afterburn

from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.weights.types import WeightDiffResult

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "weight-diff.schema.json").read_text())
#: The demo's planted edits (afterburn_core/demo/README.md).
PLANTED_PROJECTION = "layers.1.self_attn.q_proj.weight"
PLANTED_NORM = "layers.2.post_attention_layernorm.weight"


@pytest.fixture(scope="module")
def demo_json(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("home")
    out = home / "edited.json"
    result = afterburn("weight-diff", "--base", "demo", "--trained", "demo", "--home", str(home), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_output_validates_against_the_published_schema(demo_json: dict) -> None:
    jsonschema.validate(demo_json, SCHEMA)
    names = {tensor["name"] for tensor in demo_json["tensors"]}
    assert PLANTED_PROJECTION in names and len(names) == len(demo_json["tensors"])


def test_output_loads_back_into_the_same_typed_result(demo_json: dict) -> None:
    result = from_jsonable(WeightDiffResult, demo_json)
    assert result.schema_version == WeightDiffResult.SCHEMA_VERSION
    again = json.loads(json.dumps(to_jsonable(result)))
    assert again == demo_json


def test_planted_projection_ranks_first_and_reads_low_rank(demo_json: dict) -> None:
    two_d = [t for t in demo_json["tensors"] if t["singular_values"]]
    ranked = sorted(two_d, key=lambda t: t["relative_change"], reverse=True)
    assert ranked[0]["name"] == PLANTED_PROJECTION
    # Beside the key, the name as the demo's model.safetensors stores it (both sides spell it alike).
    assert (ranked[0]["stored_name"], ranked[0]["base_stored_name"]) == ("model." + PLANTED_PROJECTION, None)
    assert ranked[0]["low_rank"] is True and ranked[0]["rank_90"] <= 3
    assert ranked[0]["spectrum_method"] == "randomized" and ranked[0]["spectrum_error_bound"] >= 0


def test_summary_without_output_and_bad_output_name(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    summary = afterburn("weight-diff", "--base", "demo", "--trained", "demo:control", "--home", home)
    assert summary.returncode == 0, summary.stderr
    assert "Weight profile:" in summary.stdout and "Most changed tensors" in summary.stdout
    # Rows are named as the checkpoint stores them, never by the normalized key.
    assert re.search(r"│ model\.layers\.\d+\.", summary.stdout) and not re.search(r"│ layers\.", summary.stdout)
    bad = afterburn("weight-diff", "--base", "demo", "--trained", "demo", "--home", home, "-o", str(tmp_path / "x.txt"))
    assert bad.returncode == 2 and "name the file *.json" in bad.stderr
