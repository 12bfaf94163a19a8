"""HTML made of escaped parts: tags that escape what they hold, the page skeleton and its stylesheet.

``Safe`` marks a string as HTML this module produced; every other value given
to ``tag``, ``join`` or ``page`` is escaped with ``html.escape`` (quotes
included), so a model's text can reach the page as text only, never as
markup. ``json_block`` writes JSON for a ``<script type="application/json">``
block with ``<``, ``>``, ``&`` and the JavaScript line separators as ``\\u``
escapes, so no string inside can close the block. ``page`` adds a Content
Security Policy that runs only the page's own scripts (by hash) and fetches
nothing, a second line of defence should anything slip through.

It knows nothing of runs, results or charts.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable
from typing import Any

from afterburn_core.views import theme


class Safe(str):
    """HTML produced by this module (never model or user text); ``tag`` and ``join`` keep it as is."""

    __slots__ = ()


def escape(value: object) -> Safe:
    """``value`` as HTML text: a ``Safe`` string unchanged, anything else ``html.escape``-d."""
    return value if isinstance(value, Safe) else Safe(html.escape(str(value), quote=True))


def join(*parts: object) -> Safe:
    """The parts, each escaped unless ``Safe``, concatenated; iterables (not strings) are flattened, None dropped."""
    pieces = []
    for part in parts:
        if part is None:
            continue
        if isinstance(part, Iterable) and not isinstance(part, str):
            pieces.append(join(*part))
        else:
            pieces.append(escape(part))
    return Safe("".join(pieces))


#: Elements that have no content and no end tag (``<br></br>`` would read as two line breaks).
VOID_ELEMENTS = frozenset({"br", "hr", "img", "meta", "wbr"})


def tag(name: str, *children: object, **attributes: object) -> Safe:
    """``<name attributes>children</name>``; ``class_`` gives ``class``, ``_`` in names gives ``-``.

    Attribute values are escaped; True writes a bare attribute, None or False leaves it out.
    A void element (``VOID_ELEMENTS``) is written without children or end tag.
    """
    rendered = []
    for key, value in attributes.items():
        if value is None or value is False:
            continue
        attribute = key.rstrip("_").replace("_", "-")
        rendered.append(f" {attribute}" if value is True else f' {attribute}="{escape(value)}"')
    if name in VOID_ELEMENTS:
        return Safe(f"<{name}{''.join(rendered)}>")
    return Safe(f"<{name}{''.join(rendered)}>{join(*children)}</{name}>")


def json_block(value: Any, element_id: str) -> Safe:
    """``value`` as a JSON data block the page's script reads; no string in it can end the block."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                       ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return Safe(f'<script type="application/json" id="{escape(element_id)}">{text}</script>')


def _script_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


def page(*, title: str, body: Safe, scripts: tuple[str, ...] = ()) -> str:
    """A complete HTML document: ``body`` with the stylesheet, then ``scripts`` (trusted JavaScript) in order."""
    # Plotly writes inline styles and data-URI icons; nothing may be fetched from anywhere.
    allowed_scripts = " ".join(map(_script_hash, scripts)) or "'none'"
    policy = (f"default-src 'none'; script-src {allowed_scripts}; "
              "style-src 'unsafe-inline'; img-src data:; font-src data:")
    script_tags = "".join(f"<script>{source}</script>" for source in scripts)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLESHEET}</style>\n</head>\n"
        f"<body>\n{body}\n{script_tags}\n</body>\n</html>\n"
    )


#: The class of a fragment's outer ``div``; the stylesheet applies inside it only.
FRAGMENT_CLASS = "afterburn"


def fragment(*, body: Safe, scripts: tuple[str, ...] = ()) -> str:
    """``body`` as a piece of someone else's page (a notebook cell): in a ``div.afterburn`` whose stylesheet is
    nested under it, so the host page's own elements keep their look; then ``scripts`` (trusted JavaScript).

    The host sets the security policy, so there is none here: the escaping is the defence. Nested CSS needs a
    browser from 2023 on (Chrome 120, Firefox 117, Safari 17.2); an older one shows the text unstyled.
    """
    script_tags = "".join(f"<script>{source}</script>" for source in scripts)
    return (f'<div class="{FRAGMENT_CLASS}"><style>.{FRAGMENT_CLASS} {{{_VARIABLES}{_RULES}}}</style>'
            f"{body}{script_tags}</div>")


#: The palette every rule below reads: on ``:root`` in a page, on the fragment's ``div`` in a notebook.
_VARIABLES = f"""
  --ink: {theme.INK}; --muted: {theme.MUTED}; --rule: {theme.RULE}; --panel: {theme.PANEL};
  --accent: {theme.ACCENT}; --base: {theme.BASE_COLOR}; --trained: {theme.TRAINED_COLOR};
"""

_RULES = """
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5; font-size: 15px;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.masthead { background: var(--accent); color: #fff; padding: 28px 0 22px; }
header.masthead .eyebrow { text-transform: uppercase; letter-spacing: .12em; font-size: 12px; opacity: .8; }
header.masthead h1 { margin: 4px 0 10px; font-size: 28px; font-weight: 650; }
header.masthead .meta { font-size: 13px; opacity: .85; }
.wrap { max-width: 1120px; margin: 0 auto; padding: 0 28px; }
nav.toc { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--rule); }
nav.toc a { display: inline-block; padding: 10px 12px; color: var(--accent); text-decoration: none; font-size: 14px; }
nav.toc a:hover { background: var(--panel); }
section { padding: 26px 0 10px; border-bottom: 1px solid var(--rule); }
section h2 { font-size: 22px; margin: 0 0 14px; }
section h3 { font-size: 16px; margin: 22px 0 8px; }
p.lead, p.absent, p.note { color: var(--muted); margin: 4px 0 12px; }
p.absent { font-style: italic; }
.chip { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin: 0 5px 0 0;
  vertical-align: baseline; }
.chip.base { background: var(--base); } .chip.trained { background: var(--trained); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 14px; margin: 6px 0 18px; }
.card { border: 1px solid var(--rule); border-radius: 8px; padding: 14px 16px; background: var(--panel); }
.card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .08em; color: var(--muted); }
.card .value { font-size: 22px; font-weight: 650; margin: 2px 0; }
.card .note { font-size: 13px; color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color: #fff; vertical-align: 1px; }
ol.findings { padding-left: 20px; } ol.findings li { margin: 0 0 10px; }
ol.findings .detail { color: var(--muted); } .recommendation { font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 6px 0 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
table.facts td:first-child { width: 24%; } table.facts td:nth-child(2) { width: 46%; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  word-break: break-all; }
.chart { width: 100%; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.grid4 { display: grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); gap: 14px; }
.detector { border: 1px solid var(--rule); border-radius: 8px; padding: 12px 14px; }
ul.evidence li { margin: 0 0 6px; }
table.statistics td { word-break: break-word; }
.composite { display: grid; grid-template-columns: 340px 1fr; gap: 18px; align-items: center; }
.example { border: 1px solid var(--rule); border-radius: 8px; margin: 0 0 18px; overflow: hidden; }
.example .head { padding: 10px 14px; background: var(--panel); border-bottom: 1px solid var(--rule); }
.example .prompt { padding: 10px 14px; border-bottom: 1px solid var(--rule); }
.example .side { padding: 10px 14px; }
.example .side.base { border-top: 4px solid var(--base); }
.example .side.trained { border-top: 4px solid var(--trained); }
pre.output { white-space: pre-wrap; word-break: break-word; margin: 6px 0 0; font-size: 13px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #fbfbfc; padding: 8px;
  border-radius: 4px; }
.tokens span { display: inline-block; border: 1px solid var(--rule); border-radius: 4px; padding: 0 6px;
  margin: 2px 4px 2px 0; font-size: 12.5px; white-space: pre; }
span.token { white-space: pre; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
footer { color: var(--muted); font-size: 12.5px; padding: 18px 0 40px; }
@media (max-width: 760px) { .grid2, .composite { grid-template-columns: 1fr; } }
@media print { nav.toc { display: none; } section { break-inside: avoid-page; } }
"""

STYLESHEET = f"\n:root {{{_VARIABLES}}}{_RULES}"
