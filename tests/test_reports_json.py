"""The JSON report and the format dispatch: lossless round trip, schema-valid, clear errors.

The document is the real demo run's (``report_helpers``) with a hand-built
reward-hack result; the schema is docs/report.schema.json, resolved with the
weight-diff, behaviour and reward-hack schemas it references.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from report_helpers import hostile_report

from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import BadInput, RunNotFound
from afterburn_core.jobs import create_run
from afterburn_core.reports import (
    REPORT_FORMATS,
    check_report_path,
    from_json,
    load_report,
    render,
    to_json,
    write_report,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schemas = [json.loads(path.read_text()) for path in DOCS.glob("*.schema.json")]
    registry = Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in schemas)
    schema = json.loads((DOCS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_round_trip_gives_back_equal_objects() -> None:
    report = hostile_report()
    text = to_json(report)
    assert from_json(text) == report
    assert from_json(render(report, "json").decode("utf-8")) == report


def test_document_validates_against_the_schema_and_the_contracts_it_embeds() -> None:
    document = json.loads(to_json(hostile_report()))
    # report.schema.json $refs the weight-diff, behaviour and reward-hack schemas for the results it embeds.
    _validator("report.schema.json").validate(document)
    assert document["schema_version"] == 1 and document["reward_hack"]["composite"]["band"] == "MODERATE"
    assert document["weights"]["diagnosis"]["profile"] in ("standard", "heavy", "extreme")


def test_a_run_without_results_is_still_a_valid_report() -> None:
    bare = hostile_report().replace(inventory=None, weights=None, generations=None, token_kl=None, behaviour=None,
                   reward_hack=None)
    document = json.loads(to_json(bare))
    _validator("report.schema.json").validate(document)
    assert from_json(to_json(bare)) == bare


def test_schema_rejects_a_broken_document() -> None:
    document = json.loads(to_json(hostile_report()))
    document["weights"]["diagnosis"]["profile"] = "enormous"
    with pytest.raises(jsonschema.ValidationError):
        _validator("report.schema.json").validate(document)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "invalid JSON at line 1"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"schema_version": 99}', "schema_version 99 is not 1"),
    ('{"schema_version": 1, "afterburn_version": "0.1.0"}', "missing field"),
])
def test_from_json_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        from_json(text)


def test_write_report_picks_the_format_by_extension(tmp_path: Path) -> None:
    report = hostile_report()
    written = write_report(report, tmp_path / "run.JSON")
    assert from_json(written.read_text(encoding="utf-8")) == report
    assert [check_report_path(f"out{extension}") for _, extension in REPORT_FORMATS.values()] == list(REPORT_FORMATS)


@pytest.mark.parametrize(("name", "message"), [("report.docx", "extension '.docx' names no report format"),
                                               ("report", "no extension names no report format")])
def test_an_unknown_extension_is_bad_input_naming_it(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(BadInput, match=message) as raised:
        write_report(hostile_report(), tmp_path / name)
    assert ".html, .json, .md, .pdf" in str(raised.value)
    assert not (tmp_path / name).exists()


def test_render_rejects_an_unknown_format() -> None:
    with pytest.raises(BadInput, match="unknown report format 'docx'; choose one of html, json, md, pdf"):
        render(hostile_report(), "docx")


def test_load_report_needs_a_finished_run(store) -> None:
    run_id = create_run(store, "demo:base", "demo:trained", AnalysisConfig())
    with pytest.raises(BadInput, match=f"run {run_id} is still queued"):
        load_report(store, run_id)
    with pytest.raises(RunNotFound):
        load_report(store, "no-such-run")
