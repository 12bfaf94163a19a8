"""The Markdown report: GitHub-clean tables, no raw HTML, every model string shown literally."""

from __future__ import annotations

import re

import pytest
from report_helpers import ARTIFACTS, hostile_report

from afterburn_core.reports import render
from afterburn_core.views import weights as weights_view
from afterburn_core.views.run import SECTIONS, absence
from afterburn_core.reports.markdown import escape

# A pipe that separates cells: not escaped by a backslash.
_CELL_PIPE = re.compile(r"(?<!\\)\|")


@pytest.fixture(scope="module")
def document() -> str:
    text = render(hostile_report(), "md").decode("utf-8")
    (ARTIFACTS / "reports").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "reports" / "report.md").write_text(text, encoding="utf-8")
    return text


def test_no_raw_html_and_the_hostile_text_is_escaped(document: str) -> None:
    assert "<" not in document and ">" not in document
    assert "&lt;script&gt;window.\\_\\_pwned = 'script'; alert(1)&lt;/script&gt;" in document
    assert "\\*\\*x\\*\\* \\| y \\`code\\` \\[link\\](javascript:alert(1))" in document
    assert "&lt;b&gt;loud&lt;/b&gt; &lt;svg onload=alert(2)&gt; \\~\\~strike\\~\\~ \\| cell \\| ↵ &gt; quote" \
        in document
    assert "\\u202eevil" in document and "\u202e" not in document


def test_every_table_is_well_formed(document: str) -> None:
    blocks = re.findall(r"(?:^\|.*\n)+", document, re.MULTILINE)
    assert len(blocks) >= 12
    for block in blocks:
        rows = block.splitlines()
        widths = {len(_CELL_PIPE.findall(row)) for row in rows}
        assert len(widths) == 1, block
        assert re.fullmatch(r"\|( ---:? \|)+", rows[1]), rows[1]


def test_every_section_in_order(document: str) -> None:
    positions = [document.index(f"\n## {title}\n") for title in SECTIONS.values()]
    assert positions == sorted(positions)
    assert document.startswith("# Afterburn report: demo:base → demo:trained\n")


def test_tensors_are_named_as_their_checkpoint_stores_them(document: str) -> None:
    top = weights_view.top_tensors(hostile_report().weights)[0]
    assert top.stored_name == "model." + top.name  # the demo's safetensors keep the model. prefix
    assert f"| {escape(top.stored_name)} | {top.module} |" in document
    assert f"| {escape(top.name)} |" not in document


def test_absent_sections_say_why() -> None:
    bare = hostile_report().replace(weights=None, generations=None, token_kl=None, behaviour=None, reward_hack=None,
                                    internals=None)
    text = render(bare, "md").decode("utf-8")
    for kind in ("weights", "behaviour", "reward_hack", "internals", "generations"):
        assert absence(bare, kind) in text


@pytest.mark.parametrize(("text", "shown"), [
    ("a | b", "a \\| b"),
    ("`x`", "\\`x\\`"),
    ("<b>&amp;</b>", "&lt;b&gt;&amp;amp;&lt;/b&gt;"),
    ("line one\nline two", "line one ↵ line two"),
    ("**bold** _it_ ~~s~~ $x$ [l](u) \\", "\\*\\*bold\\*\\* \\_it\\_ \\~\\~s\\~\\~ \\$x\\$ \\[l\\](u) \\\\"),
    ("https://x.org www.x.org a@b.io", "https\u2060://x.org www\u2060.x.org a\u2060@b.io"),
])
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown
