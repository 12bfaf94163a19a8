"""Model- and user-written text made safe to *show* verbatim, whatever the output format.

Every writer escapes for its own syntax (HTML, Markdown, reportlab's XML);
before that, text a model wrote goes through ``spell_invisible`` here so that
a direction override (U+202E) cannot reorder what follows it on screen and a
zero-width character cannot hide a difference, and through ``excerpt`` where
a table cell has room for a line only. Pure functions, no escaping for any
syntax here.
"""

from __future__ import annotations

import re


def spell_invisible(text: str, keep: str = "\n\t") -> str:
    """``text`` with control, format and odd whitespace characters (but those in ``keep``) as escapes."""
    return "".join(char if char.isprintable() or char in keep else repr(char)[1:-1] for char in text)


def excerpt(text: str, limit: int) -> str:
    """``text`` on one line (newlines shown as ↵), cut to ``limit`` characters with an ellipsis."""
    line = spell_invisible(text.replace("\n", " ↵ "), keep="")
    return line if len(line) <= limit else line[: max(0, limit - 1)].rstrip() + "…"


#: ESC/CSI/OSC sequences a terminal would act on (colour, cursor moves, window titles, hyperlinks).
_TERMINAL_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")


def plain_text(text: object, keep: str = "\n\t") -> str:
    """``text`` with terminal escape sequences removed and other invisible characters (but ``keep``) spelled.

    What may reach a terminal that does not parse rich markup: a library's log line,
    a warning, the worker's log. A lone ESC left by a cut sequence is spelled too, so
    no ESC byte survives.
    """
    return spell_invisible(_TERMINAL_SEQUENCE.sub("", str(text)), keep=keep)


def safe_text(text: object) -> str:
    """``text`` for rich: escape sequences removed, other invisible characters spelled, markup escaped.

    For every string a checkpoint, a suite, a path or a model wrote, before the
    terminal prints it: ``[/]`` and ``[bold]`` print as text, an ESC sequence
    cannot recolour or retitle the terminal, a BEL or NUL shows as ``\\x07`` /
    ``\\x00`` and U+202E as ``\\u202e``.
    """
    from rich.markup import escape

    return escape(plain_text(text, keep=""))
