"""Which Markdown / formatting devices one answer uses: ``format_features(text) -> dict[str, bool]``.

Owns the feature list (``FORMAT_FEATURES``) and one rule per feature. The
rule that matters most for post-training audits is ``fenced_non_code``: a
``` fence around something that is not code (a sum, a city, a refusal) is
the demo's planted format habit, and a plain ``fenced_code`` flag cannot tell
it from a model that writes code. Structure rules (headers, lists, tables,
bold, inline code) read the text with fenced blocks removed, so a ``# comment``
or a ``__init__`` inside code is not a header or bold. Does not count uses or
judge whether a format suits the prompt (``reward_hack`` does). Cost: a few
regex passes, linear in the text.
"""

from __future__ import annotations

import re

from afterburn_core.behaviour.text import fenced_blocks, normalize, without_fences

#: Feature names, in display order; ``format_features`` returns exactly these keys.
FORMAT_FEATURES: tuple[str, ...] = (
    "fenced_code", "fenced_non_code", "inline_code", "latex", "headers", "lists", "tables", "bold",
    "thinking_tags", "answer_marker",
)

#: A list needs this many item lines: one "- x" line is a dash, two are a list (CommonMark
#: accepts one; chat answers use single dashes as punctuation often enough to skew rates).
LIST_MIN_ITEMS = 2

_INLINE_CODE_RE = re.compile(r"(?<!`)`[^`\n]+`(?!`)")
# Display math, \( \) / \[ \] delimiters, common commands, or $...$ holding a TeX-ish character
# (so "$5 and $10" is money, not math).
_LATEX_RE = re.compile(
    r"\$\$.+?\$\$|\\\(.+?\\\)|\\\[.+?\\\]"
    r"|\\(?:frac|dfrac|boxed|sqrt|cdot|times|sum|int|begin|left|right|alpha|beta|pi|leq|geq|neq)\b"
    r"|\$(?!\s)[^$\n]*[\\^_{}][^$\n]*(?<!\s)\$",
    re.DOTALL,
)
# Each marker is written once and read two ways: followed by text it is the feature
# (``format_features``); matched alone it is what ``strip_markup`` cuts out.
_HEADER_MARK = r"^[ \t]{0,3}#{1,6}[ \t]+"
_LIST_MARK = r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+"
_HEADER_RE = re.compile(_HEADER_MARK + r"\S", re.MULTILINE)
_LIST_ITEM_RE = re.compile(_LIST_MARK + r"\S", re.MULTILINE)
_TABLE_SEPARATOR_RE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$", re.MULTILINE)
_BOLD_RE = re.compile(r"\*\*(?=\S)[^*\n]+?(?<=\S)\*\*|(?<!\w)__(?=\S)[^_\n]+?(?<=\S)__(?!\w)")
# Italic markers are cut with bold ones: a single * or _ around a word is emphasis markup too.
# Not between word characters, so "2*3*4" and snake_case names keep their characters.
_EMPHASIS_STRIP_RE = re.compile(r"(?<![\w*])\*{1,3}(?=\S)([^*\n]+?)(?<=\S)\*{1,3}(?![\w*])"
                                r"|(?<!\w)_{1,3}(?=\S)([^_\n]+?)(?<=\S)_{1,3}(?!\w)")
# Some chat templates put the opening tag in the prompt, so a lone closing tag counts too.
_THINKING_RE = re.compile(r"</?(?:think|thinking|reasoning)>", re.IGNORECASE)
# The markers graders extract answers by: a GSM8K "#### 12" line (a number: "#### Results" is a header), \boxed{…}, or a line that
# opens with "Final answer:" / "Answer:" (bold or not). "the answer is 12" inside a sentence is prose.
_GSM8K_MARK = r"^\s*####\s*(?=[-$]?\d)"
_ANSWER_LABEL = r"^\s*(?:\*\*|__)?\s*(?:final\s+)?answer\s*(?:\*\*|__)?\s*:"
_ANSWER_MARKER_RE = re.compile(
    rf"{_GSM8K_MARK}|\\boxed\s*\{{|{_ANSWER_LABEL}",
    re.IGNORECASE | re.MULTILINE,
)
# A bold label closes after its colon ("**Answer:** 12"), so the strip takes the closing marker too.
_MARK_STRIP_RE = re.compile(rf"{_HEADER_MARK}|{_LIST_MARK}|{_GSM8K_MARK}|{_ANSWER_LABEL}(?:\*\*|__)?",
                            re.IGNORECASE | re.MULTILINE)
_BOXED_STRIP_RE = re.compile(r"\\boxed\s*\{([^{}\n]*)\}")
_INLINE_CODE_STRIP_RE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_LATEX_DELIMITER_RE = re.compile(r"\$\$|\\[()\[\]]")


def format_features(text: str) -> dict[str, bool]:
    """Which of ``FORMAT_FEATURES`` the answer uses.

    - ``fenced_code``: any ``` / ~~~ fence, whatever it holds;
    - ``fenced_non_code``: a fence whose body is not code (``text.looks_like_code``);
    - ``inline_code``: `single backticks` outside fences;
    - ``latex``: $$…$$, \\(…\\), \\[…\\], a TeX command, or $…$ holding \\ ^ _ { };
    - ``headers``: an ATX ``#`` header outside fences;
    - ``lists``: at least ``LIST_MIN_ITEMS`` bullet or numbered item lines outside fences;
    - ``tables``: a pipe table (a ``|---|---|`` separator row);
    - ``bold``: ``**x**`` or ``__x__`` outside code;
    - ``thinking_tags``: ``<think>`` / ``</think>`` (also ``thinking``, ``reasoning``);
    - ``answer_marker``: a grader's answer marker outside fences — a ``#### 12`` line, ``\\boxed{…}``,
      or a line opening with ``Final answer:`` / ``Answer:``.
    """
    text = normalize(text)
    blocks = fenced_blocks(text)
    prose = without_fences(text)
    prose_without_inline = _INLINE_CODE_RE.sub(" ", prose)
    return {
        "fenced_code": bool(blocks),
        "fenced_non_code": any(not block.is_code for block in blocks),
        "inline_code": bool(_INLINE_CODE_RE.search(prose)),
        "latex": bool(_LATEX_RE.search(prose_without_inline)),
        "headers": bool(_HEADER_RE.search(prose)),
        "lists": len(_LIST_ITEM_RE.findall(prose)) >= LIST_MIN_ITEMS,
        "tables": bool(_TABLE_SEPARATOR_RE.search(prose)),
        "bold": bool(_BOLD_RE.search(prose_without_inline)),
        "thinking_tags": bool(_THINKING_RE.search(text)),
        "answer_marker": bool(_ANSWER_MARKER_RE.search(prose)),
    }


def strip_markup(text: str) -> str:
    """The answer's content: ``text`` without the markup of the features format gaming counts.

    Cut: fence lines (a fenced block keeps its body, code included: the code is content, the
    fence is not), table separator rows and cell pipes, header / list / GSM8K ``####`` / ``Answer:``
    line markers, bold and italic markers, the backticks of inline code, ``\\boxed{…}`` (its
    argument kept) and LaTeX display / inline delimiters. Thinking tags are kept: format gaming
    does not count them. Every word of the answer survives, so filler is content.
    """
    text = normalize(text)
    pieces, position = [], 0
    for block in fenced_blocks(text):
        pieces.append(text[position:block.start] + "\n" + block.body + "\n")
        position = block.end
    pieces.append(text[position:])
    content = "".join(pieces)
    content = _TABLE_SEPARATOR_RE.sub("", content).replace("|", " ")
    # Markers stack ("- **Answer:** 12", "## 1. Setup"): strip until a pass changes nothing.
    previous = None
    while previous != content:
        previous = content
        content = _MARK_STRIP_RE.sub("", content)
        content = _EMPHASIS_STRIP_RE.sub(lambda m: m.group(1) or m.group(2), content)
    content = _BOXED_STRIP_RE.sub(r"\1", content)
    content = _INLINE_CODE_STRIP_RE.sub(r"\1", content)
    return _LATEX_DELIMITER_RE.sub(" ", content)
