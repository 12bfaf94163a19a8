"""Results in Jupyter: the quickstart notebook executed in a real kernel, and each result as a cell shows it.

``test_quickstart_notebook`` runs examples/quickstart.ipynb with nbclient in a
real ipykernel (a subprocess), in a temporary store and working folder, and
checks every output against the run it stored: the diagnosis, the weights and
reward-hack sections with their charts (plotly.js embedded once), the
weights DataFrame, one prompt side by side, the saved report (~30 s on 2 idle
cores: one short diagnose). The others render ``report_helpers``'
``hostile_report`` (a real demo run with markup planted in the prompts,
answers, findings and tokens) as IPython's own formatter does.
"""

from __future__ import annotations

import html
import importlib
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from IPython.core.formatters import DisplayFormatter
from nbclient import NotebookClient
from plotly.offline import get_plotlyjs
from report_helpers import HOSTILE_BASE, HOSTILE_PROMPT, HOSTILE_TOKENS, HOSTILE_TRAINED, REPO_ROOT, hostile_report
from waits import HANG_S

from afterburn_core.api import DiagnosedRun, load_run
from afterburn_core.errors import BadInput
from afterburn_core.reports import notebook
from afterburn_core.reports.html import NO_PLOTLY
from afterburn_core.views.run import SECTIONS, examples, findings

QUICKSTART = REPO_ROOT / "examples" / "quickstart.ipynb"
#: The first line of the plotly.js bundle: present where a fragment embeds the library.
PLOTLY_BANNER = get_plotlyjs()[:40]
#: Markup from ``report_helpers`` that must never reach a page as markup.
RAW_MARKUP = ("<script>window.__pwned", "<img src=x", "<svg onload", "<iframe src=javascript", "<b>loud</b>",
              "<script>alert(5)</script>", "<font color=red>")


def _html_outputs(cell) -> str:
    return "".join(output.get("data", {}).get("text/html", "") for output in cell.outputs)


def _plain(cell) -> str:
    return "".join(output.get("data", {}).get("text/plain", "") for output in cell.outputs)


def test_quickstart_notebook(tmp_path: Path, afterburn_home: Path):
    notebook_file = nbformat.read(QUICKSTART, as_version=4)
    NotebookClient(notebook_file, timeout=HANG_S, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = [cell for cell in notebook_file.cells if cell.cell_type == "code"]
    assert [output.output_type for cell in cells for output in cell.outputs if output.output_type == "error"] == []
    diagnosis, weights, table, reward_hack, answers, saved = cells

    run_id = re.match(r"DiagnosedRun\(run (\w+): demo:base → demo:trained, done", _plain(diagnosis)).group(1)
    run = load_run(run_id, afterburn_home)
    shown = _html_outputs(diagnosis)
    assert shown.startswith('<div class="afterburn"><style>.afterburn {')
    assert f"<h2>{SECTIONS['summary']}</h2>" in shown and f"<h2>{SECTIONS['findings']}</h2>" in shown
    assert html.escape(findings(run.report)[0].title) in shown

    shown = _html_outputs(weights)
    assert f"<h2>{SECTIONS['weights']}</h2>" in shown and "<h3>Most changed tensors</h3>" in shown
    assert PLOTLY_BANNER in shown and "Plotly.newPlot" in shown
    assert html.escape(run.weights_table().name[0]) in shown

    frame = run.weights_table()
    shown = _html_outputs(table)
    assert "<table" in shown and "relative_change" in shown and f"<td>{frame.name[0]}</td>" in shown
    assert frame.relative_change[0] == frame.relative_change.max()

    shown = _html_outputs(reward_hack)
    assert f"<h2>{SECTIONS['reward_hack']}</h2>" in shown and "gauge-composite" in shown
    assert PLOTLY_BANNER not in shown and "Plotly.newPlot" in shown  # the weights cell's copy serves it

    pair = run.prompt("math/math-arith-01")
    shown = _html_outputs(answers)
    assert "math/math-arith-01" in shown
    assert html.escape(pair.base) in shown and html.escape(pair.trained) in shown
    assert _plain(answers).startswith("PromptAnswers(math/math-arith-01: base ")

    report = tmp_path / "quickstart-report.html"
    assert _plain(saved) == "PosixPath('quickstart-report.html')"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.fixture
def fresh_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a kernel just started: no fragment has embedded plotly.js yet."""
    monkeypatch.setattr(notebook, "_plotly_sent", False)


def _formatter() -> DisplayFormatter:
    """IPython's own display formatter, as a kernel has it, with Afterburn's result types registered."""
    formatter = DisplayFormatter()
    notebook.register(SimpleNamespace(display_formatter=formatter))
    return formatter


@pytest.mark.usefixtures("fresh_kernel")
def test_each_result_shows_as_its_report_section():
    report = hostile_report()
    formatter = _formatter()
    for (module, name), kind in notebook.RESULT_TYPES.items():
        result = getattr(report, kind)
        assert type(result) is getattr(importlib.import_module(module), name) and result.KIND == kind
        shown = formatter.format(result)[0]["text/html"]
        assert shown.startswith('<div class="afterburn">') and f'<h2>{SECTIONS[kind]}</h2>' in shown, kind
        assert not any(markup in shown for markup in RAW_MARKUP), kind
    assert "<h3>Most changed tensors</h3>" in formatter.format(report.weights)[0]["text/html"]
    # Without its run, a detector's evidence is the prompts it cites, not their text.
    shown = formatter.format(report.reward_hack)[0]["text/html"]
    cited = examples(report, 1)[0].link
    assert f'<li><span class="mono">{cited}</span></li>' in shown and html.escape(HOSTILE_PROMPT) not in shown
    shown = formatter.format(report.internals)[0]["text/html"]
    assert all(html.escape(token) in shown for token in HOSTILE_TOKENS[:3])


@pytest.mark.usefixtures("fresh_kernel")
def test_plotly_embedded_once_per_kernel_and_ids_unique_per_output():
    report = hostile_report()
    run = DiagnosedRun(report.run.run_id, Path("store"), report)
    summary = run._repr_html_()  # no chart: plotly.js waits for the first output that draws one
    first, second = notebook.result_html("weights", report.weights), notebook.result_html("weights", report.weights)
    assert PLOTLY_BANNER not in summary and "<script>" not in summary
    assert first.count(PLOTLY_BANNER) == 1 and PLOTLY_BANNER not in second
    ids = [set(re.findall(r'<div id="(afterburn-\w+-1-[\w-]+)"', shown)) for shown in (first, second)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    figures = re.search(r'<script type="application/json" id="(afterburn-\w+-figures)">', second).group(1)
    assert f"document.getElementById('{figures}')" in second
    assert NO_PLOTLY in second  # what a chart says on a page without plotly.js


def test_diagnosis_and_one_prompt_escape_model_text():
    report = hostile_report()
    run = DiagnosedRun(report.run.run_id, Path("store"), report)
    shown = run._repr_html_()
    assert f"<h2>{SECTIONS['summary']}</h2>" in shown and html.escape(findings(report)[0].title) in shown
    assert not any(markup in shown for markup in RAW_MARKUP)
    pair = run.prompt(examples(report, 1)[0].link)
    assert (pair.prompt, pair.base, pair.trained) == (HOSTILE_PROMPT, HOSTILE_BASE, HOSTILE_TRAINED)
    shown = pair._repr_html_()
    assert html.escape(HOSTILE_PROMPT) in shown and html.escape(HOSTILE_BASE) in shown
    assert not any(markup in shown for markup in RAW_MARKUP)


def test_unknown_prompt_names_the_runs_prompts():
    report = hostile_report()
    links = [f"{prompt.suite}/{prompt.prompt_id}" for prompt in report.generations.prompts]
    with pytest.raises(BadInput) as raised:
        DiagnosedRun("r1", Path("store"), report).prompt("math/nope")
    assert str(raised.value) == (f"run r1 has no prompt 'math/nope'; its {len(links)} prompts are "
                                 f"{', '.join(links[:5])}, …")
    with pytest.raises(BadInput, match=r"^run r1 has no generations; run the behaviour analysis to compare answers$"):
        DiagnosedRun("r1", Path("store"), report.replace(generations=None)).prompt(links[0])


def test_weights_table_is_every_tensor_most_changed_first():
    report = hostile_report()
    table = DiagnosedRun("r1", Path("store"), report).weights_table()
    assert len(table) == len(report.weights.tensors)
    assert list(table.relative_change.dropna()) == sorted(table.relative_change.dropna(), reverse=True)
    assert {"name", "relative_change", "effective_rank", "rank_90", "low_rank"} <= set(table.columns)
