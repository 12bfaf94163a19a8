"""``safe_text``: what a checkpoint, suite or model wrote prints in the terminal as the text it is."""

from __future__ import annotations

import io

from rich.console import Console

from afterburn_core.views.text import safe_text


def printed(text: str) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=200)
    console.print(safe_text(text), highlight=False)
    return console.file.getvalue().rstrip("\n")


def test_markup_prints_as_text():
    assert printed("layers.[/].w[x] [bold]q[/bold]") == "layers.[/].w[x] [bold]q[/bold]"


def test_escape_sequences_are_removed_and_control_characters_spelled():
    hostile = "a\x1b[31mred\x1b[0m\x1b]0;title\x07b\x07c\x00d\u202ee"
    assert printed(hostile) == "aredb\\x07c\\x00d\\u202ee"  # the OSC title, its BEL included, is gone


def test_plain_text_is_unchanged():
    assert safe_text("model.layers.0.self_attn.q_proj.weight") == "model.layers.0.self_attn.q_proj.weight"
