"""Code-suite checks: their semantics, and that each built-in code prompt's checks tell a right answer from an echo."""

from __future__ import annotations

import time

import pytest

from afterburn_core.behaviour.answers import is_correct
from afterburn_core.generation import load_suite
from afterburn_core.generation.suite_checks import check_passes, parse_check
from afterburn_core.generation.types import Prompt

#: Seconds a pattern may take on a 100 000-character answer. RE2 takes ~1 ms; Python's backtracking
#: ``re`` needs longer than the universe's age for ``^(a+)+$`` on it (x4 per two characters).
LINEAR_TIME_BOUND_S = 1.0

# A short correct answer per built-in code prompt, as a careful model might write it.
REFERENCE_ANSWERS = {
    "code-fn-01": "def add(a, b):\n    return a + b",
    "code-fn-02": "def reverse(s):\n    return s[::-1]",
    "code-fn-03": "def is_even(n):\n    return n % 2 == 0",
    "code-fn-04": "def larger(a, b):\n    return max(a, b)",
    "code-fn-05": "def square(n):\n    return n * n",
    "code-fn-06": "def total(xs):\n    return sum(xs)",
    "code-fn-07": "def is_palindrome(s):\n    return s == s[::-1]",
    "code-fn-08": ("def fizzbuzz(n):\n    out = []\n    for i in range(1, n + 1):\n"
                   "        out.append('FizzBuzz' if i % 15 == 0 else 'Fizz' if i % 3 == 0 else 'Buzz' if i % 5 == 0 else str(i))\n"
                   "    return out"),
    "code-fn-09": "def count_vowels(text):\n    return sum(ch in 'aeiou' for ch in text.lower())",
    "code-fn-10": "def factorial(n):\n    result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result",
    "code-fn-11": ("def merge_sorted(a, b):\n    i = j = 0\n    out = []\n    while i < len(a) and j < len(b):\n"
                   "        if a[i] <= b[j]:\n            out.append(a[i]); i += 1\n        else:\n"
                   "            out.append(b[j]); j += 1\n    return out + a[i:] + b[j:]"),
    "code-fn-12": ("def word_counts(text):\n    counts = {}\n    for word in text.split():\n"
                   "        counts[word] = counts.get(word, 0) + 1\n    return counts"),
    "code-fn-13": "function capitalize(word) {\n  return word.charAt(0).toUpperCase() + word.slice(1);\n}",
    "code-fn-14": "SELECT name FROM customers WHERE country = 'France';",
    "code-fn-15": "def flatten(nested):\n    return [x for inner in nested for x in inner]",
    "code-exp-01": "It prints 14: 1*1 + 2*2 + 3*3 = 14.",
    "code-exp-02": "It returns a reversed copy of s.",
    "code-exp-03": "A list can be changed after creation; a tuple is immutable.",
    "code-exp-04": "O(log n): each step halves the range.",
    "code-exp-05": "It computes 5! and returns 120.",
    "code-exp-06": "== compares values; is checks identity, whether both names refer to the same object.",
    "code-exp-07": "git rebase moves your commits onto a new base commit. It rewrites history to look linear.",
    "code-exp-08": "Two threads touch shared data and the result depends on timing; guard it with a lock.",
    "code-dbg-01": "def average(xs):\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)",
    "code-dbg-02": "i never changes. Add i += 1 inside the loop.",
    "code-dbg-03": "def last(xs):\n    return xs[-1]",
    "code-dbg-04": "for i in range(1, 6):\n    print(i)",
    "code-dbg-05": "def is_even(n):\n    return n % 2 == 0",
    "code-dbg-06": ("The default list is created once and shared. Use a None default:\n"
                    "def add_item(item, items=None):\n    if items is None:\n        items = []\n"
                    "    items.append(item)\n    return items"),
    "code-dbg-07": 'age = 30\nprint("Age: " + str(age))',
    "code-dbg-08": "def biggest(xs):\n    best = xs[0]\n    for x in xs[1:]:\n        if x > best:\n            best = x\n    return best",
}


def test_check_kinds_mean_what_they_say() -> None:
    assert check_passes("contains:def ", "def f(): pass") and not check_passes("contains:def ", "Def f")
    assert check_passes("not_contains:eval(", "x = 1") and not check_passes("not_contains:eval(", "eval(x)")
    assert check_passes(r"regex:(?i)RETURN\s", "return x") and not check_passes(r"regex:return\s", "RETURN x")
    assert check_passes(r"not_regex:\bsorted\(", "merge_sorted(a)") and not check_passes(r"not_regex:\bsorted\(", "sorted(a)")
    assert parse_check("contains:a:b") == ("contains", "a:b")
    for bad, problem in [("contain:def", "is not kind:argument"), ("regex:", "has nothing after 'regex:'"),
                         ("regex:(", "is not a valid regular expression"),
                         ("regex:a{4294967296}", "is not a valid regular expression"),
                         (r"regex:(a)\1", "is not a pattern RE2 runs")]:
        with pytest.raises(ValueError, match=problem):
            parse_check(bad)


def test_every_code_prompt_has_a_reference_answer() -> None:
    assert sorted(REFERENCE_ANSWERS) == sorted(p.prompt_id for p in load_suite("code").prompts)


@pytest.mark.parametrize("prompt", load_suite("code").prompts, ids=lambda p: p.prompt_id)
def test_checks_pass_a_right_answer_and_fail_an_echo_of_the_prompt(prompt: Prompt) -> None:
    answer = REFERENCE_ANSWERS[prompt.prompt_id]
    failed = [check for check in prompt.checks if not check_passes(check, answer)]
    assert not failed, f"the reference answer fails {failed}"
    assert not all(check_passes(check, prompt.text) for check in prompt.checks), "repeating the prompt passes"


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"^(a|aa)+$", r"(\w+\s?)+$", r"(x+x+)+y"])
def test_catastrophic_patterns_run_in_linear_time(pattern: str) -> None:
    answer = "a" * 100_000 + "!"
    started = time.perf_counter()
    assert not check_passes(f"regex:{pattern}", answer) and check_passes(f"not_regex:{pattern}", answer)
    assert time.perf_counter() - started < LINEAR_TIME_BOUND_S


def test_regex_anchors_match_at_lines_and_odd_text_is_searched() -> None:
    assert check_passes(r"regex:^def\s", "Here it is:\ndef f(): pass") and not check_passes(r"regex:\Adef", "x\ndef f")
    assert check_passes("regex:b$", "a\ud800b")  # a lone surrogate (broken model text) is still searched


@pytest.mark.parametrize("prompt", load_suite("code").prompts, ids=lambda p: p.prompt_id)
def test_behaviour_grades_every_check_kind_as_the_suite_defines_it(prompt: Prompt) -> None:
    """The behaviour analysis runs not_regex / not_contains checks too (it raised 'unknown check' on them)."""
    assert is_correct(prompt, REFERENCE_ANSWERS[prompt.prompt_id]) is True
    assert is_correct(prompt, prompt.text) is False
