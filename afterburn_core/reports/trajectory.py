"""Reports of a trajectory: HTML, JSON, Markdown or PDF, the format picked by the file's extension.

``render_trajectory(result, fmt)`` is the bytes of one format; ``write_trajectory_report(result, path)``
writes the format the extension names (``reports.check_report_path``, as the run reports choose), never
through a symlink. The JSON is the ``TrajectoryResult`` itself (contract: docs/trajectory-schema.md), as
``afterburn trajectory -o out.json`` always wrote it; the others are ``trajectory_html``,
``trajectory_markdown`` and ``trajectory_pdf``, each drawing ``views.trajectory``. Nothing here reads
the store or computes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from afterburn_core.errors import BadInput
from afterburn_core.files import write_file
from afterburn_core.reports import REPORT_FORMATS, check_report_path
from afterburn_core.serde import to_jsonable
from afterburn_core.trajectory.types import TrajectoryResult


def render_trajectory(result: TrajectoryResult, fmt: str, generated_at: float | None = None) -> bytes:
    """The trajectory in format ``fmt`` (``html``, ``json``, ``md`` or ``pdf``), as the file's bytes;
    ``generated_at`` (default now) is the time the report says it was written."""
    generated_at = time.time() if generated_at is None else generated_at
    # Writers are imported on first use: plotly and reportlab load only for the format asked for.
    if fmt == "json":
        return json.dumps(to_jsonable(result), indent=1, allow_nan=False).encode("utf-8")
    if fmt == "html":
        from afterburn_core.reports.trajectory_html import render_trajectory_html

        return render_trajectory_html(result, generated_at).encode("utf-8")
    if fmt == "md":
        from afterburn_core.reports.trajectory_markdown import render_trajectory_markdown

        return render_trajectory_markdown(result, generated_at).encode("utf-8")
    if fmt == "pdf":
        from afterburn_core.reports.trajectory_pdf import render_trajectory_pdf

        return render_trajectory_pdf(result, generated_at)
    raise BadInput(f"unknown report format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}")


def write_trajectory_report(result: TrajectoryResult, path: str | Path) -> Path:
    """Write the trajectory to ``path`` in the format its extension names; return the path."""
    return write_file(path, render_trajectory(result, check_report_path(path)))
