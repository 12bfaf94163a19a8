"""How every door words numbers, times and names, so the pages, the reports and the terminal read alike.

Pure functions over plain values: a rate as a percent or in points, a
p-value, a timestamp in UTC, a duration, a count, a shape, a size, a
snake_case label as words, a statistic of any JSON type as a cell, a token
quoted. No escaping (each door escapes for its syntax); no sentence about
the data (the per-analysis views write those).
"""

from __future__ import annotations

from datetime import datetime, timezone

#: Display names of the multiple-testing corrections the behaviour analysis applies (behaviour/statistics.py).
CORRECTIONS = {"benjamini_hochberg": "Benjamini–Hochberg"}


def percent(value: float) -> str:
    return f"{value:.0%}"


def p_value(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "–"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def words(name: str) -> str:
    """A snake_case label as words (``fenced_non_code`` → ``fenced non code``)."""
    return name.replace("_", " ")


def correction_name(correction: str) -> str:
    return CORRECTIONS.get(correction, words(correction))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def statistic(value: float | str | bool | None) -> str:
    """A detector statistic as a table cell."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def count(value: int | None) -> str:
    """``1,234,567``; ``—`` when unknown."""
    return "—" if value is None else f"{value:,}"


def shape(dims: tuple[int, ...]) -> str:
    """``4096 × 11008``; a scalar is ``()``."""
    return " × ".join(str(dim) for dim in dims) if dims else "()"


def size(n_bytes: int) -> str:
    """Binary units, e.g. ``1.5 MiB``."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    value = float(n_bytes)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


def duration(value: float | None) -> str:
    """``0.04 s``, ``4.2 s``, ``12 s``, ``3 min 05 s``, ``2 h 03 min``; ``—`` when unknown (the dashboard's)."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.2f} s"
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def visible(text: str) -> str:
    """``text`` quoted, with control, format and odd whitespace characters written as escapes.

    For strings whose exact characters matter, such as decoded tokens: ``' the'``
    shows its leading space, ``'\\n'`` its newline, ``'\\u202e'`` a direction
    override that would otherwise reorder what follows.
    """
    return repr(text)


def points(value: float) -> str:
    """A difference of two rates in percentage points, signed: ``+12 points``."""
    return f"{value * 100:+.0f} points"
