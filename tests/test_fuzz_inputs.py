"""Fuzzing suite and settings files (issue 13): the built-in suites and a real settings file, mutated,
and generated documents full of aliases, deep nesting, odd scalars, odd keys and odd patterns, go
through ``load_suite`` and ``load_config_file``.

The property: only ``BadPromptSuite`` / ``ConfigError`` come out, each a single line that never
quotes a value planted in a field the loader must not echo; whatever loads is a valid ``Suite`` or
``AnalysisConfig`` that survives its JSON round trip; and each example ends within
``EXAMPLE_SECONDS``. Examples are derandomized (the same on every run, no example database) and few,
so the module runs in about 15 s here and well under 40 s on two slow CI cores.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afterburn_core.config import FIELD_NAMES, AnalysisConfig, load_config_file
from afterburn_core.errors import BadPromptSuite, ConfigError
from afterburn_core.generation import load_suite
from afterburn_core.generation.suite_schema import PROBE_KEYS, PROMPT_KEYS
from afterburn_core.generation.suites import BUILTIN_DIR, BUILTIN_SUITES
from afterburn_core.generation.types import Suite
from afterburn_core.serde import to_jsonable

#: Wall-clock seconds one example may take: the largest built-in suite loads in ~10 ms, a generated
#: document in ~1 ms, so 2 s only trips on a hang or a blow-up, not on a slow shared machine.
EXAMPLE_SECONDS = 2.0
#: Past this an example is stopped by an alarm, so a hang fails the test instead of stalling CI.
HANG_SECONDS = 10.0
FUZZ_SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,  # the explicit EXAMPLE_SECONDS bound below is steadier on shared cores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Planted only in fields whose value a message must never quote (text, answers, descriptions, …).
SECRET = "s3cr3t"

#: Scalars YAML and Python read in surprising ways: dates (valid and not), huge and odd integers,
#: special floats, explicit and unsafe tags, control characters, structure characters.
ODD_SCALARS = [
    "2001-13-45", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "9" * 5000, "0x" + "f" * 2000, "0x" + "f" * 900,
    "-0", "0o777", "1_000", "190:20:30", ".nan", "-.inf", "1e999", "~", "null", "yes", "No", "on",
    "!!int abc", "!!int ''", "!!float x", "!!bool maybe", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]",
    "!!timestamp x", "!!map x", "!!seq x", "!!str 12", "!!python/object/apply:os.system ['true']", "!foo x",
    "'\x00'", '"\\ud800"', '"\\e[2J"', "'\u202e'", "\t", "{", "}", "[", "]", ":", "- ", "? ", "&a x", "*undefined",
    "'" + "x" * 9000 + "'", "''", "' '", "|\n  block", ">-\n  folded", "<<: {a: 1}", "%YAML 1.1", "---", "...",
]
#: Checks and templates that an engine or str.format would choke on.
ODD_PATTERNS = [
    "regex:(a+)+$", "regex:^(a|aa)+$", "regex:a{4294967296}", "regex:a{1001}", "regex:x{1000}{1000}",
    "regex:(?<=a)b", "regex:(a)\\1", "regex:[", "regex:(?P<x>", "regex:" + "(" * 150 + ")" * 150, "regex:\\p{L}",
    "regex:(?i)", "regex:[[:alpha:]]", "regex:(?m)^x", "regex:\\Z", "not_regex:\\bsorted\\(", "contains:",
    "contains:def ", "not_contains:eval(", "regexp:x", ":", "",
]
ODD_TEMPLATES = [
    "'{question:>999999999} {answer}'", "'{question!r} {answer}'", "'{0} {answer}'", "'{question[0]} {answer}'",
    "'{question.__class__} {answer}'", "'{question} {answer} {question}'", "'{{ {question} {answer}'",
    "'{question:{answer}}'", "'}'", "'{question}'", "'{question} I think it is {answer}.'",
]
ODD_KEYS = ["1", "null", "true", "''", "'x' ", "'" + "k" * 500 + "'", "[a]", "{a: b}", "2001-01-01", "<<", "? x"]


def _bomb(levels: int, fanout: int) -> str:
    """A flow list whose anchors alias each other ``levels`` deep, ``fanout`` wide: fanout**levels nodes."""
    parts = [f"&l0 [{', '.join(['lol'] * fanout)}]"]
    parts += [f"&l{level} [{', '.join([f'*l{level - 1}'] * fanout)}]" for level in range(1, levels)]
    return f"[{', '.join(parts)}]"


def _deep(depth: int, mapping: bool) -> str:
    return ("{a: " * depth + "x" + "}" * depth) if mapping else ("[" * depth + "]" * depth)


#: Alias chains (most within the budget, some far past it) and nesting (most within the bound).
HAZARDS = st.builds(_bomb, st.integers(1, 10), st.integers(1, 12)) | st.builds(_deep, st.integers(1, 1500), st.booleans())


class Values:
    """Draws a document's value texts: mostly ``plain``, one in ten an odd scalar, and at most one
    hazard (alias chain or deep nesting) per document, so most documents get past the bounds to the schema."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw, self.drawn, self.hazard_at = draw, 0, draw(st.integers(0, 15))

    def __call__(self, plain: st.SearchStrategy[str]) -> str:
        self.drawn += 1
        if self.drawn == self.hazard_at:
            return self.draw(HAZARDS)
        odd = self.draw(st.integers(0, 9)) == 0
        return self.draw(st.sampled_from(ODD_SCALARS) if odd else plain)


WORDS = st.text(alphabet="abcdefgh xyz-_0123456789", min_size=1, max_size=12).map(lambda word: f"'{word}'")
SECRETS = st.just(f"'{SECRET} value'") | st.just(f"[{SECRET}]") | st.just(f"{{k: {SECRET}}}")


@st.composite
def yaml_suites(draw: st.DrawFn) -> str:
    """A suite in YAML: a header, prompts and probes whose keys and values may each be odd."""
    value = Values(draw)
    lines = []
    for key, values in (("name", st.sampled_from(["fuzz", "my.suite-2", "'two words'", "x" * 70])),
                        ("version", st.sampled_from(["1", "2", "0"])), ("description", SECRETS | WORDS),
                        ("template", st.sampled_from(ODD_TEMPLATES))):
        if draw(st.booleans()):
            lines.append(f"{key}: {value(values)}")

    def record(base: dict[str, str], keys: tuple[str, ...], secret_keys: set[str]) -> str:
        """A valid record (``base``) with some keys redrawn, odd, or (one in ten) one not in the schema."""
        fields = dict(base)
        for key in draw(st.lists(st.sampled_from(keys), max_size=4)):
            if key == "checks":
                plain = st.lists(st.sampled_from(ODD_PATTERNS).map(json.dumps), max_size=3).map(
                    lambda items: f"[{', '.join(items)}]")
            elif key == "template":
                plain = st.sampled_from(ODD_TEMPLATES)
            elif key in secret_keys:
                plain = SECRETS | WORDS
            else:
                plain = WORDS
            fields[key] = value(plain)
        if draw(st.integers(0, 9)) == 0:
            fields[draw(st.sampled_from(ODD_KEYS))] = value(WORDS)
        return "{" + ", ".join(f"{key}: {text}" for key, text in fields.items()) + "}"

    secret_prompt = {"text", "category", "expected_answer", "tags", "asserted_answer", "variant"}
    secret_probe = {"question", "correct", "wrong", "category", "tags"}
    prompts = [record({"id": f"p{n}", "text": "'What is 2 + 2?'", "category": "arithmetic"}, PROMPT_KEYS, secret_prompt)
               for n in range(draw(st.integers(0, 4)))]
    probes = [record({"id": f"s{n}", "question": "'Is 7 prime?'", "correct": "'yes'", "wrong": "'no'", "category": "logic"},
                     PROBE_KEYS, secret_probe) for n in range(draw(st.integers(0, 3)))]
    if prompts or draw(st.booleans()):
        lines += ["prompts:"] + [f"  - {item}" for item in prompts]
    if probes:
        lines += ["probes:"] + [f"  - {item}" for item in probes]
    return "\n".join(lines) + "\n"


ODD_JSON = st.one_of(
    st.sampled_from(["9" * 5000, "1e999", "-0", "NaN", "Infinity", '"\\ud800"', '"\\u0000"', "null", "true",
                     "[]", "{}", '{"a": 1, "a": 2}', f'"{SECRET}"', f'["{SECRET}"]', f'{{"k": "{SECRET}"}}']),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
)
JSON_VALUES = st.one_of(
    st.text(min_size=1, max_size=20).map(json.dumps), st.integers().map(str), st.floats(allow_nan=False).map(json.dumps),
    st.lists(st.text(min_size=1, max_size=8), max_size=3).map(json.dumps),
    st.sampled_from(ODD_PATTERNS).map(lambda check: f"[{json.dumps(check)}]"),
)


@st.composite
def jsonl_suites(draw: st.DrawFn) -> str:
    """A JSONL suite: lines of objects with prompt keys (and odd ones), odd values, odd lines between."""
    lines = []
    for number in range(draw(st.integers(1, 5))):
        keys = draw(st.lists(st.sampled_from(PROMPT_KEYS + ("suite", "", "x" * 300)), max_size=9))
        fields = {"id": f'"q{number}"', "text": '"What is 2 + 2?"', "category": '"arithmetic"'}
        for key in keys:
            fields[key] = draw(ODD_JSON if draw(st.integers(0, 9)) == 0 else JSON_VALUES)
        lines.append("{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in fields.items()) + "}")
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(st.sampled_from(["", "[1, 2]", "{", "null", "\x00", "{} {}", '"text"'])))
    return "\n".join(lines) + "\n"


@st.composite
def configs(draw: st.DrawFn) -> str:
    """A settings file: known and odd keys (possibly repeated), valid and odd values."""
    valid = {"method": "sft", "device": "cpu", "suites": "[math, code]", "max_new_tokens": "64", "batch_size": "2",
             "temperature": "0.5", "top_p": "0.9", "seed": "3", "spectrum_top_k": "8", "exact_spectra": "true",
             "trust_remote_code": "false", "reward_hack_weights": "{length_bias: 1, sycophancy: 0.5}"}
    value = Values(draw)
    keys = draw(st.lists(st.sampled_from(FIELD_NAMES + tuple(ODD_KEYS)), max_size=8))
    lines = [f"{key}: {value(st.just(valid.get(key, 'x')))}" for key in keys]
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw: st.DrawFn, original: str, snippets: list[str]) -> str:
    """``original`` with one to four edits: a snippet inserted, a span deleted or duplicated."""
    text = original
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 200)))
        edit = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if edit == "insert":
            text = text[:start] + draw(st.sampled_from(snippets)) + text[start:]
        elif edit == "delete":
            text = text[:start] + text[end:]
        else:
            text = text[:end] + text[start:end] + text[end:]
    return text


BUILTIN_TEXTS = {name: (BUILTIN_DIR / f"{name}.yaml").read_text(encoding="utf-8") for name in BUILTIN_SUITES}
YAML_SNIPPETS = ODD_SCALARS + ODD_TEMPLATES + [f" {_bomb(9, 9)}", _deep(900, False), "\n  - *x\n", " &x ",
                                               "\n<<: *x\n", "\n  text: a\n", "\nprompts:\n", "\t", "\n"]
CONFIG_TEXT = ("method: dpo\ndevice: cpu\nsuites: [math, code]\nmax_new_tokens: 64\ntemperature: 0.7\n"
               "seed: 3\nreward_hack_weights: {length_bias: 0.4, sycophancy: 0.1}\n")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-inputs")


@pytest.fixture(scope="module")
def jsonl_original() -> str:
    """The math suite as JSONL, written by a user's script: one prompt object per line."""
    return "".join(json.dumps({"id": prompt.prompt_id, "text": prompt.text, "category": prompt.category,
                               "expected_answer": prompt.expected_answer, "tags": list(prompt.tags)}) + "\n"
                   for prompt in load_suite("math").prompts)


@contextmanager
def _within(seconds: float) -> Iterator[None]:
    """Fail an example that runs past ``seconds``; an alarm at ``HANG_SECONDS`` breaks a hang."""

    def hung(_signal: int, _frame: Any) -> None:
        raise TimeoutError(f"an example ran past {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    started = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - started < seconds


def _one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message and len(message) < 2000, message[:300]
    assert SECRET not in message, message


def check_suite(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    with _within(EXAMPLE_SECONDS):
        try:
            suite = load_suite(str(path))
        except BadPromptSuite as error:
            _one_line(str(error))
            return
    assert isinstance(suite, Suite) and suite.prompts
    json.dumps(to_jsonable(suite), allow_nan=False)


def check_config(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    with _within(EXAMPLE_SECONDS):
        try:
            config = load_config_file(path)
        except ConfigError as error:
            _one_line(str(error))
            return
    assert AnalysisConfig.from_json(config.to_json()) == config


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_builtin_suites(scratch: Path, data: st.DataObject) -> None:
    original = BUILTIN_TEXTS[data.draw(st.sampled_from(BUILTIN_SUITES))]
    check_suite(scratch / "mutated.yaml", data.draw(mutated(original, YAML_SNIPPETS)))


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_jsonl_suite(scratch: Path, jsonl_original: str, data: st.DataObject) -> None:
    snippets = [", " + value for value in ['"id": "x"', '"tags": ' + "[" * 2000, '"x": 1', '"suite": "a b"']]
    snippets += ['"' + "9" * 5000 + '"', "9" * 5000, "\n", "{", "}", "\\u0000", "NaN", '"\\ud800"']
    check_suite(scratch / "mutated.jsonl", data.draw(mutated(jsonl_original, snippets)))


@FUZZ_SETTINGS
@given(text=yaml_suites())
def test_generated_yaml_suites(scratch: Path, text: str) -> None:
    check_suite(scratch / "generated.yaml", text)


@FUZZ_SETTINGS
@given(text=jsonl_suites())
def test_generated_jsonl_suites(scratch: Path, text: str) -> None:
    check_suite(scratch / "generated.jsonl", text)


@FUZZ_SETTINGS
@given(text=configs())
def test_generated_configs(scratch: Path, text: str) -> None:
    check_config(scratch / "generated.afterburn.yaml", text)


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_config(scratch: Path, data: st.DataObject) -> None:
    check_config(scratch / "mutated.afterburn.yaml", data.draw(mutated(CONFIG_TEXT, YAML_SNIPPETS)))


def test_the_generators_reach_valid_documents(scratch: Path) -> None:
    """The fuzz is not all refusals: the originals load, so mutations start from valid files."""
    jsonl = "".join(json.dumps({"id": f"q{i}", "text": "hi", "category": "c"}) + "\n" for i in range(3))
    check_suite(scratch / "valid.jsonl", jsonl)
    assert len(load_suite(str(scratch / "valid.jsonl")).prompts) == 3
    check_config(scratch / "valid.afterburn.yaml", CONFIG_TEXT)
    assert load_config_file(scratch / "valid.afterburn.yaml").method == "dpo"
