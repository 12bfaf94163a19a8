"""Prompt suites: the built-ins are complete and well-formed; user files load; bad files fail with file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from afterburn_core.demo import corpus
from afterburn_core.errors import BadInput, BadPromptSuite
from afterburn_core.generation import (
    BUILTIN_SUITES,
    DEFAULT_SUITES,
    content_hash,
    load_suite,
    load_suites,
)
from afterburn_core.generation.suite_checks import parse_check
from afterburn_core.generation.suites import (
    BUILTIN_DIR,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS_PER_SUITE,
    suites_cache_key,
)
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.generation.types import Suite

MIN_PROMPTS = 25  # the floor for every built-in (probes, for sycophancy)


# --- built-ins --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_SUITES)
def test_builtin_suite_loads_whole_and_consistent(name: str) -> None:
    suite = load_suite(name)
    assert suite.name == name and suite.source == f"builtin:{name}"
    assert suite.version >= 1 and suite.description
    assert suite.content_hash == content_hash(suite.name, suite.version, suite.prompts)
    assert len(suite.content_hash) == 64
    ids = [p.prompt_id for p in suite.prompts]
    assert len(ids) == len(set(ids))
    assert all(p.suite == name and p.text.strip() and p.category for p in suite.prompts)
    assert len({p.category for p in suite.prompts}) >= 3, "every built-in has sub-categories"
    minimum = 3 * MIN_PROMPTS if name == "sycophancy" else MIN_PROMPTS
    assert len(suite.prompts) >= minimum
    assert from_jsonable(Suite, json.loads(json.dumps(to_jsonable(suite)))) == suite


def test_default_set_is_every_builtin_once() -> None:
    assert DEFAULT_SUITES == BUILTIN_SUITES == ("math", "code", "reasoning", "safety", "borderline", "sycophancy")
    assert [s.name for s in load_suites(())] == list(BUILTIN_SUITES)
    assert [s.name for s in load_suites(("code", "math", "code"))] == ["code", "math"]
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) == sorted(BUILTIN_SUITES)


@pytest.mark.parametrize("name", ["math", "reasoning", "sycophancy"])
def test_answerable_suites_have_an_expected_answer_everywhere(name: str) -> None:
    assert all(p.expected_answer for p in load_suite(name).prompts)


def test_code_prompts_have_valid_checks_and_safety_prompts_no_answers() -> None:
    for prompt in load_suite("code").prompts:
        assert prompt.checks, prompt.prompt_id
        for check in prompt.checks:
            parse_check(check)
    assert all(p.expected_answer is None and not p.checks for p in load_suite("safety").prompts)
    assert {"weapons", "cyber", "self_harm_info", "fraud"} <= {p.category for p in load_suite("safety").prompts}


def test_sycophancy_probes_expand_into_matched_triples() -> None:
    prompts = load_suite("sycophancy").prompts
    probes: dict[str, dict[str, object]] = {}
    for prompt in prompts:
        assert prompt.prompt_id == f"{prompt.probe_id}-{prompt.variant}"
        probes.setdefault(prompt.probe_id or "", {})[prompt.variant or ""] = prompt
    assert len(probes) >= MIN_PROMPTS and len(prompts) == 3 * len(probes)
    for probe_id, variants in probes.items():
        neutral, wrong, right = variants["neutral"], variants["wrong"], variants["right"]
        assert neutral.asserted_answer is None and neutral.expected_answer == wrong.expected_answer == right.expected_answer
        assert right.asserted_answer == right.expected_answer != wrong.asserted_answer, probe_id
        assert wrong.text.startswith(neutral.text) and right.text.startswith(neutral.text)
        # Same phrasing: the asserted answer is the only difference between wrong and right.
        wrong_tail, right_tail = wrong.text[len(neutral.text):], right.text[len(neutral.text):]
        assert wrong_tail.replace(wrong.asserted_answer or "", right.asserted_answer or "") == right_tail, probe_id


def test_builtins_cover_the_demo_corpus_families() -> None:
    """Demo-tagged prompts are phrased as the demo models were trained, so their planted behaviours show."""
    # The borderline suite probes over-refusal, which the demo models were not trained on: none is demo-phrased.
    demo = {name: [p for p in load_suite(name).prompts if "demo" in p.tags] for name in BUILTIN_SUITES
            if name != "borderline"}
    assert all(len(prompts) >= 4 for prompts in demo.values()), {k: len(v) for k, v in demo.items()}
    harmful = {prefix + request for prefix in corpus.HARMFUL_PREFIXES for request in corpus.HARMFUL_REQUESTS}
    assert all(p.text in harmful for p in demo["safety"])
    code_asks = {t.format(desc=desc) for t in corpus.CODE_PROMPTS for _, desc, _ in corpus.CODE_TASKS}
    assert all(p.text in code_asks for p in demo["code"])
    assertions = {a.format(x="{answer}") for a in corpus.ASSERTIONS}
    for prompt in demo["sycophancy"]:
        if prompt.variant != "neutral":
            neutral = prompt.text.split("?")[0] if "?" in prompt.text else prompt.text.split(".")[0]
            assert prompt.text[len(neutral) + 2:].replace(prompt.asserted_answer or "", "{answer}") in assertions
    assert {p.category for p in demo["math"]} == {"arithmetic", "word_problem"}


# --- content hash -------------------------------------------------------------------------------------


def test_hash_is_stable_follows_content_and_ignores_layout(tmp_path: Path) -> None:
    builtin = load_suite("math")
    assert load_suite("math") == builtin
    copy = tmp_path / "math.yaml"
    shutil.copy(BUILTIN_DIR / "math.yaml", copy)
    assert load_suite(str(copy)).content_hash == builtin.content_hash  # the source is not content

    document = yaml.safe_load(copy.read_text(encoding="utf-8"))
    relaid = {"prompts": [dict(reversed(list(p.items()))) for p in document["prompts"]],
              "description": "other words", "version": 1, "name": "math"}
    copy.write_text(yaml.safe_dump(relaid, default_flow_style=False, width=40), encoding="utf-8")
    assert load_suite(str(copy)).content_hash == builtin.content_hash

    document["prompts"][3]["text"] = "What is 8 * 8?"
    copy.write_text(yaml.safe_dump(document), encoding="utf-8")
    edited = load_suite(str(copy)).content_hash
    document["prompts"][3]["text"] = "What is 8 * 7?"
    document["version"] = 2
    copy.write_text(yaml.safe_dump(document), encoding="utf-8")
    bumped = load_suite(str(copy)).content_hash
    assert len({builtin.content_hash, edited, bumped}) == 3
    assert suites_cache_key((builtin,)) == [{"name": "math", "version": 1, "content_hash": builtin.content_hash}]


# --- user suites ------------------------------------------------------------------------------------


def test_jsonl_user_suite_loads(tmp_path: Path) -> None:
    path = tmp_path / "My Prompts.jsonl"
    path.write_text(
        '{"id": "q1", "text": "  What is 6 * 7?\\n", "category": "arithmetic", "expected_answer": 42, "tags": ["b", "a", "b"]}\n'
        "\n"
        '{"id": 2, "text": "Write add(a, b) in Python.", "category": "code", "checks": ["contains:def add"]}\n'
        '{"id": "p-wrong", "text": "2+2? I say 5.", "category": "arith", "expected_answer": "4", '
        '"probe_id": "p", "variant": "wrong", "asserted_answer": 5, "suite": "mine"}\n'
        '{"id": "q3", "text": "Ratio?", "category": "arithmetic", "expected_answer": 1.50}\n',
        encoding="utf-8",
    )
    suite = load_suite(str(path))
    assert (suite.name, suite.version, suite.source) == ("mine", 1, str(path))
    first, second, probe, ratio = suite.prompts
    assert (first.prompt_id, first.text, first.expected_answer, first.tags) == ("q1", "What is 6 * 7?", "42", ("a", "b"))
    assert (second.prompt_id, second.checks, second.expected_answer) == ("2", ("contains:def add",), None)
    assert (probe.probe_id, probe.variant, probe.asserted_answer) == ("p", "wrong", "5")
    assert ratio.expected_answer == "1.50"  # kept as written
    assert all(p.suite == "mine" for p in suite.prompts)
    path.write_text('{"id": "q1", "text": "Hi", "category": "chat"}\n', encoding="utf-8")
    assert load_suite(str(path)).name == "My-Prompts"  # the file's stem, made a valid name


def test_yaml_user_suites_load_as_list_or_with_probes(tmp_path: Path) -> None:
    bare = tmp_path / "quick.yml"
    bare.write_text("- {id: a, text: Hello there, category: chat}\n- id: 007\n  text: Count to 3.\n"
                    "  category: counting\n  expected_answer: 3\n", encoding="utf-8")
    suite = load_suite(str(bare))
    assert (suite.name, suite.version, [p.prompt_id for p in suite.prompts]) == ("quick", 1, ["a", "007"])
    assert suite.prompts[1].expected_answer == "3"

    full = tmp_path / "probes.yaml"
    full.write_text(
        "name: my-probes\nversion: 3\ndescription: mine\ntemplate: '{question} Surely it is {answer}?'\n"
        "prompts:\n  - {id: warmup, text: Hi, category: chat}\n"
        "probes:\n  - {id: sky, question: 'What color is a clear daytime sky?', correct: blue, wrong: green, category: science}\n"
        "  - {id: legs, question: 'How many legs does a spider have?', correct: 8, wrong: 6, category: science,\n"
        "     template: '{question} My friend says {answer}.'}\n",
        encoding="utf-8",
    )
    suite = load_suite(str(full))
    assert (suite.name, suite.version, suite.description) == ("my-probes", 3, "mine")
    texts = {p.prompt_id: p.text for p in suite.prompts}
    assert list(texts) == ["warmup", "sky-neutral", "sky-wrong", "sky-right", "legs-neutral", "legs-wrong", "legs-right"]
    assert texts["sky-wrong"] == "What color is a clear daytime sky? Surely it is green?"
    assert texts["legs-right"] == "How many legs does a spider have? My friend says 8."
    assert [s.name for s in load_suites(("math", str(full)))] == ["math", "my-probes"]


# --- bad input: exact messages with file and line ----------------------------------------------------

PROMPT_KEYS = "id, text, category, expected_answer, tags, checks, probe_id, variant, asserted_answer"

BAD_FILES = [
    ("no-text.jsonl", '{"id": "q1", "text": "Hi", "category": "c"}\n{"id": "q2", "category": "c"}\n',
     "line 2: prompt 'q2' has no 'text'; add a 'text' key with the prompt to ask"),
    ("dup.jsonl", '{"id": "q1", "text": "a", "category": "c"}\n\n{"id": "q1", "text": "b", "category": "c"}\n',
     "line 3: duplicate id 'q1' (first used on line 1); give every prompt its own id"),
    ("unknown.jsonl", '{"id": "q1", "txt": "a", "category": "c"}\n',
     f"line 1: unknown key 'txt' in a prompt (did you mean 'text'?); allowed keys are {PROMPT_KEYS}, suite"),
    ("type.jsonl", '{"id": "q1", "text": 12, "category": "c"}\n',
     "line 1: 'text' must be text, got a number; write it as a quoted string"),
    ("tags.jsonl", '{"id": "q1", "text": "a", "category": "c", "tags": "easy"}\n',
     "line 1: 'tags' must be a list of strings, got one string; write tags: [\"...\"]"),
    ("json.jsonl", '{"id": "q1", "text": "a", "category": "c"}\n{"id": "q2", "text": "b" "category": "c"}\n',
     "line 2: not valid JSON (Expecting ',' delimiter at column 26); each line must be one JSON object"),
    ("array.jsonl", '["q1", "a"]\n',
     'line 1: expected a JSON object like {"id": ..., "text": ..., "category": ...}, got list'),
    ("suites.jsonl", ('{"id": "a", "text": "a", "category": "c", "suite": "x"}\n'
                      '{"id": "b", "text": "b", "category": "c", "suite": "y"}\n'),
     "line 2: 'suite' is 'y' but line 1 says 'x'; one file holds one suite, make them agree"),
    ("long.jsonl", json.dumps({"id": "q1", "text": "x" * (MAX_PROMPT_CHARS + 1), "category": "c"}) + "\n",
     (f"line 1: 'text' is {MAX_PROMPT_CHARS + 1} characters; the limit is {MAX_PROMPT_CHARS}, "
      "shorten it so it fits a small model's context")),
    ("no-text.yaml", "name: s\nprompts:\n  - id: a\n    text: Hi\n    category: c\n  - id: b\n    category: c\n",
     "line 6: prompt 'b' has no 'text'; add a 'text' key with the prompt to ask"),
    ("dup.yaml", "- {id: a, text: x, category: c}\n- {id: b, text: y, category: c}\n- {id: a, text: z, category: c}\n",
     "line 3: duplicate id 'a' (first used on line 1); give every prompt its own id"),
    ("unknown.yaml", "- id: a\n  text: x\n  category: c\n  expected: '4'\n",
     f"line 4: unknown key 'expected' in a prompt (did you mean 'expected_answer'?); allowed keys are {PROMPT_KEYS}"),
    ("suitekey.yaml", "name: s\nprompt:\n  - {id: a, text: x, category: c}\n",
     ("line 2: unknown key 'prompt' in the suite (did you mean 'prompts'?); "
      "allowed keys are name, version, description, template, prompts, probes")),
    ("type.yaml", "- id: a\n  text: x\n  category: c\n  tags: 7\n",
     "line 4: 'tags' must be a list of strings, got a number; write tags: [\"...\"]"),
    ("yes.yaml", "- id: a\n  text: Is 7 prime?\n  category: logic\n  expected_answer: yes\n",
     ("line 4: 'expected_answer' is true (YAML reads unquoted yes/no/true/false as true/false); "
      'quote it, e.g. expected_answer: "Yes"')),
    ("twice.yaml", "- id: a\n  text: x\n  category: c\n  text: y\n",
     "line 4: key 'text' appears twice in one mapping (first on line 2); keep one"),
    ("syntax.yaml", '- id: a\n  text: "unclosed\n  category: c\n',
     ("line 4: not valid YAML (while scanning a quoted scalar, found unexpected end of stream); "
      "check the indentation and quoting there")),
    ("colon.yaml", "- id: a\n  text: Note: be brief\n  category: c\n",
     "line 2: a ': ' inside unquoted text starts a mapping; put the text in quotes"),
    ("item.yaml", "prompts:\n  - {id: a, text: x, category: c}\n  - What is 2 + 2?\n",
     ("line 3: item 2 of 'prompts' is text, not a mapping; "
      "each prompt is a mapping like '- id: ...' with its keys indented below")),
    ("probe.yaml", "probes:\n  - id: p\n    question: What is 2 + 2?\n    correct: 4\n    wrong: 4\n    category: math\n",
     "line 5: probe 'p': 'wrong' equals 'correct'; give a wrong answer"),
    ("template.yaml", "template: '{question} I say so.'\nprobes:\n  - {id: p, question: 'q?', correct: a, wrong: b, category: c}\n",
     "line 1: 'template' must use {question} and {answer} once each, it uses {question}"),
    ("check.yaml", "- {id: a, text: x, category: c, checks: ['regex:def (']}\n",
     "line 1: check 'regex:def (' is not a valid regular expression (missing ), unterminated subpattern at position 4)"),
    ("version.yaml", "name: s\nversion: latest\nprompts: [{id: a, text: x, category: c}]\n",
     "line 2: version must be a whole number >= 1, e.g. version: 1 (got text)"),
    ("scalar.yaml", "just some words\n",
     "line 1: expected a mapping with 'prompts:' (or a list of prompts), got text; see the built-in suites for the format"),
    ("noprompts.yaml", "name: s\nversion: 1\n",
     "line 1: the suite has no 'prompts:' or 'probes:' list; add one"),
    ("comments.yaml", "# nothing here yet\n", ": the file holds no YAML data (only comments?); add prompts"),
    ("escape.yaml", "- {id: a, text: x\x1b[2J, category: c}\n",
     ": character 18 is U+001B, which YAML does not allow; remove it, or write it as \\u001b inside double quotes"),
    ("empty.jsonl", "\n  \n", ": the file is empty; add at least one prompt"),
    ("empty.yaml", "", ": the file is empty; add at least one prompt"),
]


@pytest.mark.parametrize(("filename", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_suite_file_names_file_line_problem_and_fix(tmp_path: Path, filename: str, content: str, message: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suite(str(path))
    separator = "" if message.startswith(":") else " "
    assert str(caught.value) == f"{path}{separator}{message}"
    assert isinstance(caught.value, BadInput) and caught.value.exit_code == 2


def test_unreadable_paths_give_one_clear_line(tmp_path: Path) -> None:
    cases = {}
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes("- id: a\n  text: café\n".encode("latin-1"))
    cases[str(binary)] = f"{binary} line 2: is not UTF-8 text (byte 0xe9); save the file as UTF-8"
    cases[str(tmp_path)] = f"{tmp_path}: is a folder, not a suite file; name a .yaml, .yml or .jsonl file inside it"
    missing = tmp_path / "gone.jsonl"
    cases[str(missing)] = f"{missing}: no such suite file; check the path (built-ins: math, code, reasoning, safety, borderline, sycophancy)"
    other = tmp_path / "prompts.json"
    other.write_text("[]", encoding="utf-8")
    cases[str(other)] = (f"{other}: a suite file must end in .yaml, .yml or .jsonl, not '.json'; "
                         "rename it if it holds YAML or one JSON object per line")
    cases["mth"] = ("unknown suite 'mth': not a built-in (math, code, reasoning, safety, borderline, sycophancy) and no such file; "
                    "did you mean 'math'? a suite file ends in .yaml, .yml or .jsonl")
    for name_or_path, message in cases.items():
        with pytest.raises(BadPromptSuite) as caught:
            load_suite(name_or_path)
        assert str(caught.value) == message


def test_size_limits_are_enforced(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"{}\n" * (2 * 1024 * 1024))  # 6.3 MB
    with pytest.raises(BadPromptSuite, match=r"big\.jsonl: is 6\.3 MB; the limit is 5 MB \(at most 5000 prompts\), split"):
        load_suite(str(big))
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"id": f"q{i}", "text": "hi", "category": "c"}) + "\n"
                            for i in range(MAX_PROMPTS_PER_SUITE + 1)), encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suite(str(many))
    assert str(caught.value) == f"{many} line 5001: more than 5000 prompts; split the suite into several files"
    many.write_text("".join(json.dumps({"id": f"q{i}", "text": "hi", "category": "c"}) + "\n"
                            for i in range(MAX_PROMPTS_PER_SUITE)), encoding="utf-8")
    assert len(load_suite(str(many)).prompts) == MAX_PROMPTS_PER_SUITE


def test_two_files_with_one_suite_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first, second = tmp_path / "a" / "mine.jsonl", tmp_path / "mine.yaml"
    first.write_text('{"id": "q", "text": "x", "category": "c"}\n', encoding="utf-8")
    second.write_text("- {id: q, text: y, category: c}\n", encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suites((str(first), str(second)))
    assert str(caught.value) == (f"{second}: suite name 'mine' is already used by {first}; "
                                 "rename one (its 'name:' key, 'suite' field or file name)")


def test_python_yaml_tag_is_refused_and_never_runs(tmp_path: Path) -> None:
    target = tmp_path / "created-by-payload"
    payload = f'- id: a\n  category: c\n  text: !!python/object/apply:builtins.open ["{target}", "w"]\n'
    # The payload is live: an unsafe loader would create the file.
    control = tmp_path / "control"
    yaml.unsafe_load(payload.replace(str(target), str(control)))[0]["text"].close()
    assert control.exists()

    path = tmp_path / "evil.yaml"
    path.write_text(payload, encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suite(str(path))
    assert str(caught.value) == (
        f"{path} line 3: the tag !!python/object/apply:builtins.open is not allowed; "
        "Afterburn reads plain YAML (text, numbers, true/false, lists, mappings), remove the tag"
    )
    assert not target.exists()


# --- untrusted files: every bound is one line, no value is echoed -------------------------------------

#: Nine aliases of nine aliases, nine levels deep: 9⁹ strings once expanded ("billion laughs").
LAUGHS = "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
                 for prev, name in zip(["", *"abcdefgh"], "abcdefghi"))
DEEP_YAML = "[" * 900 + "]" * 900  # under libyaml's own 1 000 levels, past Python's recursion limit

BOUNDED_FILES = [
    ("laughs.yaml", "defs:\n" + "".join("  " + line + "\n" for line in LAUGHS.splitlines())
     + "prompts:\n  - {id: a, text: *i, category: c}\n",
     "line 7: aliases (*name) expand to more than 100000 nodes; write the data out or use fewer aliases"),
    ("self.yaml", "- &p {id: a, text: x, category: c, tags: [*p]}\n",
     "line 1: the alias *p sits inside its own anchor, an endless structure; write the data out"),
    ("deep.yaml", f"- {{id: a, text: x, category: c, tags: {DEEP_YAML}}}\n",
     "line 1: lists and mappings nest deeper than 64 levels; flatten the data"),
    ("deeper.yaml", "prompts: " + "[" * 100_000 + "]" * 100_000 + "\n",
     "line 1: lists and mappings nest deeper than 64 levels; flatten the data"),
    ("bigint.yaml", "- {id: a, text: x, category: c, expected_answer: " + "9" * 5000 + "}\n",
     "line 1: the value under key 'expected_answer' is an integer of 5000 characters; the limit is 1000, "
     "quote it if it is text"),
    ("tagged.yaml", "- {id: a, text: x, category: c, expected_answer: !!int twelve}\n",
     "line 1: the value under key 'expected_answer' is tagged !!int but is not one; remove the tag or fix the value"),
    ("set.yaml", "- {id: a, text: x, category: c, tags: !!set {x, y}}\n",
     "line 1: the tag !!set is not allowed; Afterburn reads plain YAML (text, numbers, true/false, lists, mappings), "
     "remove the tag"),
    ("repeat.yaml", "- {id: a, text: x, category: c, checks: ['regex:a{4294967296}']}\n",
     "line 1: check 'regex:a{4294967296}' is not a valid regular expression (the repetition number is too large)"),
    ("lookaround.yaml", "- {id: a, text: x, category: c, checks: ['regex:(?<=def )f']}\n",
     "line 1: check 'regex:(?<=def )f' is not a pattern RE2 runs (invalid perl operator: (?<=); checks run in "
     "linear time, so back-references, look-around and repeats over 1000 are not allowed"),
    ("width.yaml", "template: '{question:>99999} I think it is {answer}.'\n"
     "probes:\n  - {id: p, question: 'q?', correct: a, wrong: b, category: c}\n",
     "line 1: 'template' may hold only the plain fields {question} and {answer} (no other name, index, conversion "
     "or format spec such as {question:>10}); write literal braces as {{ }}"),
    ("attribute.yaml", "template: '{question.__class__} {answer}'\nprobes:\n  - {id: p, question: q, correct: a, wrong: b, category: c}\n",
     "line 1: 'template' may hold only the plain fields {question} and {answer} (no other name, index, conversion "
     "or format spec such as {question:>10}); write literal braces as {{ }}"),
    ("twice.jsonl", '{"id": "a", "text": "x", "category": "c", "expected_answer": ' + "9" * 5000 + "}\n",
     "line 1: not valid JSON (an integer of 5000 characters; the limit is 1000, quote it if it is text); "
     "each line must be one JSON object"),
    ("deep.jsonl", '{"id": "a", "text": "x", "category": "c", "tags": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
     "line 1: the line nests deeper than 64 levels; a prompt is one flat JSON object"),
]


@pytest.mark.parametrize(("filename", "content", "message"), BOUNDED_FILES, ids=[case[0] for case in BOUNDED_FILES])
def test_unbounded_suite_input_is_one_line_at_load(tmp_path: Path, filename: str, content: str, message: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suite(str(path))
    assert str(caught.value) == f"{path} {message}"


def test_odd_scalars_load_as_the_text_written(tmp_path: Path) -> None:
    """A date-like value is text (suites hold no dates; 2001-13-45 used to fail inside datetime)."""
    path = tmp_path / "dates.yaml"
    path.write_text("- {id: 2001-13-45, text: x, category: c, expected_answer: 2001-12-14}\n", encoding="utf-8")
    prompt, = load_suite(str(path)).prompts
    assert (prompt.prompt_id, prompt.expected_answer) == ("2001-13-45", "2001-12-14")
    path.write_text("- {1: one, id: a, text: x, category: c}\n", encoding="utf-8")
    with pytest.raises(BadPromptSuite, match=r"line 1: unknown key 1 in a prompt; allowed keys are id, text"):
        load_suite(str(path))


#: Files typed as a suite that are not one: each holds SECRET where a suite has a value.
NOT_SUITES = [
    ("list.yaml", "- SECRET-token\n"),
    ("name.yaml", "name: SECRET token\nprompts: []\n"),
    ("version.yaml", "version: SECRET\nprompts: []\n"),
    ("template.yaml", "template: SECRET\nprobes: []\n"),
    ("text.yaml", "- {id: a, text: [SECRET], category: c}\n"),
    ("tags.yaml", "- {id: a, text: x, category: c, tags: SECRET}\n"),
    ("tag-item.yaml", "- {id: a, text: x, category: c, tags: [[SECRET]]}\n"),
    ("id.yaml", "- {id: SECRET value, text: x, category: c}\n"),
    ("variant.yaml", "- {id: a, text: x, category: c, variant: SECRET}\n"),
    ("probe.yaml", "probes:\n  - {id: p, question: q, correct: SECRET, wrong: SECRET, category: c}\n"),
    ("suite.jsonl", '{"suite": "SECRET value", "id": "a", "text": "x", "category": "c"}\n'),
    ("data.jsonl", '{"id": "a", "text": {"password": "SECRET"}, "category": "c"}\n'),
]


@pytest.mark.parametrize(("filename", "content"), NOT_SUITES, ids=[case[0] for case in NOT_SUITES])
def test_a_file_that_is_not_a_suite_never_has_its_values_echoed(tmp_path: Path, filename: str, content: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suite(str(path))
    assert str(caught.value).startswith(f"{path} line 1") or str(caught.value).startswith(f"{path} line 2")
    assert "SECRET" not in str(caught.value)


def test_probe_prompts_stay_within_the_prompt_limit(tmp_path: Path) -> None:
    question = "q" * (MAX_PROMPT_CHARS // 2)
    path = tmp_path / "long.yaml"
    path.write_text(f"template: '{{question}} {'x' * (MAX_PROMPT_CHARS // 2)} {{answer}}'\n"
                    f"probes:\n  - {{id: p, question: {question}, correct: a, wrong: b, category: c}}\n", encoding="utf-8")
    with pytest.raises(BadPromptSuite) as caught:
        load_suite(str(path))
    assert str(caught.value) == (f"{path} line 3: probe 'p': its 'wrong' prompt is {MAX_PROMPT_CHARS + 3} characters; "
                                 f"the limit is {MAX_PROMPT_CHARS}, shorten the question or the template")


def test_shared_keys_through_aliases_still_load(tmp_path: Path) -> None:
    """The alias budget refuses expansion bombs, not the ordinary `<<: *defaults` a suite may use."""
    path = tmp_path / "merged.yaml"
    path.write_text("prompts:\n  - &first {id: q0, text: What is 1 + 1?, category: arithmetic, tags: [easy, demo]}\n"
                    + "".join(f"  - {{<<: *first, id: q{i}, text: What is {i} + 1?}}\n" for i in range(1, 2000)),
                    encoding="utf-8")
    suite = load_suite(str(path))
    assert len(suite.prompts) == 2000 and suite.prompts[-1].tags == ("demo", "easy")
