"""The PDF report: every section's text extractable, every page drawn, odd unicode survives.

pypdf reads the text back (section titles, the hostile answer as literal
text); ``pdftoppm`` renders every page and none may be blank (its pixels
vary). The page images are kept in ``test-artifacts/reports/`` for a person
to look at. A second render with the fallback font (Vera, which lacks CJK and
most symbols) must not crash and spells what it cannot draw.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat
from pypdf import PdfReader
from report_helpers import ARTIFACTS, hostile_report

from waits import HANG_S

from afterburn_core.reports import pdf_fonts, render
from afterburn_core.views import run as run_view, weights as weights_view
from afterburn_core.views.run import SECTIONS, absence

#: Standard deviation of a page's grey levels below which it counts as blank (text pages measure > 20).
BLANK_PAGE_STDDEV = 3.0


def _pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def _text(data: bytes) -> str:
    return "\n".join(_pages(data))


@pytest.fixture(scope="module")
def document() -> bytes:
    return render(hostile_report(), "pdf")


def test_every_section_title_and_the_hostile_text_are_in_the_text(document: bytes) -> None:
    text = _text(document)
    for title in ("Afterburn report", *SECTIONS.values()):
        assert title in text, title
    flat = " ".join(text.split())
    assert "<script>window.__pwned = 'script'; alert(1)</script>" in flat
    assert "Answers grew <script>alert(4)</script> longer" in flat
    assert "\\u202eevil" in flat  # the direction override is spelled, not obeyed


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_tensors_are_named_as_their_checkpoint_stores_them(document: bytes) -> None:
    top = weights_view.top_tensors(hostile_report().weights)[0]
    assert top.stored_name == "model." + top.name  # the demo's safetensors keep the model. prefix
    assert top.stored_name in _text(document).replace("\n", "")


def test_every_page_renders_and_none_is_blank(document: bytes, tmp_path: Path) -> None:
    source = tmp_path / "report.pdf"
    source.write_bytes(document)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(source), str(tmp_path / "page")], check=True, timeout=HANG_S)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(PdfReader(io.BytesIO(document)).pages) >= 5
    kept = ARTIFACTS / "reports"
    kept.mkdir(parents=True, exist_ok=True)
    (kept / "report.pdf").write_bytes(document)
    for page in pages:
        with Image.open(page) as image:
            assert ImageStat.Stat(image.convert("L")).stddev[0] > BLANK_PAGE_STDDEV, f"{page.name} is blank"
        shutil.copy(page, kept / f"report-pdf-{page.name}")


def test_absent_sections_say_why() -> None:
    bare = hostile_report().replace(weights=None, generations=None, token_kl=None, behaviour=None, reward_hack=None,
                                    internals=None)
    text = " ".join(_text(render(bare, "pdf")).split())
    for kind in ("weights", "behaviour", "reward_hack", "internals", "generations"):
        assert absence(bare, kind) in text


def test_the_fallback_font_spells_what_it_cannot_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_fonts, "DEJAVU_FOLDERS", ())
    pdf_fonts.fonts.cache_clear()
    try:
        assert pdf_fonts.fonts().source.startswith("Bitstream Vera")
        text = " ".join(_text(render(hostile_report(), "pdf")).split())
    finally:
        pdf_fonts.fonts.cache_clear()
    assert "\\u6f22\\u5b57 \\U0001f600" in text  # 漢字 😀: no glyph in Vera
    assert "Afterburn report" in text and SECTIONS["provenance"] in text


def test_tensor_names_break_only_after_dots_and_underscores(document: bytes) -> None:
    text = _text(document)
    broken = []
    for name in sorted(tensor.stored_name for tensor in hostile_report().weights.tensors):
        # The name with any line break or space between its characters, where the PDF put one.
        for found in re.finditer(r"\s*".join(map(re.escape, name)), text):
            pieces = re.split(r"\s+", found.group())
            assert all(piece[-1] in "._" for piece in pieces[:-1]), f"{name} broken as {pieces}"
            broken += [name] if len(pieces) > 1 else []
    # The finding titles' column is narrower than these names: the test sees real breaks, not only whole names.
    assert "model.layers.2.post_attention_layernorm.weight" in broken


def _joined(text: str) -> str:
    """``text`` on one line, a name broken after a dot or underscore made whole again."""
    return re.sub(r"(?<=[._])\s+", "", " ".join(text.split()))


def test_findings_start_on_the_first_page_and_each_is_listed_once(document: bytes) -> None:
    pages = [_joined(page) for page in _pages(document)]
    found = run_view.findings(hostile_report())
    assert SECTIONS["findings"] in pages[0] and _joined(found[0].title) in pages[0]
    everything = " ".join(pages)
    for finding in found:
        assert everything.count(_joined(finding.title)) == 1, finding.title


def test_the_composite_gauge_shows_its_scale(document: bytes) -> None:
    first = _pages(document)[0].split("\n")
    # The ends and the band edges, each on a line of its own beside the gauge (as the HTML gauge's ticks).
    assert {"0", "25", "50", "75", "100"} <= {line.strip() for line in first}
