"""Reports: a finished run written as HTML, JSON, Markdown or PDF.

``load_report(store, run_id)`` gathers a run and its results into a
``RunReport``; ``render(report, fmt)`` turns it into the bytes of one format
(the dashboard's download buttons); ``write_report(report, path)`` picks the
format by the file's extension; ``check_report_path`` says in advance whether
an extension names a format. Each format has its own module (``html``,
``markdown``, ``pdf``; JSON is ``bundle.to_json``), all showing the selection
that ``digest`` and ``sections`` make, worded by ``wording``. Nothing here
computes an analysis or reads the store beyond ``load_report``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from afterburn_core.errors import BadInput
from afterburn_core.files import write_file
from afterburn_core.reports.bundle import RunReport, from_json, load_report, to_json

#: Format name → (media type, file extension), in the order a user is offered them.
REPORT_FORMATS: dict[str, tuple[str, str]] = {
    "html": ("text/html", ".html"),
    "json": ("application/json", ".json"),
    "md": ("text/markdown", ".md"),
    "pdf": ("application/pdf", ".pdf"),
}


def _html(report: RunReport) -> bytes:
    from afterburn_core.reports.html import render_html

    return render_html(report).encode("utf-8")


def _json(report: RunReport) -> bytes:
    return to_json(report).encode("utf-8")


def _markdown(report: RunReport) -> bytes:
    from afterburn_core.reports.markdown import render_markdown

    return render_markdown(report).encode("utf-8")


def _pdf(report: RunReport) -> bytes:
    from afterburn_core.reports.pdf import render_pdf

    return render_pdf(report)


# Writers are imported on first use: plotly and reportlab load only for the format asked for.
_WRITERS: dict[str, Callable[[RunReport], bytes]] = {"html": _html, "json": _json, "md": _markdown, "pdf": _pdf}


def render(report: RunReport, fmt: str) -> bytes:
    """The report in format ``fmt`` (``html``, ``json``, ``md`` or ``pdf``), as the file's bytes."""
    if fmt not in _WRITERS:
        raise BadInput(f"unknown report format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}")
    return _WRITERS[fmt](report)


def check_report_path(path: str | Path) -> str:
    """The format ``path``'s extension names; ``BadInput`` naming the extension when it names none.

    A caller about to run a long analysis checks its output path first, so a typo fails in a second.
    """
    path = Path(path)
    extension = path.suffix.lower()
    for fmt, (_, format_extension) in REPORT_FORMATS.items():
        if extension == format_extension:
            return fmt
    shown = f"extension {path.suffix!r}" if path.suffix else "no extension"
    extensions = ", ".join(extension for _, extension in REPORT_FORMATS.values())
    raise BadInput(f"{path}: {shown} names no report format; use one of {extensions}")


def write_report(report: RunReport, path: str | Path) -> Path:
    """Write the report to ``path`` in the format its extension names (``files.write_file``); return the path."""
    return write_file(path, render(report, check_report_path(path)))  # never through a symlink


__all__ = [
    "REPORT_FORMATS", "RunReport", "check_report_path", "from_json", "load_report", "render", "to_json",
    "write_report",
]
