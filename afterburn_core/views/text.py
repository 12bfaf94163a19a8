"""Model- and user-written text made safe to *show* verbatim, whatever the output format.

Every writer escapes for its own syntax (HTML, Markdown, reportlab's XML);
before that, text a model wrote goes through ``spell_invisible`` here so that
a direction override (U+202E) cannot reorder what follows it on screen and a
zero-width character cannot hide a difference, and through ``excerpt`` where
a table cell has room for a line only. Pure functions, no escaping for any
syntax here.
"""

from __future__ import annotations


def spell_invisible(text: str, keep: str = "\n\t") -> str:
    """``text`` with control, format and odd whitespace characters (but those in ``keep``) as escapes."""
    return "".join(char if char.isprintable() or char in keep else repr(char)[1:-1] for char in text)


def excerpt(text: str, limit: int) -> str:
    """``text`` on one line (newlines shown as ↵), cut to ``limit`` characters with an ellipsis."""
    line = spell_invisible(text.replace("\n", " ↵ "), keep="")
    return line if len(line) <= limit else line[: max(0, limit - 1)].rstrip() + "…"
