"""The trajectory report as GitHub-flavoured Markdown: the recommendation, each part's readings, the tables.

The same parts as the HTML trajectory report (``views.trajectory.SECTION_TITLES``) without the charts:
their numbers are in the table of steps. Every string goes through ``reports.markdown.escape`` (a
checkpoint folder's name is shown as typed, never read as markup or a link).
"""

from __future__ import annotations

from afterburn_core import __version__
from afterburn_core.reports.markdown import escape, table
from afterburn_core.trajectory.types import TrajectoryResult
from afterburn_core.views import wording
from afterburn_core.views.trajectory import CHECKPOINT_COLUMNS, SECTION_TITLES, Series, trajectory_view


def _readings(series: tuple[Series, ...]) -> list[str]:
    return [f"- {escape(line.reading)}" for line in series]


def _table(headers: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> str:
    return table(tuple(map(escape, headers)), [tuple(map(escape, row)) for row in rows])


def render_trajectory_markdown(result: TrajectoryResult, generated_at: float) -> str:
    """The trajectory as a Markdown document."""
    view = trajectory_view(result)
    lines = [
        f"# Afterburn trajectory: {escape(view.title)}", "",
        f"Base {escape(result.base.reference)} (`{escape(result.base.fingerprint)}`) · method "
        f"{escape(result.method)} · report by afterburn {__version__} on {wording.when(generated_at)}", "",
        "## Which checkpoint to ship", "", escape(view.recommendation), "",
        f"## {SECTION_TITLES['risk']}", "", *_readings((view.composite, *view.detectors)), "",
    ]
    if view.logged:
        lines += [f"### {SECTION_TITLES['logged']}", "", *_readings(view.logged), ""]
    lines += [f"## {SECTION_TITLES['weights']}", "", *_readings(view.drift), "", *_readings(view.modules), "",
              f"## {SECTION_TITLES['behaviour']}", "", *_readings(view.behaviour), "",
              f"## {SECTION_TITLES['checkpoints']}", "", _table(view.columns, view.rows), "",
              _table(CHECKPOINT_COLUMNS, view.checkpoints), ""]
    return "\n".join(lines)
