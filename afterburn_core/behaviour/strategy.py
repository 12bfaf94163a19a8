"""How one answer reaches its result: ``classify_strategy(text)`` -> one of ``STRATEGIES``.

Rules, first match wins (most specific evidence first):

1. ``tool_use``: tool-call syntax: ``<tool_call>`` / ``<function_call>`` /
   ``<|python_tag|>`` tags, a JSON object with ``"name"`` and
   ``"arguments"`` (or ``"tool_calls"``), or a ReAct ``Action: … Action Input:``;
2. ``code_assisted``: a fenced block that is code (``text.looks_like_code``:
   a code language tag or code-shaped lines). A fence around prose ("Paris",
   "8 * 5 = 40.") is *not* code. A code prompt answered with code lands here
   too: compare strategies within a category, where that is constant;
3. ``step_by_step``: explicit labelled steps: at least ``STEP_MIN_COUNT``
   "Step N" labels at a line / sentence start, or as many numbered lines
   ("1. …") of which one computes (``=``) or reasons (a connective). "A big
   step forward" or "step by step" in prose is not a labelled step;
4. ``chain_of_thought``: free-form reasoning: at least ``COT_MIN_LINKS``
   reasoning links (``reasoning.cot_depth``: "First, … then …, so …"), or a
   non-empty ``<think>`` block. "Let me think about this carefully." alone
   announces reasoning without any and stays ``direct``;
5. ``direct``: everything else.

Does not judge whether the strategy suits the prompt or whether the answer
is right. Cost: a few regex passes, linear in the text.
"""

from __future__ import annotations

import re

from afterburn_core.behaviour.reasoning import cot_depth
from afterburn_core.behaviour.text import fenced_blocks, normalize, without_code

#: Every label ``classify_strategy`` returns, in display order.
STRATEGIES: tuple[str, ...] = ("direct", "step_by_step", "chain_of_thought", "code_assisted", "tool_use")

#: Labelled steps needed for ``step_by_step``: one "Step 1" is a heading, two make a procedure.
STEP_MIN_COUNT = 2
#: Reasoning links needed for ``chain_of_thought``. One link ("All X are Y, so Z") is a one-line
#: justification, which the demo base gives as its direct answer; two make a chain.
COT_MIN_LINKS = 2

_TOOL_RE = re.compile(
    r"<\s*/?\s*(?:tool_call|tool_use|function_call|functioncall|tool)\s*>|<\|python_tag\|>|<\|tool_call\|>"
    r"|\"tool_calls\"\s*:|\{\s*\"name\"\s*:\s*\"[^\"]+\"\s*,\s*\"(?:arguments|parameters)\"\s*:"
    r"|^\s*Action\s*:\s*\S.*\n\s*Action Input\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_STEP_WORDS = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_STEP_LABEL_RE = re.compile(
    rf"(?:^|(?<=[.!?:])\s)[ \t]*(?:[#*_>]+[ \t]*)?step[ \t]+{_STEP_WORDS}[ \t]*(?:[*_]+[ \t]*)?[:.)\-\u2013]", re.IGNORECASE | re.MULTILINE
)
_NUMBERED_LINE_RE = re.compile(r"^[ \t]*\d{1,2}[.)][ \t]+(?P<item>\S.*)$", re.MULTILINE)
_THINK_BLOCK_RE = re.compile(r"<(think|thinking|reasoning)>\s*(?P<body>.*?)\s*(?:</\1>|\Z)", re.IGNORECASE | re.DOTALL)


def classify_strategy(text: str) -> str:
    """The strategy label of one answer (rules in the module docstring)."""
    text = normalize(text)
    if _TOOL_RE.search(text):
        return "tool_use"
    if any(block.is_code for block in fenced_blocks(text)):
        return "code_assisted"
    prose = without_code(text)
    if _has_labelled_steps(prose):
        return "step_by_step"
    think = _THINK_BLOCK_RE.search(prose)
    if (think and think.group("body").strip()) or cot_depth(prose) >= COT_MIN_LINKS:
        return "chain_of_thought"
    return "direct"


def _has_labelled_steps(prose: str) -> bool:
    if len(_STEP_LABEL_RE.findall(prose)) >= STEP_MIN_COUNT:
        return True
    items = [match.group("item") for match in _NUMBERED_LINE_RE.finditer(prose)]
    return len(items) >= STEP_MIN_COUNT and any("=" in item or cot_depth(item) > 0 for item in items)
