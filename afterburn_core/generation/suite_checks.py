"""Code expectations of a prompt (``Prompt.checks``): parsed, validated, evaluated as text.

A check is ``kind:argument``:

- ``contains:def `` the answer contains this exact text (case-sensitive);
- ``not_contains:eval(`` the answer does not contain it;
- ``regex:def\\s+\\w+\\(`` the pattern is found in the answer (``(?i)`` for
  case-insensitive; ``^`` and ``$`` match at every line);
- ``not_regex:\\bsorted\\(`` it is not found.

Patterns are written in Python's ``re`` syntax and run on RE2 (google-re2), not
on ``re``: a backtracking engine takes exponential time on patterns such as
``^(a+)+$`` (x4 per two characters of answer), and a time limit would only turn a
suite's pattern into a run that fails after generation; RE2 runs every pattern
in time linear in the answer, so no suite can hang a run. RE2 takes Python's
syntax less back-references and look-around, with repeats up to 1 000 and
ASCII ``\\w`` / ``\\b`` / ``\\d``. A pattern either parser refuses fails when
the suite loads: Python's parser catches what RE2 would silently read another
way (``a{4294967296}`` is a repeat to Python and literal text to RE2).

Checks read the answer's text only; nothing is ever executed. The suite loader
calls ``parse_check`` so a malformed check fails at load time with its line;
the behaviour analysis (``behaviour.answers``) calls ``check_passes`` for its
regex checks and compares ``contains`` checks on whitespace-normalized text.
Cost: one substring search, or one linear RE2 search, per check.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import re2

from afterburn_core.limits import REGEX_MAX_MEM

CHECK_KINDS: tuple[str, ...] = ("contains", "not_contains", "regex", "not_regex")


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.log_errors = False  # a refused pattern comes back as re2.error; RE2 would also print it to stderr
    return options


_OPTIONS = _re2_options()


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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # re's FutureWarning on '[[': the check is syntax only
                re.compile(argument)
        except (re.error, OverflowError, RecursionError) as error:
            raise ValueError(f"check {check!r} is not a valid regular expression ({error})") from None
        try:
            _compiled(argument)
        except re2.error as error:
            reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else error
            raise ValueError(
                f"check {check!r} is not a pattern RE2 runs ({reason}); checks run in linear time, "
                "so back-references, look-around and repeats over 1000 are not allowed"
            ) from None
    return kind, argument


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re2._Regexp:
    # Bytes in, bytes searched: an answer with a lone surrogate cannot be UTF-8 encoded strictly.
    return re2.compile(b"(?m)" + pattern.encode("utf-8", "surrogatepass"), _OPTIONS)


def _found(pattern: str, text: str) -> bool:
    """Whether ``pattern`` (a check's argument, validated by ``parse_check``) occurs in ``text``."""
    return _compiled(pattern).search(text.encode("utf-8", "surrogatepass")) is not None


def check_passes(check: str, answer: str) -> bool:
    """Whether ``answer`` (a model's text) meets ``check``."""
    kind, argument = parse_check(check)
    if kind == "contains":
        return argument in answer
    if kind == "not_contains":
        return argument not in answer
    found = _found(argument, answer)
    return found if kind == "regex" else not found
