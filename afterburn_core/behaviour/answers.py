"""Final answers from messy outputs, and whether they are right.

``extract_answer(text, expected_type)`` pulls the final answer out of an
answer that may hold Markdown, fences, LaTeX, filler and working. Priority,
first hit wins (within a rule, the *last* occurrence):

1. ``\\boxed{…}``;
2. an explicit marker: "the answer is 12", "Answer: 12", "final answer = 12", "#### 12";
3. a bold bare number: ``**12**``, ``**12 apples**``;
4. (numbers) the result of the last equation, "= 12" (so "7 + 5 = 12" gives 12, not 5);
5. (numbers) the last number that is not negated or compared against
   ("16, not 19" gives 16; "82 is larger than 37" gives 82: ``_REJECTED_BEFORE``);
6. (numbers) a number word ("twelve"), only when the text holds no digits;
7. (text) the last prose line that is not a pleasantry ("I hope this helps!").

Numbers come back normalized ("1,234.50" -> "1234.5", "$12" -> "12"). The
answer is read from the prose: ``<think>`` blocks and code blocks are cut out,
prose fences are unwrapped.

``is_correct(prompt, text)`` compares against ``Prompt.expected_answer`` (a
number: numeric comparison within ``NUMERIC_ABS_TOL`` / ``NUMERIC_REL_TOL``;
"yes"/"no": the first yes/no word; other text: a case- and
whitespace-insensitive, word-bounded, non-negated mention) and evaluates
``Prompt.checks`` (``contains:…``, ``regex:…``) on the raw text. Code is never
executed. Returns None when the prompt has neither. Cost: a few regex passes.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from afterburn_core.behaviour.text import normalize, without_code
from afterburn_core.errors import BadInput
from afterburn_core.generation.suite_checks import CHECK_KINDS, check_passes
from afterburn_core.generation.types import Prompt

AnswerType = Literal["number", "text"]

#: Absolute tolerance for numeric answers: below any answer precision a suite asks for, above
#: float noise ("0.30000000000000004").
NUMERIC_ABS_TOL = 1e-6
#: Relative tolerance for numeric answers: a model writing 3.1416 for pi * 1 passes, 3.14 does not.
NUMERIC_REL_TOL = 1e-4
#: Characters before a number searched for a negation or a comparison ("not", "than").
NEGATION_WINDOW = 16

_NUM = r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?"  # an optional /denominator: 7/8 is one answer
_NUMBER_RE = re.compile(rf"(?<![\w.$/])(?P<num>{_NUM})(?![\w/]|\.\d)")
_BOXED_RE = re.compile(r"\\boxed\s*\{(?P<body>(?:[^{}]|\{[^{}]*\})*)\}")
_MARKER_RE = re.compile(
    r"(?:\b(?:the\s+)?(?:final\s+)?(?:answer|result)\b\s*(?:is|was|would be|will be|=|:)|^\s*#{4})"
    r"\s*[:=]?\s*(?:\*\*|__|\$|\\\(|`)*\s*(?P<body>[^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
_BOLD_NUMBER_RE = re.compile(rf"\*\*\s*(?P<num>{_NUM})\s*[A-Za-z%]*\s*\*\*")
_BOLD_RE = re.compile(r"\*\*(?P<body>[^*\n]+)\*\*")
_EQUALS_RE = re.compile(rf"(?:=|\u2248)\s*(?:\*\*)?\s*(?P<num>{_NUM})(?![\w]|\.\d)")
_REJECTED_BEFORE = re.compile(r"(?:\bnot|n't|\binstead of|\brather than|\bthan|\bnot equal to)\s*(?:\*\*)?\s*$", re.IGNORECASE)
_THINK_RE = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.IGNORECASE | re.DOTALL)
_PLEASANTRY_RE = re.compile(
    r"^(?:i hope (?:this|that) helps|hope (?:this|that) helps|let me know|feel free|happy to help|"
    r"great question|good question|sure|certainly|of course)\b",
    re.IGNORECASE,
)
_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_WORD_NUMBERS = {
    word: value for value, word in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
     "hundred": 100}
_WORD_NUMBER_RE = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)


def extract_answer(text: str, expected_type: AnswerType | None = None) -> str | None:
    """The final answer of ``text`` (rules in the module docstring); None when there is none.

    ``expected_type`` "number" returns only a number, "text" only a phrase;
    None tries numbers first, then text.
    """
    prose = _prose(text)
    if expected_type in (None, "number"):
        number = _extract_number(prose)
        if number is not None or expected_type == "number":
            return number
    return _extract_text(prose)


def parse_number(value: str) -> float | None:
    """``value`` as a float ("1,234", "$12", "-3.5", "3/4"), or None when it is not a number."""
    cleaned = normalize(value).strip().replace(",", "").replace("$", "").rstrip(".%")
    fraction = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", cleaned)
    if fraction and float(fraction.group(2)) != 0:
        return float(fraction.group(1)) / float(fraction.group(2))
    latex_fraction = re.fullmatch(r"-?\\d?frac\{(-?\d+(?:\.\d+)?)\}\{(\d+(?:\.\d+)?)\}", cleaned)
    if latex_fraction and float(latex_fraction.group(2)) != 0:
        sign = -1.0 if cleaned.startswith("-") else 1.0
        return sign * float(latex_fraction.group(1)) / float(latex_fraction.group(2))
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def numbers_equal(left: float, right: float) -> bool:
    """Equal within ``NUMERIC_ABS_TOL`` or ``NUMERIC_REL_TOL``."""
    return math.isclose(left, right, rel_tol=NUMERIC_REL_TOL, abs_tol=NUMERIC_ABS_TOL)


def is_correct(prompt: Prompt, text: str) -> bool | None:
    """Whether ``text`` answers ``prompt`` right; None when the prompt has nothing to check against."""
    if prompt.expected_answer is None and not prompt.checks:
        return None
    if not all(_check_passes(prompt, check, text) for check in prompt.checks):
        return False
    if prompt.expected_answer is None:
        return True
    return answer_matches(text, prompt.expected_answer)


def answer_matches(text: str, answer: str) -> bool:
    """Whether ``text`` gives ``answer`` as its answer (the comparison ``is_correct`` uses)."""
    expected_number = parse_number(answer)
    if expected_number is not None:
        found = extract_answer(text, "number")
        found_number = parse_number(found) if found is not None else None
        return found_number is not None and numbers_equal(found_number, expected_number)
    prose = _prose(text)
    wanted = " ".join(answer.lower().split())
    if wanted in ("yes", "no"):
        first = _YES_NO_RE.search(prose)
        return first is not None and first.group(1).lower() == wanted
    return mentions(prose, answer)


def mentions(text: str, phrase: str) -> bool:
    """Whether ``text`` names ``phrase`` (case/whitespace-insensitive, word-bounded, not negated)."""
    words = [re.escape(word) for word in phrase.split()]
    if not words:
        return False
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)
    flat = normalize(text)
    return any(not _REJECTED_BEFORE.search(flat[max(0, m.start() - NEGATION_WINDOW):m.start()])
               for m in pattern.finditer(flat))


def _prose(text: str) -> str:
    return without_code(_THINK_RE.sub(" ", normalize(text)))


def _normalize_number(raw: str) -> str:
    value = parse_number(raw)
    if value is None:
        return raw.strip()
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _first_number_in(fragment: str) -> str | None:
    whole = parse_number(fragment)
    if whole is not None:
        return _normalize_number(fragment)
    fraction = re.search(r"-?\\d?frac\{-?\d+(?:\.\d+)?\}\{\d+(?:\.\d+)?\}", fragment)
    if fraction:
        return _normalize_number(fraction.group(0))
    match = _NUMBER_RE.search(fragment)
    return _normalize_number(match.group("num")) if match else None


def _accepted(prose: str, start: int) -> bool:
    return not _REJECTED_BEFORE.search(prose[max(0, start - NEGATION_WINDOW):start])


def _extract_number(prose: str) -> str | None:
    boxed = _BOXED_RE.findall(prose)
    if boxed:
        found = _first_number_in(boxed[-1])
        if found is not None:
            return found
    for marker in reversed(list(_MARKER_RE.finditer(prose))):
        found = _first_number_in(marker.group("body"))
        if found is not None:
            return found
    bold = _BOLD_NUMBER_RE.findall(prose)
    if bold:
        return _normalize_number(bold[-1])
    equations = [m for m in _EQUALS_RE.finditer(prose) if _accepted(prose, m.start("num"))]
    if equations:
        return _normalize_number(equations[-1].group("num"))
    numbers = [m for m in _NUMBER_RE.finditer(prose) if _accepted(prose, m.start())]
    if numbers:
        return _normalize_number(numbers[-1].group("num"))
    if _NUMBER_RE.search(prose):
        return None
    spelled = [m for m in _WORD_NUMBER_RE.finditer(prose) if _accepted(prose, m.start())]
    return str(_WORD_NUMBERS[spelled[-1].group(1).lower()]) if spelled else None


def _clean_phrase(phrase: str) -> str | None:
    phrase = re.sub(r"\*\*|__|`|\$|\\\(|\\\)", "", phrase).strip()
    phrase = re.sub(r"\s+", " ", phrase).strip(" .!?:;,\"'")
    return phrase or None


def _extract_text(prose: str) -> str | None:
    boxed = _BOXED_RE.findall(prose)
    if boxed:
        return _clean_phrase(re.sub(r"\\text\{([^{}]*)\}", r"\1", boxed[-1]))
    markers = list(_MARKER_RE.finditer(prose))
    if markers:
        return _clean_phrase(re.split(r"[.;\n]", markers[-1].group("body"))[0])
    bold = _BOLD_RE.findall(prose)
    if bold:
        return _clean_phrase(bold[-1])
    for line in reversed(prose.splitlines()):
        phrase = _clean_phrase(line)
        if phrase and not _PLEASANTRY_RE.match(phrase):
            return phrase
    return None


def _check_passes(prompt: Prompt, check: str, text: str) -> bool:
    kind, _, argument = check.partition(":")
    kind = kind.strip().lower()
    if kind in ("contains", "not_contains"):
        found = " ".join(argument.split()) in " ".join(text.split())
        return found if kind == "contains" else not found
    if kind in ("regex", "not_regex"):
        # suite_checks runs patterns on RE2 (linear time), so an untrusted pattern cannot hang the analysis.
        try:
            return check_passes(check, text)
        except ValueError as error:  # a pattern no suite loader validated (a prompt built in code)
            raise BadInput(f"prompt {prompt.prompt_id!r} of suite {prompt.suite!r}: {error}") from None
    raise BadInput(
        f"prompt {prompt.prompt_id!r} of suite {prompt.suite!r} has an unknown check {check!r}; "
        f"checks start with {', '.join(kind + ':' for kind in CHECK_KINDS)}"
    )
