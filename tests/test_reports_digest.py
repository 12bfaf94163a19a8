"""What every report format shows, chosen once: examples, findings order, grids, absence lines."""

from __future__ import annotations

import html
import io
import re
from dataclasses import replace

from pypdf import PdfReader
from report_helpers import HOSTILE_TRAINED, hostile_report

from afterburn_core.reports import render
from afterburn_core.reports.markdown import escape
from afterburn_core.views import behaviour as behaviour_view
from afterburn_core.views import run as run_view
from afterburn_core.views import weights as weights_view
from afterburn_core.views.theme import SEVERITY_ORDER
from afterburn_core.types import StageProgress


def test_examples_are_the_prompts_with_the_largest_mean_kl() -> None:
    report = hostile_report()
    chosen = run_view.examples(report, 3)
    by_link = {scores.prompt_id: scores.mean_kl for scores in report.token_kl.scores.prompts}
    kls = [by_link[example.link] for example in chosen]
    assert kls == sorted(by_link.values(), reverse=True)[:3]
    assert chosen[0].trained.text == HOSTILE_TRAINED and chosen[0].top_tokens


def test_without_token_kl_examples_rank_by_length_change() -> None:
    report = hostile_report().replace(token_kl=None)
    chosen = run_view.examples(report, 4)
    changes = [abs(example.trained.n_tokens - example.base.n_tokens) for example in chosen]
    everything = [abs(t.n_tokens - b.n_tokens) for b, t in zip(report.generations.base, report.generations.trained)]
    assert changes == sorted(everything, reverse=True)[:4]
    assert all(example.why.startswith("length ") and not example.top_tokens for example in chosen)


def test_findings_come_most_severe_first_from_every_analysis() -> None:
    found = run_view.findings(hostile_report())
    assert [SEVERITY_ORDER[finding.severity] for finding in found] == sorted(SEVERITY_ORDER[f.severity] for f in found)
    assert {finding.source for finding in found} == {"reward hacking", "weights", "behaviour"}
    assert found[0].recommendation == "Add a length penalty to the reward."


def test_layer_module_grid_puts_each_cell_in_its_place() -> None:
    weights = hostile_report().weights
    grid = weights_view.layer_module_grid(weights)
    assert grid.rows == ("0", "1", "2", "3", weights_view.OUTSIDE_LAYERS)
    for cell in weights.layers:
        row = weights_view.OUTSIDE_LAYERS if cell.layer is None else str(cell.layer)
        assert grid.values[grid.rows.index(row)][grid.columns.index(cell.module)] == cell.relative_change
    assert sum(value is not None for row in grid.values for value in row) == len(weights.layers)


def test_absence_says_skipped_failed_or_not_asked_for() -> None:
    report = hostile_report()
    skipped = replace(report.run, stages=(*report.run.stages,
                                          StageProgress("reward_hack", "skipped", 0, 0, "no prompts to read")))
    assert run_view.absence(report.replace(run=skipped), "reward_hack") == (
        "No result: the reward-hack analysis was skipped (no prompts to read).")
    failed = replace(report.run, status="failed", error="out of memory",
                     stages=(*report.run.stages, StageProgress("reward_hack", "running", 0, 1)))
    assert run_view.absence(report.replace(run=failed), "reward_hack") == (
        "No result: the run failed before the reward-hack analysis finished: out of memory.")
    assert run_view.absence(report, "reward_hack") == (
        "No result: this run did not include the reward-hack analysis (it included the checkpoint inventory, "
        "the weight diff, generation, token-level KL, the behaviour analysis, the internals analysis).")
    # Computed, then its stored result removed: said as such, never "did not include".
    assert run_view.absence(report.replace(internals=None), "internals") == (
        "No result: the internals analysis ran, but its stored result was removed or could not be read.")


def test_every_format_counts_the_behaviour_tests_alike() -> None:
    report = hostile_report()
    stats = report.behaviour
    value, note = behaviour_view.significance_fact(stats)
    suites = behaviour_view.suite_count(stats)
    line = behaviour_view.significance(stats)
    # Whole suites and categories together are every corrected test, each counted once.
    assert line == (f"{stats.n_significant} of {stats.n_tests} tests significant after Benjamini–Hochberg correction "
                    f"(α = 0.05): {suites.significant} of the {suites.tests} on whole suites, "
                    f"{stats.n_significant - suites.significant} of the {stats.n_tests - suites.tests} within categories")
    assert value == f"{stats.n_significant} of {stats.n_tests}" and f"{value} {note}" == line
    assert suites.tests == len(behaviour_view.shift_rows(stats))
    heading = behaviour_view.suite_tests_title(stats, significant_only=True)
    markdown = render(report, "md").decode("utf-8")
    assert f"{escape(line)}." in markdown and f"### {heading}" in markdown
    assert f"| **Behaviour shifts** | {value} | {escape(note)} |" in markdown
    pdf = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(render(report, "pdf"))).pages).split())
    assert line in pdf and heading in pdf and f"{value} {note}" in pdf
    page = render(report, "html").decode("utf-8")
    assert html.escape(line, quote=False) in page
    # The HTML's folded table of every whole-suite test counts what the line calls whole suites.
    assert set(re.findall(r"All (\d+) tests", page)) == {str(suites.tests)}
    assert f"<h3>{html.escape(heading, quote=False)}</h3>" in page
