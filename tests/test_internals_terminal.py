"""The internals result on the terminal: the causal half's tables with the demo run's numbers, skip reasons as text.

``print_internals`` draws on a recording rich ``Console`` the real demo run's
internals result (``report_helpers.demo_report``, the math suite): the
steering metric table, the localization shares per block and the detector
rates per α must be there with the stored numbers, and a part the run
skipped must print its reason as text: its markup as typed, its escape
sequences dropped, nothing interpreted.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from report_helpers import demo_report
from rich.console import Console

from afterburn_core.reports import internals_parts as parts_of
from afterburn_core.terminal import print_internals

#: A skip reason with rich markup and an escape sequence that would recolour the terminal.
HOSTILE_REASON = "[bold red]block 3[/] of \x1b[31mmodel\x1b[0m cannot be swapped"


def _printed(result) -> str:
    console = Console(file=io.StringIO(), record=True, width=160, color_system=None)
    print_internals(console, result)
    return console.export_text()


def _row(cells: tuple[str, ...]) -> re.Pattern[str]:
    """A table row of a rich box: the cells in order, each padded, between │ rules."""
    return re.compile(r"│\s*" + r"\s*│\s*".join(map(re.escape, cells)) + r"\s*│")


@pytest.fixture(scope="module")
def internals():
    return demo_report().internals


def test_the_causal_tables_show_the_stored_numbers(internals) -> None:
    shown = _printed(internals)
    fences = internals.steering.metrics["fence_rate"]
    assert _row(("fenced non-code answers", *(f"{value * 100:.1f} %" for value in
                                              (fences.base, fences.steered, fences.trained)))).search(shown)
    for row in parts_of.steering_rows(internals.steering):
        assert _row(row).search(shown), row
    for block in internals.localization:
        assert _row((str(block.layer), f"{block.kl_recovered * 100:.1f} %".replace("-", "−"),
                     f"{block.reverse_kl_recovered * 100:.1f} %".replace("-", "−"))).search(shown), block
    for level in internals.amplification:
        detector = level.detectors["length_bias"]
        assert _row((f"{level.alpha:g}", "Length bias", f"{detector.rate * 100:.1f} %",
                     f"{detector.rate_low * 100:.1f} % – {detector.rate_high * 100:.1f} %",
                     f"{detector.score:.0f}", "yes" if detector.flagged else "no")).search(shown), level.alpha
        assert _row((f"{level.alpha:g}", "Safety regression", "–", "–", "–", "not available")).search(shown)
    lines = shown.splitlines()
    for title in parts_of.CAUSAL_TITLES.values():
        assert any(line.startswith(f"{title}: ") for line in lines), title
    assert f"Logit-difference amplification: {parts_of.amplification_line(internals.amplification)}" in shown


def test_a_skipped_part_prints_its_reason_as_text(internals) -> None:
    skipped = replace(internals, localization=None, amplification=None, skipped={"localization": HOSTILE_REASON})
    shown = _printed(skipped)
    # The markup prints as typed; the escape sequences are dropped (``safe_text``).
    assert "Layer localization: Skipped: [bold red]block 3[/] of model cannot be swapped" in shown
    assert f"Logit-difference amplification: {parts_of.NOT_COMPUTED}" in shown
    assert "\x1b" not in shown and "gap closed" not in shown
    assert "steered base" in shown  # the part that ran still shows
