"""The trajectory's reports: HTML, JSON, Markdown and PDF written by extension, by the API and ``afterburn
trajectory -o``, on the small stored trajectory (``trajectory_factories.stored_trajectory``, run once per
session) whose training output folder's name is markup. Each format holds the view's readings and the
checkpoint to ship, shows the folder's name as text, and the PDF's text holds the emergence sentence.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import afterburn
from report_helpers import pdf_text
from trajectory_factories import HOSTILE_FOLDER, SMALL_MAX_NEW_TOKENS, stored_trajectory

from afterburn_core.errors import BadInput
from afterburn_core.reports.markdown import escape
from afterburn_core.reports.trajectory import render_trajectory, write_trajectory_report
from afterburn_core.serde import to_jsonable
from afterburn_core.views.trajectory import trajectory_view

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "trajectory.schema.json").read_text())
#: The planted hack whose emergence sentence every format must carry.
PLANTED = "sycophancy"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "stored-trajectory"
    root.mkdir(exist_ok=True)
    home, result = stored_trajectory(root)
    return root, home, result


@pytest.fixture(scope="module")
def result(world):
    return world[2]


def emergence_sentence(result) -> str:
    [detector] = [line for line in trajectory_view(result).detectors if line.name == PLANTED]
    assert detector.emergence is not None
    return detector.reading


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_each_format_is_written_as_its_extension_names(result, tmp_path):
    magic = {"html": b"<!DOCTYPE html>", "json": b"{", "md": b"# Afterburn trajectory: ", "pdf": b"%PDF-"}
    for extension, start in magic.items():
        path = write_trajectory_report(result, tmp_path / f"trajectory.{extension}")
        assert path.read_bytes().startswith(start), extension
    document = json.loads((tmp_path / "trajectory.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document == to_jsonable(result)
    with pytest.raises(BadInput, match=r"trajectory\.txt: extension '\.txt' names no report format; use one of "
                                       r"\.html, \.json, \.md, \.pdf"):
        write_trajectory_report(result, tmp_path / "trajectory.txt")


def test_the_html_is_self_contained_and_shows_the_folder_name_as_text(result):
    view = trajectory_view(result)
    page = render_trajectory(result, "html").decode("utf-8")

    assert HOSTILE_FOLDER not in page
    assert page.count(html.escape(HOSTILE_FOLDER, quote=True)) == len(result.checkpoints)
    for line in (view.recommendation, emergence_sentence(result), *(s.reading for s in view.drift)):
        assert html.escape(line, quote=True) in page
    assert html.escape("default-src 'none'; script-src 'sha256-", quote=True) in page  # nothing is fetched


def test_the_markdown_escapes_the_folder_name_and_holds_every_reading(result):
    view = trajectory_view(result)
    text = render_trajectory(result, "md").decode("utf-8")

    assert HOSTILE_FOLDER not in text and "[x](javascript" not in text
    assert text.count(escape(HOSTILE_FOLDER)) == len(result.checkpoints)
    for line in (view.recommendation, view.composite, *view.detectors, *view.drift, *view.behaviour, *view.logged):
        assert escape(line if isinstance(line, str) else line.reading) in text
    assert "| 500 | 0.268 | 0.134 | 100.0 CRITICAL | 100 ✱ | 100 ✱ | – | 100 ✱ |" in text


def test_the_pdf_text_holds_the_emergence_sentence_and_the_recommendation(result, tmp_path):
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = one_line(pdf_text(render_trajectory(result, "pdf"), tmp_path))

    assert one_line(emergence_sentence(result)) in text
    assert one_line(trajectory_view(result).recommendation) in text
    assert "Which checkpoint to ship" in text and "Checkpoints and their runs" in text


def test_afterburn_trajectory_writes_the_report_its_extension_names(world, tmp_path):
    root, home, result = world
    arguments = ("trajectory", "--base", "demo:base", str(root / HOSTILE_FOLDER), "--suites",
                 str(root / "probes.yaml"), "--max-new-tokens", str(SMALL_MAX_NEW_TOKENS), "--device", "cpu",
                 "--home", str(home))

    written = afterburn(*arguments, "-o", str(tmp_path / "trajectory.md"))
    assert written.returncode == 0, written.stderr
    assert written.stdout == "" and written.stderr.endswith(f"wrote {tmp_path / 'trajectory.md'}\n")
    assert escape(trajectory_view(result).recommendation) in (tmp_path / "trajectory.md").read_text()

    refused = afterburn(*arguments, "-o", str(tmp_path / "trajectory.txt"))
    assert (refused.returncode, refused.stderr) == (
        2, f"Error: {tmp_path / 'trajectory.txt'}: extension '.txt' names no report format; use one of .html, "
           ".json, .md, .pdf\n")
