"""One quantity, one value, at every door: the real demo run read by the page's view, a report and the terminal.

The demo plants a ×1.25 rescale of one norm. The diagnosis's outlier finding
(in the reports and the terminal) and the Weights page's norm reading both
say how many times its peers' median it moved: one number, printed alike.
The length test the Behaviour page names is the one the JSON report stores:
the paired Wilcoxon signed-rank test. Reuses the shared demo run of
``report_helpers`` (no run of its own).
"""

from __future__ import annotations

import io
import json
import re

import pytest
from report_helpers import demo_report
from rich.console import Console

from afterburn_core.demo import BASE_DIR
from afterburn_core.reports import render
from afterburn_core.terminal import print_weight_diff
from afterburn_core.views.behaviour_readings import length
from afterburn_core.views.weights_detail import norms

NORM = json.loads((BASE_DIR.parent / "measurements.json").read_text())["planted"]["norm_tensor"]
#: How the outlier finding words the multiple: ``18.6× the median 0.01399 of the 4 tensors layers.*.…``.
FINDING = re.compile(r"(\d+\.\d)× the median (\S+) of the (\d+) tensors (\S+) \(threshold")
#: How the norm reading words it: ``18.6× the median ‖ΔW‖/‖W‖ of its 4 peers layers.*.… (0.2608 against 0.01399)``.
READING = re.compile(r"(\d+\.\d)× the median ‖ΔW‖/‖W‖ of its (\d+) peers (\S+) \(\S+ against (\S+)\)")


@pytest.fixture(scope="module")
def report():
    return demo_report()


def test_the_rescaled_norm_reads_one_multiple_of_its_peers_at_every_door(report) -> None:
    weights = report.weights
    (finding,) = [f for f in weights.diagnosis.findings if f.title == f"Outlier tensor: {NORM}"]
    ratio, median, count, key = FINDING.search(finding.detail).groups()
    reading = norms(weights.norms, weights.tensors).reading
    assert reading.startswith(f"{NORM} moved most: ")
    assert READING.search(reading).groups() == (ratio, count, key, median)

    console = Console(file=io.StringIO(), record=True, width=1000, color_system=None)
    print_weight_diff(console, weights)
    markdown = render(report, "md").decode("utf-8").replace("\\", "")
    for door in (console.export_text(), markdown):
        assert f"{ratio}× the median {median} of the {count} tensors" in door
        # No other multiple of a median is printed for the norm anywhere at that door.
        lines = [line for line in door.splitlines() if NORM in line and "× the median" in line]
        assert lines and all(re.findall(r"(\d+\.\d)× the median", line) == [ratio] for line in lines)


def test_the_length_test_the_page_names_is_the_one_the_json_report_stores(report) -> None:
    behaviour = report.behaviour
    group = behaviour.suites["math"].overall
    document = json.loads(render(report, "json"))
    stored = document["behaviour"]["suites"]["math"]["overall"]["length"]
    assert stored["test"] == "wilcoxon_signed_rank" and stored["p_value"] == stored["wilcoxon_p"]
    section = length(group, behaviour)
    assert (f"; Wilcoxon signed-rank (paired): {'significant' if stored['significant'] else 'not significant'} after "
            f"Benjamini–Hochberg (p_adj {stored['p_adjusted']:.2g}).") in section.reading
    assert f"Mann–Whitney U, which ignores that both models answered the same prompts: p " \
           f"{stored['mann_whitney_p']:.2g} (secondary, not corrected)." in section.note
