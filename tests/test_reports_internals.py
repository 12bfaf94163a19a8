"""The Internals section of every report format, on the real demo run with hostile tokens planted.

``hostile_report`` (``report_helpers``) holds the demo pair's real internals
result, whose activation-difference lens promotes "Great" (the demo was
trained to open with "Great question!"), plus ``HOSTILE_TOKENS`` after the
real tokens in every table, patchscope list and the first lens grid. Each
format must show the section in its place, the demo's numbers and tokens,
and the hostile tokens as literal text only.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs
from report_helpers import HOSTILE_TOKENS, hostile_report

from afterburn_core.reports import render
from afterburn_core.reports.html import FIGURES_ID
from afterburn_core.reports.html_charts import label
from afterburn_core.reports.internals_parts import averaged_tables, layer_rows
from afterburn_core.reports.markdown import escape
from afterburn_core.views.internals import internals_view
from afterburn_core.views.run import SECTIONS, absence

ABSENT = "No result: this run did not include the internals analysis."


@pytest.fixture(scope="module")
def view():
    return internals_view(hostile_report().internals)


@pytest.fixture(scope="module")
def page_html() -> str:
    return render(hostile_report(), "html").decode("utf-8").replace(get_plotlyjs(), "")


@pytest.fixture(scope="module")
def document() -> str:
    return render(hostile_report(), "md").decode("utf-8")


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    source = tmp_path / "report.pdf"
    source.write_bytes(data)
    done = subprocess.run(["pdftotext", "-layout", str(source), "-"], check=True, capture_output=True, timeout=60)
    return done.stdout.decode("utf-8")


def test_the_demo_reading_is_read_at_the_middle_layer(view) -> None:
    (table,) = averaged_tables(view)  # one ADL layer by default: the middle one, averaged first
    assert table.title == "Layer 2, positions 0–4 averaged"
    assert table.promoted[0].token == "Great" and "Great" in table.persistent
    assert [row.token for row in table.promoted[-len(HOSTILE_TOKENS):]] == ["<script>alert(5)</script>",
                                                                            "](javascript:x)|", "<font color=red>",
                                                                            "\\u202erev"]


def test_html_section_sits_after_reward_hacking_and_shows_the_tables(page_html: str, view) -> None:
    order = [page_html.index(f'id="{key}"') for key in ("reward_hack", "internals", "examples")]
    assert order == sorted(order)
    section = page_html[order[1]:order[2]]
    assert "<h2>Internals</h2>" in section and html.escape(view.reading) in section
    assert "<h3>Activation-difference lens · Layer 2, positions 0–4 averaged</h3>" in section
    assert re.search(r'<td class="num">1</td><td><span class="mono token">Great</span></td>'
                     r'<td class="num">0\.\d{3}</td><td class="num">\+\d+\.\d</td>', section)
    assert "".join(f'<td class="num">{cell}</td>' for cell in layer_rows(view)[0]) in section
    assert re.search(r'id="chart-\d+-layer-curves"', section) and re.search(r'id="chart-\d+-lens-heatmap"', section)


def test_html_tokens_are_escaped_in_tables_and_chart_text(page_html: str, view) -> None:
    for markup in ("<script>alert(5)", "<font color=red>", "\u202e"):  # a link's tail is plain text in HTML
        assert markup not in page_html
    assert len(re.findall(r"<script\b", page_html)) == 3  # the library (emptied here), the figures, the render call
    assert '<span class="mono token">&lt;script&gt;alert(5)&lt;/script&gt;</span>' in page_html
    assert '<span>&lt;font color=red&gt;</span>' in page_html  # a persistent patchscope token
    block = re.search(rf'<script type="application/json" id="{FIGURES_ID}">(.*?)</script>', page_html, re.S)
    figures = json.loads(block.group(1))
    lens = next(figure for key, figure in figures.items() if key.endswith("lens-heatmap"))
    # Plotly reads its text as HTML: every token it shows (ticks, hover) is escaped for it.
    assert lens["layout"]["xaxis"]["ticktext"][:4] == ["&lt;script&gt;alert(5)&lt;/script&gt;", "](javascript:x)|",
                                                       "&lt;font color=red&gt;", "\\u202erev"]
    # Base top, trained top, the input token, its position.
    assert lens["data"][0]["customdata"][0][0] == [label(HOSTILE_TOKENS[0])] * 3 + [0]
    assert "<script>" not in json.dumps(figures, ensure_ascii=False)
    curves = next(figure for key, figure in figures.items() if key.endswith("layer-curves"))["data"]
    assert [trace["y"] for trace in curves] == [list(curve.values) for curve in view.curves]


def test_markdown_section_tables_and_escaped_tokens(document: str, view) -> None:
    start, end = document.index("\n## Internals\n"), document.index(f"\n## {SECTIONS['examples']}\n")
    assert document.index(f"\n## {SECTIONS['reward_hack']}\n") < start
    section = document[start:end]
    assert f"\n{escape(view.reading)}\n" in section
    assert "| " + " | ".join(layer_rows(view)[0]) + " |" in section
    assert "### Activation-difference lens: Layer 2, positions 0–4 averaged" in section
    assert re.search(r"\n\| 1 \| “Great” \| 0\.\d{3} \| \+\d+\.\d \| ", section)
    assert "| 21 | “&lt;script&gt;alert(5)&lt;/script&gt;” | 0.001 | -1.5 |" in section
    assert "| 22 | “\\](javascript:x)\\|” | 0.001 | -1.5 |" in section
    assert "“&lt;font color=red&gt;”" in section and "“\\\\u202erev”" in section
    assert "Patchscope, tokens the post-trained model reads from δ at half the scales or more: “Great”" in section
    # No raw HTML, no link: every "]" or "|" a token brought is backslash-escaped.
    assert "<" not in section and ">" not in section
    assert re.search(r"(?<!\\)\]\(", section) is None


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_pdf_section_and_literal_tokens(tmp_path: Path, view) -> None:
    text = _pdf_text(render(hostile_report(), "pdf"), tmp_path)
    flat = " ".join(text.split())
    assert flat.index(SECTIONS["reward_hack"]) < flat.index(f"Internals On {view.reading.split()[1]} neutral passages") \
        < flat.index(SECTIONS["examples"])
    assert " ".join(view.reading.split()) in flat
    assert "Per layer, neutral corpus relative norm cosine logit-lens KL (nats)" in flat  # the chart's panel titles
    assert "Activation-difference lens · Layer 2, positions 0–4 averaged" in flat
    assert re.search(r"\b1 “Great” 0\.\d{3} \+\d+\.\d ", flat)
    assert " ".join(layer_rows(view)[0]) in flat
    for token in ("“<script>alert(5)</script>”", "“](javascript:x)|”", "“<font color=red>”", "“\\u202erev”"):
        assert token in flat, token
    assert "Patchscope, tokens the post-trained model reads from δ at half the scales or more: “Great”," in flat


def test_a_run_without_internals_says_why_in_every_format(tmp_path: Path) -> None:
    bare = hostile_report().replace(internals=None)
    assert absence(bare, "internals") == ABSENT
    page = render(bare, "html").decode("utf-8")
    assert f'<h2>Internals</h2><p class="absent">{ABSENT}</p>' in page and "lens-heatmap" not in page
    assert f"## Internals\n\n{ABSENT}\n" in render(bare, "md").decode("utf-8")
    if shutil.which("pdftotext"):
        assert f"Internals {ABSENT}" in " ".join(_pdf_text(render(bare, "pdf"), tmp_path).split())
