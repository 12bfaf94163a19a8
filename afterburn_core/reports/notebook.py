"""Results shown in Jupyter: a run, each result and one prompt as the HTML report draws them, as cell output.

``run_html`` (a ``DiagnosedRun``'s summary and findings), ``result_html`` (one
analysis's section: weights, behaviour, reward hack, internals) and
``example_html`` (one prompt side by side) are ``reports.html``'s own sections
as fragments: the same markup, escaping and charts as the report, nothing
written twice. The result types live in stages that come before the reports
and cannot import them, so they get no ``_repr_html_``; ``register`` tells
IPython's HTML formatter about them by name instead (nothing is imported to do
it), and ``afterburn_core.api`` calls it on import inside a kernel.

Offline: the charts need plotly.js, which no page fetches. As plotly's own
offline notebook mode does, the first fragment with charts since the kernel
started embeds it (~4.8 MB) and the rest reuse it; a chart drawn without it
says so (``html.NO_PLOTLY``). Cost: rendering only, no store read.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from afterburn_core.analyses import analysis_kinds

if TYPE_CHECKING:
    from afterburn_core.reports.bundle import RunReport
    from afterburn_core.views.run import Example

#: What a ``DiagnosedRun`` shows: the headline numbers and every finding (each result shows its own section).
RUN_SECTIONS = ("summary", "findings")

#: The result types shown as their report section, by (defining module, class name) → analysis kind.
RESULT_TYPES: dict[tuple[str, str], str] = {
    ("afterburn_core.weights.types", "WeightDiffResult"): "weights",
    ("afterburn_core.behaviour.types", "BehaviourStats"): "behaviour",
    ("afterburn_core.reward_hack.types", "RewardHackResult"): "reward_hack",
    ("afterburn_core.internals.types", "InternalsResult"): "internals",
}

#: Whether a fragment of this process has embedded plotly.js (the page keeps it for every later chart).
_plotly_sent = False


@dataclass(frozen=True)
class _OneResult:
    """A result shown without its run: the report's sections read ``kind`` from it and find every other kind
    absent (no generations to quote, no token KL)."""

    kind: str
    result: Any

    def __getattr__(self, name: str) -> Any:
        if name in analysis_kinds():
            return self.result if name == self.kind else None
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")


def _sections(report: Any, sections: tuple[str, ...]) -> str:
    from afterburn_core.reports.html import render_fragment

    global _plotly_sent
    drawn = render_fragment(report, sections, include_plotly=not _plotly_sent)
    _plotly_sent = _plotly_sent or drawn.charted
    return drawn.html


def run_html(report: RunReport) -> str:
    """A run's summary cards, top findings and every finding, as a notebook shows a ``DiagnosedRun``."""
    return _sections(report, RUN_SECTIONS)


def result_html(kind: str, result: Any) -> str:
    """One analysis's result (``kind``: weights, behaviour, reward_hack, internals) as its report section."""
    return _sections(_OneResult(kind, result), (kind,))


def example_html(example: Example) -> str:
    """One prompt and both models' answers side by side, as the report's examples show them."""
    from afterburn_core.reports.html import render_example_fragment

    return render_example_fragment(example)


def register(shell: Any) -> None:
    """Have IPython ``shell`` show each of ``RESULT_TYPES`` as its report section."""
    formatter = shell.display_formatter.formatters["text/html"]
    for (module, name), kind in RESULT_TYPES.items():
        formatter.for_type_by_name(module, name, partial(result_html, kind))


def register_in_kernel() -> None:
    """``register`` with the running IPython, if this process is one (IPython is never imported here)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and hasattr(shell, "display_formatter"):
        register(shell)
