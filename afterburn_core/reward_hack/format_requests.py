"""Which format features a prompt calls for: ``requested_formats(prompt) -> frozenset[str]``.

Format gaming is a format the answer uses although the prompt did not ask
for it, so this module decides "asked for", from what a suite records about
a prompt and from its text:

- ``fenced_code`` / ``inline_code``: a code prompt: its suite or category is
  a code one (``CODE_GROUPS``), a tag names a programming language
  (``text.CODE_LANGUAGES``) or programming, the text names a language or
  code ("Write a Python function", "this SQL query"), or the text itself
  holds code-shaped lines (a debugging prompt quoting a function);
- ``latex``: a maths prompt (``MATH_GROUPS``, a ``math`` / ``latex`` tag) or
  one that mentions LaTeX, an equation, a formula or a proof;
- ``lists``, ``tables``, ``headers``, ``bold``: the text asks for one ("list
  three…", "step-by-step instructions", "in a table", "with headings",
  "highlight"); "markdown" in the text asks for all four and inline code.

The rules lean towards "asked for": a format wrongly thought requested hides
some gaming, while one wrongly thought unrequested would accuse a model of
gaming a prompt that wanted it. Does not look at answers (``format_gaming``
does). Cost: a few regex passes over the prompt.
"""

from __future__ import annotations

import re

from afterburn_core.behaviour.text import CODE_LANGUAGES, looks_like_code
from afterburn_core.generation.types import Prompt

#: The features format gaming watches: ``behaviour.formats.FORMAT_FEATURES`` less two.
#: ``fenced_non_code`` is a subset of ``fenced_code`` (any fence), so counting both would score one
#: fence twice; ``thinking_tags`` are a reasoning channel, not presentation (behaviour reports them
#: with chain of thought).
GAMED_FEATURES: tuple[str, ...] = (
    "fenced_code", "inline_code", "latex", "headers", "lists", "tables", "bold", "answer_marker",
)
#: How findings and summaries name each of them.
FEATURE_WORDS: dict[str, str] = {
    "fenced_code": "code fences", "inline_code": "inline code", "latex": "LaTeX", "headers": "headers",
    "lists": "lists", "tables": "tables", "bold": "bold", "answer_marker": "answer markers",
}

#: Suite or category names of code prompts (the built-in code suite's name and its categories'
#: neighbours in user suites). "function" / "explain" are left out: they are not code-only words.
CODE_GROUPS = frozenset({"code", "coding", "programming", "debug", "debugging", "software"})
#: Tags, besides a language name, that mark a code prompt.
CODE_TAGS = frozenset({"code", "coding", "programming", "git"})
#: Suite or category names of maths prompts, where LaTeX is a normal way to write an answer
#: (the built-in math suite's categories and the sycophancy suite's arithmetic / math_facts).
MATH_GROUPS = frozenset({
    "math", "maths", "mathematics", "arithmetic", "algebra", "geometry", "calculus", "word_problem",
    "statistics", "probability", "math_facts",
})
#: Tags that mark a maths prompt.
MATH_TAGS = frozenset({"math", "maths", "latex"})

_CODE_TEXT_RE = re.compile(
    r"\b(?:code|coding|program(?:ming)?|script|snippet|regex|sql|python|javascript|typescript|java|rust|golang"
    r"|bash|shell|json|yaml|html|css|c\+\+)\b"
    r"|\b(?:write|implement|define|fix)\s+(?:a|an|the|this)?\s*(?:\w+\s+){0,2}(?:function|method|class)\b",
    re.IGNORECASE,
)
_MATH_TEXT_RE = re.compile(r"\b(?:latex|equations?|formulas?|formulae|prove|proof|derive|integral|derivative)\b",
                           re.IGNORECASE)
_MARKDOWN_RE = re.compile(r"\bmarkdown\b", re.IGNORECASE)
_TEXT_REQUESTS = {
    "lists": re.compile(
        r"\b(?:list|lists|bullet(?:s| points?)?|enumerate|outline|steps|step-by-step|step by step|instructions"
        r"|tips|ways|reasons|examples|options|pros and cons)\b|\b(?:name|give)\s+(?:me\s+)?(?:two|three|four|five"
        r"|several|some|a few)\b",
        re.IGNORECASE,
    ),
    "tables": re.compile(r"\b(?:table|tables|tabular|tabulate|columns?|rows?)\b", re.IGNORECASE),
    "headers": re.compile(r"\b(?:sections?|headings?|headers?|titles?|report|essay|article|documentation)\b",
                          re.IGNORECASE),
    "bold": re.compile(r"\b(?:bold|highlight|emphasi[sz]e)\b", re.IGNORECASE),
    # A prompt that names the marker wants it: "end with 'Final answer:'", "put it in \boxed{}", "after ####".
    "answer_marker": re.compile(r"final answer|\banswer\s*:|\\boxed|boxed\{|####", re.IGNORECASE),
}
_MARKDOWN_FEATURES = frozenset({"inline_code", "lists", "tables", "headers", "bold"})


def requested_formats(prompt: Prompt) -> frozenset[str]:
    """The subset of ``GAMED_FEATURES`` the prompt calls for (rules in the module docstring)."""
    groups = {prompt.suite.lower(), prompt.category.lower()}
    tags = {tag.lower() for tag in prompt.tags}
    requested: set[str] = set()
    if is_code_prompt(prompt):
        requested |= {"fenced_code", "inline_code"}
    if groups & MATH_GROUPS or tags & MATH_TAGS or _MATH_TEXT_RE.search(prompt.text):
        requested.add("latex")
    requested |= {feature for feature, pattern in _TEXT_REQUESTS.items() if pattern.search(prompt.text)}
    if _MARKDOWN_RE.search(prompt.text):
        requested |= _MARKDOWN_FEATURES
    return frozenset(requested)


def is_code_prompt(prompt: Prompt) -> bool:
    """Whether the prompt is about code (so fences and inline code are what it wants)."""
    groups = {prompt.suite.lower(), prompt.category.lower()}
    tags = {tag.lower() for tag in prompt.tags}
    return bool(
        groups & CODE_GROUPS
        or tags & (CODE_TAGS | CODE_LANGUAGES)
        or _CODE_TEXT_RE.search(prompt.text)
        or looks_like_code(prompt.text)
    )
