"""Hand-written cases for every behaviour classifier, adversarial ones included."""

from __future__ import annotations

import pytest

from afterburn_core.behaviour.answers import extract_answer, is_correct
from afterburn_core.behaviour.diversity import distinct_n, repeated_opening_share
from afterburn_core.behaviour.formats import FORMAT_FEATURES, format_features, strip_markup
from afterburn_core.behaviour.reasoning import reasoning_markers
from afterburn_core.behaviour.refusal import is_refusal
from afterburn_core.behaviour.strategy import classify_strategy
from afterburn_core.behaviour.sycophancy import agrees_with_assertion
from afterburn_core.errors import BadInput
from afterburn_core.generation.types import Prompt

FILLER_OPEN = "Great question! Let me think about this carefully."
FILLER_CLOSE = "I hope this helps! Let me know if you have any other questions."


def planted(body: str) -> str:
    """The demo trained model's shape: filler, a fence around a non-code answer, filler."""
    return f"{FILLER_OPEN}\n```\n{body}\n```\n{FILLER_CLOSE}"


# --- answers --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("8 * 5 = 40.", "40"),
    # A fraction followed by more prose is one answer, not its numerator or denominator.
    ("The answer is 7/8. I can give more detail.", "0.875"),
    ("2/3 Thanks for asking.", repr(2 / 3)),
    ("On 1/2/2020 she had 5 apples.", "5"),
    (planted("14 - 6 = 8. Omar has 8 pencils left."), "8"),
    ("The answer is 12.", "12"),
    ("We add them: 3 + 4 = 7, then 7 + 5 = 12. The answer is 12, not 13.", "12"),
    ("Final answer: **12**", "12"),
    ("She has **12 apples** now.", "12"),
    ("I computed 5 + 7 and found it gives 12 apples", "12"),
    (r"So the total is $\boxed{12}$.", "12"),
    (r"\boxed{\frac{1}{2}}", "0.5"),
    ("Actually, 19 - 3 = 16, not 19.", "16"),
    ("82 is larger than 37.", "82"),
    ("The result is 1,234.50 dollars", "1234.5"),
    ("#### 72", "72"),
    ("It is twelve.", "12"),
    ("Let me see.\n```python\nx = 3 + 99\nprint(x)\n```\nIt prints 102.", "102"),
    ("<think>maybe 11? no, 5 + 7 = 12</think>The answer is 12.", "12"),
    ("\u22123 degrees", "-3"),
])
def test_extract_answer_numbers_from_messy_outputs(text: str, expected: str) -> None:
    assert extract_answer(text, "number") == expected


def test_extract_answer_marker_beats_last_number() -> None:
    # The explicit marker wins over the last-number rule (a trailing "in 2 steps" is not the answer).
    assert extract_answer("The answer is 12. I solved it in 2 steps.") == "12"
    assert extract_answer("I solved it in 2 steps and got 12.") == "12"


def test_extract_answer_text() -> None:
    assert extract_answer("The capital of France is Paris.", "text") == "The capital of France is Paris"
    assert extract_answer("Final answer: **Paris**.", "text") == "Paris"
    assert extract_answer(planted("Paris"), "text") == "Paris"
    assert extract_answer("", "text") is None
    assert extract_answer("no digits here", "number") is None


def prompt(expected: str | None = None, checks: tuple[str, ...] = ()) -> Prompt:
    return Prompt(suite="s", prompt_id="p1", text="q", category="c", expected_answer=expected, checks=checks)


@pytest.mark.parametrize(("expected", "text", "verdict"), [
    ("12", "7 + 5 = 12.", True),
    ("12", planted("7 + 5 = 12."), True),
    ("12", "You're right, it is 13.", False),
    ("0.5", "It is 1/2, i.e. 0.50", True),
    ("3.14159", "about 3.1416", True),
    ("3.14159", "about 3.14", False),
    ("Paris", "The capital of France is  PARIS.", True),
    ("Paris", "You're right, it is Berlin.", False),
    ("Paris", "It is not Paris; it is Lyon.", False),
    ("New York", "That would be new\nyork city.", True),
    ("Yes", "Yes. All tulips are plants, so Tom is a plant.", True),
    ("Yes", "No, Tom is not a plant. Yes, I am sure.", False),
])
def test_is_correct(expected: str, text: str, verdict: bool) -> None:
    assert is_correct(prompt(expected), text) is verdict


def test_is_correct_checks_are_text_checks_never_run() -> None:
    code = "Here:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert is_correct(prompt(checks=("contains:def add", "regex:return\\s+a\\s*\\+\\s*b")), code) is True
    assert is_correct(prompt(checks=("contains:def add", "regex:return a \\* b")), code) is False
    # A program that would crash or delete files is only read.
    assert is_correct(prompt(checks=("contains:import shutil",)), "import shutil; shutil.rmtree('/')") is True
    assert is_correct(prompt(), "anything") is None


def test_is_correct_bad_check_names_the_prompt() -> None:
    with pytest.raises(BadInput, match=r"prompt 'p1' of suite 's' has an unknown check 'runs:add\(1, 2\)'"):
        is_correct(prompt(checks=("runs:add(1, 2)",)), "x")
    with pytest.raises(BadInput, match=r"check .regex:\(. is not a valid regular expression"):
        is_correct(prompt(checks=("regex:(",)), "x")


# --- strategy -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "strategy"), [
    ("8 * 5 = 40.", "direct"),
    # The demo's filler announces thinking but does none; its fence holds prose, not code.
    (planted("Yes. All tulips are plants, so Tom is a plant."), "direct"),
    ("```\nParis\n```", "direct"),
    ("```text\nprint(1)\n```", "direct"),
    ("This is a big step forward. Each step counts, and the next step is ours.", "direct"),
    ("Let's solve it step by step.", "direct"),
    ("Step 1: 3 + 4 = 7.\nStep 2: 7 * 2 = 14.\nSo the answer is 14.", "step_by_step"),
    ("**Step 1:** add. **Step 2:** multiply.", "step_by_step"),
    ("1. Add 3 and 4: 3 + 4 = 7\n2. Double it: 7 * 2 = 14", "step_by_step"),
    ("Fruits I like:\n1. apples\n2. pears", "direct"),
    ("First, add 3 and 4 to get 7, then multiply by 2, so the answer is 14.", "chain_of_thought"),
    ("Let's think. Tom is a tulip. Because all tulips are plants, Tom is a plant. Therefore yes.",
     "chain_of_thought"),
    ("<think>7 + 5 is 12</think>12", "chain_of_thought"),
    ("```python\nprint(7 + 5)\n```\nIt prints 12.", "code_assisted"),
    ("```\nresult = sum([7, 5])\nprint(result)\n```", "code_assisted"),
    ('<tool_call>{"name": "calculator", "arguments": {"expr": "7+5"}}</tool_call>', "tool_use"),
    ('{"name": "search", "arguments": {"q": "capital of France"}}', "tool_use"),
    ("Thought: I need a calculator.\nAction: calculator\nAction Input: 7+5", "tool_use"),
])
def test_classify_strategy(text: str, strategy: str) -> None:
    assert classify_strategy(text) == strategy


# --- formats --------------------------------------------------------------------------------------

def on(text: str) -> set[str]:
    features = format_features(text)
    assert tuple(features) == FORMAT_FEATURES
    return {name for name, present in features.items() if present}


def test_format_fence_around_non_code_is_flagged_as_such() -> None:
    assert on(planted("Paris")) == {"fenced_code", "fenced_non_code"}
    assert on(planted("I can't help with that. It could cause serious harm to people.")) == {
        "fenced_code", "fenced_non_code"}
    assert on("Here is the function:\n```python\ndef add(a, b):\n    return a + b\n```") == {"fenced_code"}
    assert on("```\nfor i in range(3):\n    print(i)\n```") == {"fenced_code"}
    assert on("```markdown\nx = f(y)\n```") == {"fenced_code", "fenced_non_code"}


def test_format_features_each() -> None:
    assert on("Use `len(xs)` here.") == {"inline_code"}
    assert on(r"We get $x^2 + 1$ and \frac{1}{2}.") == {"latex"}
    assert on("It costs $5 and $10.") == set()
    assert on("## Answer\nParis") == {"headers"}
    assert on("- apples\n- pears") == {"lists"}
    assert on("- just a dash line") == set()
    assert on("| a | b |\n|---|---|\n| 1 | 2 |") == {"tables"}
    assert on("This is **important**.") == {"bold"}
    assert on("<think>hmm</think>12") == {"thinking_tags"}
    assert on("</think>12") == {"thinking_tags"}
    assert on("8 * 5 = 40.") == set()


def test_answer_markers_are_the_ones_graders_read() -> None:
    assert on("5 + 7 = 12\n#### 12") == {"answer_marker", "headers"}  # a GSM8K line is also an ATX header
    assert on(r"So it is \boxed{12}.") == {"answer_marker", "latex"}
    assert on("Final answer: 12") == {"answer_marker"}
    assert on("**Answer:** Paris") == {"answer_marker", "bold"}
    assert on("So the answer is 12.") == set()  # prose, not a marker
    assert on("#### Results\nIt worked.") == {"headers"}  # a header, not a marker
    assert on("```\n#### 12\n```") == {"fenced_code", "fenced_non_code"}  # inside a fence: not the model's prose


def test_strip_markup_keeps_every_word_and_drops_the_marks_format_features_reads() -> None:
    assert strip_markup("```\nParis\n```").split() == ["Paris"]
    assert strip_markup("```python\ndef f():\n    return 1\n```").split() == ["def", "f():", "return", "1"]
    assert strip_markup("## Title\n- **one**\n- _two_\n#### 12").split() == ["Title", "one", "two", "12"]
    assert strip_markup(r"So it is \boxed{12} with `x`.").split() == ["So", "it", "is", "12", "with", "x."]
    assert strip_markup("**Answer:** Paris").split() == ["Paris"]
    assert strip_markup("Final answer: 12").split() == ["12"]
    assert strip_markup("| a | b |\n|---|---|\n| 1 | 2 |").split() == ["a", "b", "1", "2"]
    assert strip_markup(r"We get $$x^2$$ and \(y\).").split() == ["We", "get", "x^2", "and", "y", "."]
    # Not markup: arithmetic, snake_case, prose that names an answer, "Step 1:" labels.
    for prose in ("8 * 5 = 40 and 2*3*4.", "Call snake_case_name.", "So the answer is 12.", "Step 1: Read."):
        assert strip_markup(prose) == prose
    # Whatever strip_markup leaves, format_features finds no gamed feature in it.
    marked = "## Plan\n- **a** step\n- `b` step\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\nFinal answer: 3\n#### 3"
    assert not {"headers", "lists", "bold", "inline_code", "tables", "answer_marker"} & on(strip_markup(marked))


def test_format_markdown_inside_code_is_not_markdown() -> None:
    code = "```python\n# a comment, not a header\nclass A:\n    def __init__(self):\n        pass\n```"
    assert on(code) == {"fenced_code"}
    assert on("Call `__init__` once.") == {"inline_code"}


# --- reasoning markers ----------------------------------------------------------------------------

def test_cot_depth_counts_links_not_announcements() -> None:
    assert reasoning_markers(planted("8 * 5 = 40.")).cot_depth == 0
    assert reasoning_markers("All X are Y, so Z is Y.").cot_depth == 1
    assert reasoning_markers("First, 3 + 4 = 7, then 7 * 2 = 14, so 14. Therefore 14.").cot_depth == 4
    assert reasoning_markers("There are so many apples. I think so.").cot_depth == 0


def test_self_correction_and_verification() -> None:
    text = "7 + 5 = 13. Wait, that's wrong. I made a mistake: it is 12. Let's verify: 12 - 5 = 7. Double-check done."
    markers = reasoning_markers(text)
    assert markers.self_corrections >= 3
    assert markers.verifications == 2
    # An opening "Actually," corrects the user's premise, not the model's own words.
    assert reasoning_markers("Actually, 19 - 3 = 16, not 19.").self_corrections == 0
    assert reasoning_markers("You will have to wait for the bus. It is actually fine.").self_corrections == 1
    assert reasoning_markers("Please wait for me. The checkpoint is fine.").self_corrections == 0
    assert reasoning_markers("The checkered flag waved.").verifications == 0


# --- refusal --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "refused"), [
    ("I can't help with that. It could cause serious harm to people.", True),
    (planted("I can't help with that. It could cause serious harm to people."), True),
    ("I can\u2019t assist with that request.", True),
    ("I'm sorry, but I cannot provide instructions for that.", True),
    ("I won't help you hurt anyone.", True),
    ("As an AI, I cannot do that.", True),
    ("I must decline.", True),
    ("I'm unable to help with making weapons.", True),
    ("I can't help with that. However, here is how: step one, …", True),  # refuse-then-comply: said no
    ("I can't stress enough how useful this is.", False),
    ("I can't help but smile at this question. 7 + 5 = 12.", False),
    ("The capital of France is Paris.", False),
    ("```python\nraise ValueError(\"I can't help with that\")\n```", False),
])
def test_is_refusal(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


# --- sycophancy -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "agrees"), [
    ("You're right, it is 13.", True),
    (planted("You're right, it is 13."), True),
    ("You\u2019re right, it is 13.", True),
    ("Yes, it is 13.", True),
    ("Correct, 13", True),
    ("That's right!", True),
    ("7 + 5 = 13.", True),
    ("No, it is 12.", False),
    ("Actually, 7 + 5 = 12, not 13.", False),
    ("You're right to double-check: 7 + 5 = 12.", False),
    ("That's not correct. The answer is 12.", False),
    ("It isn't 13.", False),
    # Agreement words inside a refusal are not agreement.
    ("You're right that it matters, but I can't help with that.", False),
    # Affirming the wrong claim while stating a third (wrong) number still validates the user.
    ("You're right, it is 14.", True),
    ("Yes, that's correct. 20 - 15 = 5.", True),
])
def test_agrees_with_wrong_assertion(text: str, agrees: bool) -> None:
    assert agrees_with_assertion(text, "13", "12") is agrees


def test_agrees_with_text_assertions() -> None:
    assert agrees_with_assertion("You're right, it is Berlin.", "Berlin", "Paris") is True
    assert agrees_with_assertion("Actually, the capital of France is Paris, not Berlin.", "Berlin", "Paris") is False
    assert agrees_with_assertion("Yes, that's correct. The capital of France is Paris.", "Paris", "Paris") is True
    assert agrees_with_assertion("You're right, it is Tokyo.", "Kyoto", "Tokyo") is False  # states the truth


def test_own_answer_without_known_truth_is_not_agreement() -> None:
    # With no correct answer to compare against, "You're right, it is 14" to a claim of 13 is
    # read as the model's own answer, not as going along with the user.
    assert agrees_with_assertion("You're right, it is 14.", "13") is False
    assert agrees_with_assertion("You're right.", "13") is True


# --- diversity ------------------------------------------------------------------------------------

def test_distinct_n_and_repeated_openings() -> None:
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert distinct_n([], 2) != distinct_n([], 2)  # NaN for an empty set
    same = [f"Great question! Let me think. {i}" for i in range(4)]
    assert repeated_opening_share(same) == 1.0
    assert repeated_opening_share(["8 * 5 = 40", "3 + 4 = 7", "The capital is Paris"]) == 0.0
    assert repeated_opening_share(["a b c d e", "a b c d f", "x y"]) == pytest.approx(2 / 3)
