"""How every report words numbers, times and names, so the formats read alike.

Pure functions over plain values: a rate as a percent, a p-value, a
timestamp in UTC, a duration, a snake_case label as words, a statistic of
any JSON type as a cell. No escaping (each writer escapes for its syntax).
"""

from __future__ import annotations

from datetime import datetime, timezone

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
    if isinstance(value, (bool, str)):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)
