"""The Internals section of every report format, on the real demo run with hostile tokens planted.

``hostile_report`` (``report_helpers``) holds the demo pair's real internals
result, whose activation-difference lens promotes "Great" (the demo was
trained to open with "Great question!"), plus ``HOSTILE_TOKENS`` after the
real tokens in every table, patchscope list and the first lens grid. Each
format must show the section in its place, the demo's numbers and tokens,
and the hostile tokens as literal text only. The run computes the causal
half too (steering, layer localization, amplification on the math suite):
each format shows its three parts with the stored numbers, and a part the
run skipped says why.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs
from report_helpers import HOSTILE_TOKENS, hostile_report, html_row, markdown_row, pdf_text

from afterburn_core.internals.types import StrengthTrial
from afterburn_core.reports import render
from afterburn_core.reports.html import FIGURES_ID
from afterburn_core.reports.html_charts import label
from afterburn_core.reports.internals_parts import averaged_tables, layer_rows
from afterburn_core.reports.markdown import escape
from afterburn_core.views.internals import internals_view
from afterburn_core.views.internals_causal import LOCALIZATION_COLUMNS, PART_TITLES, causal_view
from afterburn_core.views.run import SECTIONS, absence

ABSENT = ("No result: this run did not include the internals analysis (it included the checkpoint inventory, "
          "the weight diff, generation, token-level KL, the behaviour analysis).")


@pytest.fixture(scope="module")
def view():
    return internals_view(hostile_report().internals)


@pytest.fixture(scope="module")
def page_html() -> str:
    return render(hostile_report(), "html").decode("utf-8").replace(get_plotlyjs(), "")


@pytest.fixture(scope="module")
def document() -> str:
    return render(hostile_report(), "md").decode("utf-8")


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
    text = pdf_text(render(hostile_report(), "pdf"), tmp_path)
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
    report = hostile_report()
    bare = report.replace(internals=None, run=replace(report.run, stages=tuple(
        stage for stage in report.run.stages if stage.stage != "internals")))
    assert absence(bare, "internals") == ABSENT
    page = render(bare, "html").decode("utf-8")
    assert f'<h2>Internals</h2><p class="absent">{ABSENT}</p>' in page and "lens-heatmap" not in page
    assert f"## Internals\n\n{ABSENT}\n" in render(bare, "md").decode("utf-8")
    if shutil.which("pdftotext"):
        assert f"Internals {ABSENT}" in " ".join(pdf_text(render(bare, "pdf"), tmp_path).split())


# --- the causal half: steering, layer localization, amplification ---------------------------------------------

#: A skip reason as a checkpoint could word it: markup, a markdown link and a pipe (the reason names its paths).
HOSTILE_REASON = "blocks of <b>model|x</b> [cannot](javascript:y) be swapped"


@pytest.fixture(scope="module")
def internals():
    return hostile_report().internals


@pytest.fixture(scope="module")
def skipped_report():
    """The demo report with localization skipped for a (hostile) reason and amplification not computed."""
    report = hostile_report()
    internals = replace(report.internals, localization=None, amplification=None,
                        skipped={"localization": HOSTILE_REASON})
    return report.replace(internals=internals)


def _percent(value: float) -> str:
    """A share as the causal tables word it, computed here: one decimal, a typographic minus."""
    return f"{value * 100:.1f}%".replace("-", "−")


def test_the_demo_run_computed_every_causal_part(internals) -> None:
    assert internals.skipped == {}
    steering = internals.steering
    assert steering.layer == 2 and steering.metrics["fence_rate"].trained > steering.metrics["fence_rate"].base
    assert [block.layer for block in internals.localization] == [0, 1, 2, 3]
    assert [level.alpha for level in internals.amplification] == [0.0, 1.0, 2.0]
    # The shares as every door words them, computed here from the stored numbers.
    causal = causal_view(internals)
    first = internals.localization[0]
    assert causal.localization.table.rows[0] == ("0", _percent(first.kl_recovered),
                                                 _percent(first.reverse_kl_recovered))
    fences = internals.steering.metrics["fence_rate"]
    assert ("fenced non-code answers", *map(_percent, (fences.base, fences.steered, fences.trained))) \
        in causal.steering.metrics.rows
    format_gaming = internals.amplification[-1].detectors["format_gaming"]
    assert ("Format gaming", "2", "a format its prompt did not ask for", _percent(format_gaming.rate),
            f"{_percent(format_gaming.rate_low)}–{_percent(format_gaming.rate_high)}",
            f"{format_gaming.score:.0f}", "yes" if format_gaming.flagged else "no") in causal.amplification.table.rows


def test_the_steering_method_line_says_how_the_strength_was_chosen(internals) -> None:
    base = internals.steering.perplexity_base
    kept = replace(internals.steering, strength=0.5, perplexity_base=40.0, perplexity_bound=80.0,
                   trials=(StrengthTrial(0.25, 41.0, True), StrengthTrial(0.5, 52.5, True),
                           StrengthTrial(1.0, 97.0, False)))
    view = causal_view(replace(internals, steering=kept)).steering
    assert view.method_line == (
        f"The base answered the run's {len(kept.completions)} prompts with the unit activation difference × 0.5 × "
        "the layer's mean residual norm added at layer 2 on every position. Strengths are tried from the smallest "
        "up while the base's perplexity on held-out neutral text stays within 20 … 80 (its own: 40); the last one "
        "within it is used.")
    assert view.trials.rows == (("0.25", "41", "yes"), ("0.5", "52.5", "yes"), ("1", "97", "no"))
    nothing = replace(kept, strength=0.0, perplexity_base=base, perplexity_bound=2 * base,
                      trials=(StrengthTrial(0.25, base / 3, False),))
    assert causal_view(replace(internals, steering=nothing)).steering.method_line == (
        f"Strengths are tried from the smallest up while the base's perplexity on held-out neutral text stays "
        f"within {base / 2:,.0f} … {2 * base:,.0f} (its own: {base:,.0f}); the first tried was already outside, "
        "so nothing was added at layer 2.")


def test_html_shows_the_causal_parts_with_their_charts(page_html: str, internals) -> None:
    section = page_html[page_html.index('id="internals"'):page_html.index('id="examples"')]
    order = [section.index(f"<h3>{title}</h3>") for title in PART_TITLES.values()]
    assert order == sorted(order)
    causal = causal_view(internals)
    for part in (causal.steering, causal.localization, causal.amplification):
        assert f"<p>{html.escape(part.reading)}</p>" in section
    assert f'<p class="note">{html.escape(causal.steering.method_line)}</p>' in section
    for table in (causal.steering.trials, causal.steering.metrics, causal.localization.table,
                  causal.amplification.table):
        for row in table.rows:
            assert html_row(row, table.numeric) in section, row
    figures = json.loads(re.search(rf'<script type="application/json" id="{FIGURES_ID}">(.*?)</script>',
                                   page_html, re.S).group(1))
    bars = next(figure for key, figure in figures.items() if key.endswith("localization-bars"))["data"]
    assert [trace["y"] for trace in bars] == [[block.kl_recovered for block in internals.localization],
                                              [block.reverse_kl_recovered for block in internals.localization]]
    assert [trace["name"] for trace in bars] == list(LOCALIZATION_COLUMNS[1:])
    curves = next(figure for key, figure in figures.items() if key.endswith("amplification-curves"))["data"]
    counted = {trace["name"]: trace for trace in curves}
    assert set(counted) == {"Length bias", "Format gaming", "Strategy collapse"}  # math only: no sycophancy probes
    fences = [level.detectors["format_gaming"] for level in internals.amplification]
    assert counted["Format gaming"]["x"] == [0.0, 1.0, 2.0]
    assert counted["Format gaming"]["y"] == [detector.rate for detector in fences]
    assert counted["Format gaming"]["error_y"]["array"] == pytest.approx(
        [detector.rate_high - detector.rate for detector in fences])


def test_markdown_shows_the_causal_parts(document: str, internals) -> None:
    section = document[document.index("\n## Internals\n"):document.index(f"\n## {SECTIONS['examples']}\n")]
    for title in PART_TITLES.values():
        assert f"\n### {title}\n" in section
    causal = causal_view(internals)
    for line in (causal.steering.reading, causal.steering.method_line, causal.localization.reading,
                 causal.amplification.reading):
        assert f"\n{escape(line)}\n" in section
    assert "| metric | base | steered base | post-trained |\n| --- | ---: | ---: | ---: |" in section
    assert ("| block | gap closed: post-trained block in the base | gap opened: base block in the post-trained "
            "model |") in section
    for table in (causal.steering.trials, causal.steering.metrics, causal.localization.table,
                  causal.amplification.table):
        for row in table.rows:
            assert markdown_row(row) in section, row


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_pdf_shows_the_causal_parts(tmp_path: Path, internals) -> None:
    flat = " ".join(pdf_text(render(hostile_report(), "pdf"), tmp_path).split())
    flat = flat[flat.index(PART_TITLES["steering"]):flat.index(SECTIONS["examples"])]
    causal = causal_view(internals)
    for line in (causal.steering.reading, causal.steering.method_line, causal.localization.reading,
                 causal.amplification.reading):
        assert " ".join(line.split()) in flat, line
    # The localization chart's legend, then its table.
    assert "gap closed: post-trained block in the base gap opened: base block in the post-trained model" in flat
    for table in (causal.steering.trials, causal.steering.metrics, causal.localization.table,
                  causal.amplification.table):
        for row in table.rows:
            assert " ".join(" ".join(row).split()) in flat, row


def test_skipped_and_absent_parts_say_why_in_every_format(skipped_report, tmp_path: Path) -> None:
    skipped = f"The layer localization did not run: {HOSTILE_REASON}"
    absent = ("The logit-difference amplification was not computed: the run's amplification setting was off, "
              "or the run had no generations to work on.")
    assert causal_view(skipped_report.internals).notes == {"localization": skipped, "amplification": absent}
    page = render(skipped_report, "html").decode("utf-8")
    assert (f'<h3>Layer localization</h3><p class="absent">{html.escape(skipped)}</p>'
            f'<h3>Logit-difference amplification</h3><p class="absent">{html.escape(absent)}</p>') in page
    assert "localization-bars" not in page and "amplification-curves" not in page and "<b>model" not in page
    document = render(skipped_report, "md").decode("utf-8")
    assert ("\n### Layer localization\n\nThe layer localization did not run: blocks of &lt;b&gt;model\\|x&lt;/b&gt; "
            "\\[cannot\\](javascript:y) be swapped\n\n### Logit-difference amplification\n\n"
            f"{escape(absent)}\n") in document
    assert "| metric | base | steered base | post-trained |" in document  # steering still stands
    if shutil.which("pdftotext"):
        flat = " ".join(pdf_text(render(skipped_report, "pdf"), tmp_path).split())
        assert f"Layer localization {skipped} Logit-difference amplification {absent}" in flat
