"""The HTML report: self-contained, offline, every chart drawn, every model string shown as text.

Static checks read the file; the browser test serves it to headless Chromium
from a name that resolves nowhere, with every other request counted and
refused, and checks that no dialog
opened and no planted script ran, that the hostile answer reads as text, and
that every chart div holds a rendered plotly SVG. A full-page screenshot is
kept in ``test-artifacts/reports/`` for a person to look at.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs
from report_helpers import ARTIFACTS, hostile_report

from afterburn_core.analyses import detector_names
from afterburn_core.reports import render
from afterburn_core.views import weights as weights_view
from afterburn_core.views.run import SECTIONS, absence

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPORT_URL = "http://report.invalid/report.html"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


@pytest.fixture(scope="module")
def page_html() -> str:
    return render(hostile_report(), "html").decode("utf-8")


def test_plotly_is_embedded_once_and_nothing_points_outside(page_html: str) -> None:
    library = get_plotlyjs()
    assert page_html.count(library) == 1
    rest = page_html.replace(library, "")
    assert re.findall(r"https?://|//cdn|<link\b|@import|url\(", rest, re.IGNORECASE) == []
    # Model text is escaped, so every "<" left starts a tag of ours; its links stay inside the page.
    targets = re.findall(r"<[a-z][^>]*\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]*)", rest, re.IGNORECASE)
    assert targets and all(target.startswith("#") for target in targets), targets
    assert len(re.findall(r"<script\b", page_html)) == 3  # the library, the figures (JSON data), the render call
    assert html.escape("default-src 'none'") in page_html  # the CSP: nothing may be fetched


def test_every_model_string_is_escaped(page_html: str) -> None:
    body = page_html.replace(get_plotlyjs(), "")
    for raw in ("<script>window.__pwned", "<img src=x", "<svg onload", "<iframe src", "<b>loud</b>",
                "<script>alert(4)", "<b>arithmetic</b>"):
        assert raw not in body
    assert html.escape("<script>window.__pwned = 'script'; alert(1)</script>") in body
    assert html.escape("<img src=x onerror=") in body
    assert "\\u202e" in body and "\u202e" not in body  # a direction override is spelled, not obeyed


def test_tensors_are_named_as_their_checkpoint_stores_them(page_html: str) -> None:
    top = weights_view.top_tensors(hostile_report().weights)[0]
    assert top.stored_name == "model." + top.name  # the demo's safetensors keep the model. prefix
    assert f'<span class="mono">{html.escape(top.stored_name)}</span>' in page_html
    assert f'<span class="mono">{html.escape(top.name)}</span>' not in page_html
    # The spectra chart's legend names the same tensor.
    assert f'"name":"{top.stored_name}"' in page_html


def test_every_section_is_present_and_absent_ones_say_why() -> None:
    full = render(hostile_report(), "html").decode("utf-8")
    for key, title in SECTIONS.items():
        assert f'id="{key}"' in full and f"<h2>{html.escape(title)}</h2>" in full
    bare = hostile_report().replace(weights=None, generations=None, token_kl=None, behaviour=None, reward_hack=None,
                                    internals=None)
    bare_html = render(bare, "html").decode("utf-8")
    for kind in ("weights", "behaviour", "reward_hack", "internals", "generations"):
        assert html.escape(absence(bare, kind)) in bare_html
    assert 'class="chart"' not in bare_html


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
@pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed")
def test_opens_offline_renders_every_chart_and_runs_no_model_text(page_html: str) -> None:
    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []

    def serve_the_report_only(route) -> None:
        # The report is served from a name that resolves nowhere; any other request is counted and refused.
        if route.request.url == REPORT_URL:
            route.fulfill(body=page_html, content_type="text/html; charset=utf-8")
        else:
            requests.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", serve_the_report_only)
            page = context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(REPORT_URL)
            page.wait_for_function("[...document.querySelectorAll('.chart')].every(c => c.querySelector('.main-svg'))",
                                   timeout=20_000)
            charts = page.eval_on_selector_all(".chart", "cs => cs.map(c => [c.id, c.querySelectorAll('.main-svg *')"
                                                         ".length])")
            # 2 heatmaps, spectra, 2 length charts, strategy and formats, the composite's gauge and one per
            # detector, the internals' layer curves, lens heatmap, localization bars and amplification curves:
            # each drew its marks.
            assert len(charts) == 7 + 1 + len(detector_names()) + 4 and all(parts > 20 for _, parts in charts), charts
            assert page.evaluate("window.__pwned") is None
            assert page.locator("script").count() == 3 and page.locator("img, iframe").count() == 0
            text = page.inner_text("body")
            for visible in ("<script>window.__pwned = 'script'; alert(1)</script>", "**x** | y `code`",
                            "<b>loud</b> <svg onload=alert(2)>", "Say <iframe src=javascript:alert(3)></iframe>",
                            "Answers grew <script>alert(4)</script> longer"):
                assert visible in text
            (ARTIFACTS / "reports").mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "reports" / "report.html").write_text(page_html, encoding="utf-8")
            page.screenshot(path=str(ARTIFACTS / "reports" / "report-html.png"), full_page=True)
        finally:
            browser.close()
    assert (dialogs, errors, requests) == ([], [], [])
