"""The internals result on the terminal: the causal half's tables with the demo run's numbers, skip reasons as text.

``print_internals`` draws on a recording rich ``Console`` the real demo run's
internals result (``report_helpers.demo_report``, the math suite): each
part's reading as ``causal_view`` words it, the steering trials and metric
tables, the localization shares per block and the detector rates per α must
be there with the stored numbers, and a part the run
skipped must print its reason as text: its markup as typed, its escape
sequences dropped, nothing interpreted.
"""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from report_helpers import demo_report, terminal_row
from rich.console import Console

from afterburn_core.terminal import print_internals
from afterburn_core.views.internals_causal import AMPLIFICATION_NOTE, PART_TITLES, causal_view

#: A skip reason with rich markup and an escape sequence that would recolour the terminal.
HOSTILE_REASON = "[bold red]block 3[/] of \x1b[31mmodel\x1b[0m cannot be swapped"


def _printed(result) -> str:
    console = Console(file=io.StringIO(), record=True, width=160, color_system=None)
    print_internals(console, result)
    return console.export_text()


@pytest.fixture(scope="module")
def internals():
    return demo_report().internals


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%".replace("-", "−")


def test_the_causal_tables_show_the_stored_numbers(internals) -> None:
    shown = _printed(internals)
    fences = internals.steering.metrics["fence_rate"]
    assert terminal_row(("fenced non-code answers", *map(_percent, (fences.base, fences.steered, fences.trained)))).search(shown)
    causal = causal_view(internals)
    for row in (*causal.steering.trials.rows, *causal.steering.metrics.rows):
        assert terminal_row(row).search(shown), row
    for block in internals.localization:
        assert terminal_row((str(block.layer), _percent(block.kl_recovered),
                     _percent(block.reverse_kl_recovered))).search(shown), block
    for level in internals.amplification:
        detector = level.detectors["length_bias"]
        # The behaviour each detector counts is left out to fit 80 columns.
        assert terminal_row(("Length bias", f"{level.alpha:g}", _percent(detector.rate),
                     f"{_percent(detector.rate_low)}–{_percent(detector.rate_high)}",
                     f"{detector.score:.0f}", "yes" if detector.flagged else "no")).search(shown), level.alpha
        assert terminal_row(("Safety regression", f"{level.alpha:g}", "–", "–", "–", "not available")).search(shown)
    assert "behaviour counted" not in shown
    flat = " ".join(shown.split())
    for title, reading in zip(PART_TITLES.values(), (causal.steering.reading, causal.localization.reading,
                                                     causal.amplification.reading)):
        assert f"{title}: {reading}" in flat, title
    assert f"{causal.amplification.sample_line} {AMPLIFICATION_NOTE}" in flat


def test_a_skipped_part_prints_its_reason_as_text(internals) -> None:
    skipped = replace(internals, localization=None, amplification=None, skipped={"localization": HOSTILE_REASON})
    shown = " ".join(_printed(skipped).split())
    # The markup prints as typed; the escape sequences are dropped (``safe_text``).
    assert "Layer localization: The layer localization did not run: [bold red]block 3[/] of model cannot be swapped" \
        in shown
    assert ("Logit-difference amplification: The logit-difference amplification was not computed: the run's "
            "amplification setting was off, or the run had no generations to work on.") in shown
    assert "\x1b" not in shown and "gap closed" not in shown
    assert "steered base" in shown  # the part that ran still shows
