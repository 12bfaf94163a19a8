"""Where a model's heads cannot be scored, every report says why where the head view would be (issue 15, item 5)."""

from __future__ import annotations

import io
from dataclasses import replace

from pypdf import PdfReader
from report_helpers import demo_report

from afterburn_core.reports import render
from afterburn_core.reports.markdown import escape as markdown_escape

REASON = "the config names no attention heads (num_attention_heads / n_head)"


def _headless_report():
    report = demo_report()
    return report.replace(weights=replace(report.weights, heads=None, heads_reason=REASON))


def test_each_report_states_the_reason_instead_of_dropping_the_section() -> None:
    report = _headless_report()
    sentence = f"No per-head scores: {REASON}."
    html = render(report, "html").decode("utf-8")
    assert "Attention heads" in html and sentence.replace("'", "&#x27;") in html and 'id="head-heatmap"' not in html
    assert f"Attention heads: {markdown_escape(sentence)}" in render(report, "md").decode("utf-8")
    pdf_text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(render(report, "pdf"))).pages)
    assert "No per-head scores" in " ".join(pdf_text.split())


def test_with_heads_the_reports_draw_them_and_say_what_they_are() -> None:
    report = demo_report()
    assert report.weights.heads is not None
    assert "head-heatmap" in render(report, "html").decode("utf-8")
    assert "query heads over" in render(report, "md").decode("utf-8")
