"""Code expectations of a prompt (``Prompt.checks``): parsed, validated, evaluated as text.

A check is ``kind:argument``:

- ``contains:def `` the answer contains this exact text (case-sensitive);
- ``not_contains:eval(`` the answer does not contain it;
- ``regex:def\\s+\\w+\\(`` Python ``re.search`` finds the pattern (``(?i)`` for case-insensitive);
- ``not_regex:\\bsorted\\(`` it finds no match.

Checks read the answer's text only; nothing is ever executed. The suite loader
calls ``parse_check`` so a malformed check fails at load time with its line;
the behaviour analysis calls ``check_passes``. Cost: one substring search or
regex search per check.
"""

from __future__ import annotations

import re
from functools import lru_cache

CHECK_KINDS: tuple[str, ...] = ("contains", "not_contains", "regex", "not_regex")


def parse_check(check: str) -> tuple[str, str]:
    """``(kind, argument)`` of a check, or ``ValueError`` with what is wrong and the fix."""
    kind, colon, argument = check.partition(":")
    if not colon or kind not in CHECK_KINDS:
        raise ValueError(
            f"check {check!r} is not kind:argument with a kind from {', '.join(CHECK_KINDS)} "
            "(e.g. 'contains:def ' or 'regex:return\\s')"
        )
    if not argument:
        raise ValueError(f"check {check!r} has nothing after '{kind}:'; say what the answer should hold")
    if kind in ("regex", "not_regex"):
        try:
            _compiled(argument)
        except re.error as error:
            raise ValueError(f"check {check!r} is not a valid regular expression ({error})") from None
    return kind, argument


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_passes(check: str, answer: str) -> bool:
    """Whether ``answer`` (a model's text) meets ``check``."""
    kind, argument = parse_check(check)
    if kind == "contains":
        return argument in answer
    if kind == "not_contains":
        return argument not in answer
    found = _compiled(argument).search(answer) is not None
    return found if kind == "regex" else not found
