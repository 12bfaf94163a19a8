"""Prompt suites: the five built-ins and user files, loaded into validated, hashed ``Suite`` records.

``load_suite(name_or_path)`` takes a built-in name (``BUILTIN_SUITES``) or a
path to a ``.yaml`` / ``.yml`` / ``.jsonl`` file; ``load_suites(names)`` loads
several (none = ``DEFAULT_SUITES``, all five built-ins). A suite's
``content_hash`` is the sha256 of the canonical JSON of its name, version and
normalized prompts: editing, adding or reordering prompts changes it, reordering
keys or reformatting the file does not. It enters the cache key of the
generations, so a changed suite is regenerated rather than served stale.

File formats (the built-ins in ``suites/*.yaml`` are examples of the first):

- YAML mapping: ``name``, ``version``, ``description``, ``template`` (how a
  sycophancy probe's user asserts an answer, with ``{question}`` and
  ``{answer}``), ``prompts:`` (each ``id``, ``text``, ``category``, optional
  ``expected_answer``, ``tags``, ``checks``) and/or ``probes:`` (each ``id``,
  ``question``, ``correct``, ``wrong``, ``category``, optional ``template``,
  ``tags``; expanded to ``<id>-neutral``, ``<id>-wrong``, ``<id>-right``);
- YAML list: the prompts alone; the suite is named after the file, version 1;
- JSONL: one prompt object per line (the prompt keys above, plus an optional
  ``suite`` name that every line must agree on; default: the file's stem), version 1.

YAML is parsed by the bounded, safe loader of ``afterburn_core.yaml_input``
(nesting, alias expansion and integer size bounded; plain types only) and each
JSONL line with the nesting bound of ``limits.load_json``. Every problem is one
``BadPromptSuite`` sentence naming the file, the line, what is wrong and the
fix; it quotes keys, never a value that failed a check (a file typed as a suite
may be anything: a secrets file, a data dump). Does not generate or score
anything. Cost: one bounded read and parse per file, milliseconds for the built-ins.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from afterburn_core.errors import BadPromptSuite
from afterburn_core.limits import MAX_INT_CHARS, JsonTooDeep, load_json, quoted
from afterburn_core.generation.suite_schema import (
    DEFAULT_PROBE_TEMPLATE,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS_PER_SUITE,
    MAX_SUITE_FILE_BYTES,
    PROMPT_KEYS,
    SUITE_KEYS,
    SuiteProblem,
    check_prompts,
    check_suite_name,
    check_template,
    check_version,
    prompt_from_record,
    prompts_from_probe,
    text_field,
    type_name,
    unknown_key_problem,
)
from afterburn_core.generation.types import Prompt, Suite
from afterburn_core.serde import to_jsonable
from afterburn_core.yaml_input import (
    MarkedDict,
    MarkedFloat,
    MarkedInt,
    MarkedList,
    describe_yaml_error,
    load_marked,
)

__all__ = [
    "BUILTIN_DIR", "BUILTIN_SUITES", "DEFAULT_SUITES", "MAX_PROMPTS_PER_SUITE", "MAX_PROMPT_CHARS",
    "MAX_SUITE_FILE_BYTES", "SUITE_FILE_SUFFIXES", "content_hash", "load_suite", "load_suites",
    "suites_cache_key",
]

BUILTIN_DIR: Path = Path(__file__).resolve().parent / "suites"
BUILTIN_SUITES: tuple[str, ...] = ("math", "code", "reasoning", "safety", "borderline", "sycophancy")
#: What a run uses when no suite is named: every built-in, so each behaviour
#: analysis (accuracy, code format, refusals, over-refusal, sycophancy) has its prompts.
DEFAULT_SUITES: tuple[str, ...] = BUILTIN_SUITES
SUITE_FILE_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".jsonl")
#: Bumped when the hashing below changes, so old cache keys become misses.
HASH_FORMAT = 1
_UTF8_BOM = b"\xef\xbb\xbf"


def content_hash(name: str, version: int, prompts: tuple[Prompt, ...]) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces) of name, version and prompts."""
    payload = {
        "hash_format": HASH_FORMAT, "name": name, "version": version,
        "prompts": [to_jsonable(prompt) for prompt in prompts],
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def suites_cache_key(suites: tuple[Suite, ...]) -> list[dict[str, Any]]:
    """What of the suites enters a cache key: name, version and content hash of each, in order."""
    return [{"name": s.name, "version": s.version, "content_hash": s.content_hash} for s in suites]


def load_suites(names: tuple[str, ...]) -> tuple[Suite, ...]:
    """Load each named suite (empty: ``DEFAULT_SUITES``); the same entry twice is loaded once.

    Two different files that give the same suite name are an error: results are
    grouped by suite name, so they would mix.
    """
    loaded: dict[str, Suite] = {}
    for name_or_path in dict.fromkeys(names or DEFAULT_SUITES):
        suite = load_suite(name_or_path)
        if suite.name in loaded:
            raise BadPromptSuite(
                f"{suite.source}: suite name {suite.name!r} is already used by {loaded[suite.name].source}; "
                "rename one (its 'name:' key, 'suite' field or file name)"
            )
        loaded[suite.name] = suite
    return tuple(loaded.values())


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a suite file by path (``.yaml``, ``.yml`` or ``.jsonl``)."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise BadPromptSuite(f"suite {quoted(name_or_path)}: give a built-in name ({', '.join(BUILTIN_SUITES)}) or a file path")
    if name_or_path in BUILTIN_SUITES:
        return _load_file(BUILTIN_DIR / f"{name_or_path}.yaml", source=f"builtin:{name_or_path}")
    path = Path(name_or_path).expanduser()
    if not path.exists() and path.suffix.lower() not in SUITE_FILE_SUFFIXES and len(path.parts) == 1:
        close = difflib.get_close_matches(name_or_path, BUILTIN_SUITES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BadPromptSuite(
            f"unknown suite {quoted(name_or_path)}: not a built-in ({', '.join(BUILTIN_SUITES)}) and no such file; "
            f"{hint}a suite file ends in .yaml, .yml or .jsonl"
        )
    return _load_file(path.absolute(), source=str(path.absolute()))


def _load_file(path: Path, source: str) -> Suite:
    shown = source if source.startswith("builtin:") else str(path)
    text = _read_text(path, shown)
    try:
        if path.suffix.lower() == ".jsonl":
            name, version, description, located = _parse_jsonl(text, default_name=_stem_name(path))
        else:
            name, version, description, located = _parse_yaml(text, default_name=_stem_name(path))
        prompts = check_prompts(located)
    except SuiteProblem as problem:
        where = f" line {problem.line}" if problem.line is not None else ""
        raise BadPromptSuite(f"{shown}{where}: {problem.message}") from None
    return Suite(name=name, version=version, description=description, source=source,
                 content_hash=content_hash(name, version, prompts), prompts=prompts)


def _read_text(path: Path, shown: str) -> str:
    """The file as text, or one clear sentence for a missing, oversized, binary or non-file path."""
    if path.is_dir():
        raise BadPromptSuite(f"{shown}: is a folder, not a suite file; name a .yaml, .yml or .jsonl file inside it")
    if not path.exists():
        raise BadPromptSuite(f"{shown}: no such suite file; check the path (built-ins: {', '.join(BUILTIN_SUITES)})")
    if not path.is_file():  # a FIFO or device would block or never end
        raise BadPromptSuite(f"{shown}: is not a regular file; save the suite as a .yaml, .yml or .jsonl file")
    if path.suffix.lower() not in SUITE_FILE_SUFFIXES:
        raise BadPromptSuite(
            f"{shown}: a suite file must end in .yaml, .yml or .jsonl, not {path.suffix or 'nothing'!r}; "
            "rename it if it holds YAML or one JSON object per line"
        )
    try:
        size = path.stat().st_size
        if size > MAX_SUITE_FILE_BYTES:
            raise BadPromptSuite(
                f"{shown}: is {size / 1e6:.1f} MB; the limit is {MAX_SUITE_FILE_BYTES / 1e6:.0f} MB "
                f"(at most {MAX_PROMPTS_PER_SUITE} prompts), split it into several suites"
            )
        with path.open("rb") as file:
            data = file.read(MAX_SUITE_FILE_BYTES + 1)  # the file may grow after stat
        if len(data) > MAX_SUITE_FILE_BYTES:
            raise BadPromptSuite(f"{shown}: is over {MAX_SUITE_FILE_BYTES / 1e6:.0f} MB; split it into several suites")
    except OSError as error:
        raise BadPromptSuite(f"{shown}: cannot read it ({error.strerror or error.__class__.__name__})") from None
    data = data.removeprefix(_UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BadPromptSuite(
            f"{shown} line {line}: is not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise BadPromptSuite(f"{shown}: the file is empty; add at least one prompt")
    return text


def _stem_name(path: Path) -> str:
    """A suite name from a file name: ``My Prompts.jsonl`` -> ``My-Prompts``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-._")[:64] or "suite"


def _key_lines(record: MarkedDict) -> Any:
    return lambda key: record.key_lines.get(key, record.line)


def _parse_yaml(text: str, default_name: str) -> tuple[str, int, str, list[tuple[Prompt, int]]]:
    try:
        document = load_marked(text)
    except yaml.YAMLError as error:
        raise SuiteProblem(*describe_yaml_error(error)) from None
    if document is None:
        raise SuiteProblem(None, "the file holds no YAML data (only comments?); add prompts")
    if isinstance(document, MarkedList):
        return default_name, 1, "", _yaml_prompts(document, default_name, "the file")
    if not isinstance(document, MarkedDict):
        raise SuiteProblem(1, (
            f"expected a mapping with 'prompts:' (or a list of prompts), got {type_name(document)}; "
            "see the built-in suites for the format"))
    key_line = _key_lines(document)
    unknown_key_problem(list(document), SUITE_KEYS, "the suite", key_line)
    name = check_suite_name(document.get("name", default_name), key_line("name"))
    version = check_version(document.get("version", 1), key_line("version"))
    description = text_field(document, "description", key_line, required=False, limit=MAX_PROMPT_CHARS,
                             what="the suite") or ""
    template = DEFAULT_PROBE_TEMPLATE
    if document.get("template") is not None:
        template = check_template(document["template"], key_line("template"))
    if document.get("prompts") is None and document.get("probes") is None:
        raise SuiteProblem(document.line, "the suite has no 'prompts:' or 'probes:' list; add one")
    located = _yaml_prompts(document.get("prompts"), name, "'prompts'", key_line("prompts"))
    located += _yaml_probes(document.get("probes"), name, template, key_line("probes"))
    return name, version, description, located


def _yaml_list(items: Any, what: str, line: int) -> MarkedList:
    if items is None:
        return MarkedList()
    if not isinstance(items, MarkedList):
        raise SuiteProblem(line, f"{what} must be a list of '- id: ...' items, got {type_name(items)}")
    if len(items) > MAX_PROMPTS_PER_SUITE:
        raise SuiteProblem(items.line, f"{what} has {len(items)} items; the limit is {MAX_PROMPTS_PER_SUITE} prompts per suite")
    return items


def _items(items: MarkedList, what: str, kind: str) -> list[tuple[MarkedDict, int]]:
    records = []
    for index, (item, line) in enumerate(zip(items, items.item_lines), start=1):
        if not isinstance(item, MarkedDict):
            raise SuiteProblem(line, (
                f"item {index} of {what} is {type_name(item)}, not a mapping; each {kind} is a mapping "
                f"like '- id: ...' with its keys indented below"))
        records.append((item, line))
    return records


def _yaml_prompts(items: Any, suite: str, what: str, line: int = 1) -> list[tuple[Prompt, int]]:
    records = _items(_yaml_list(items, what, line), what, "prompt")
    return [(prompt_from_record(record, suite, at, _key_lines(record)), at) for record, at in records]


def _yaml_probes(items: Any, suite: str, template: str, line: int) -> list[tuple[Prompt, int]]:
    located: list[tuple[Prompt, int]] = []
    for record, at in _items(_yaml_list(items, "'probes'", line), "'probes'", "probe"):
        located += [(prompt, at) for prompt in prompts_from_probe(record, suite, at, _key_lines(record), template)]
    return located


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise ValueError(f"key {quoted(key)} appears twice in the object; keep one")
        record[key] = value
    return record


def _json_float(raw: str) -> float:
    value = MarkedFloat(float(raw))
    value.raw = raw  # keep "1.50" as written for an expected answer
    return value


def _json_int(raw: str) -> int:
    if len(raw) > MAX_INT_CHARS:
        raise ValueError(f"an integer of {len(raw)} characters; the limit is {MAX_INT_CHARS}, quote it if it is text")
    value = MarkedInt(raw)
    value.raw = raw
    return value


def _parse_jsonl(text: str, default_name: str) -> tuple[str, int, str, list[tuple[Prompt, int]]]:
    suite_name: str | None = None
    suite_line = 0
    raw: list[tuple[Mapping[str, Any], int]] = []
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            continue  # blank lines (a trailing newline, a separator) carry nothing
        if len(raw) >= MAX_PROMPTS_PER_SUITE:
            raise SuiteProblem(number, f"more than {MAX_PROMPTS_PER_SUITE} prompts; split the suite into several files")
        try:
            record = load_json(line_text, object_pairs_hook=_no_duplicate_keys, parse_float=_json_float,
                               parse_int=_json_int, parse_constant=_refuse_constant)
        except JsonTooDeep as error:
            raise SuiteProblem(number, f"the line {error}; a prompt is one flat JSON object") from None
        except ValueError as error:
            detail = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            column = f" at column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
            raise SuiteProblem(number, f"not valid JSON ({detail}{column}); each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise SuiteProblem(number, (
                f"expected a JSON object like {{\"id\": ..., \"text\": ..., \"category\": ...}}, "
                f"got {type(record).__name__}"))
        unknown_key_problem(list(record), PROMPT_KEYS + ("suite",), "a prompt", lambda _key, n=number: n)
        if "suite" in record:
            name = check_suite_name(record.pop("suite"), number)
            if suite_name is not None and name != suite_name:
                raise SuiteProblem(number, (
                    f"'suite' is {name!r} but line {suite_line} says {suite_name!r}; "
                    "one file holds one suite, make them agree"))
            suite_name, suite_line = name, number
        raw.append((record, number))
    name = suite_name or check_suite_name(default_name, None)
    located = [(prompt_from_record(record, name, number, lambda _key, n=number: n), number) for record, number in raw]
    return name, 1, "", located


def _refuse_constant(name: str) -> float:
    # NaN / Infinity are not JSON; Python's parser accepts them unless told not to.
    raise ValueError(f"{name} is not a JSON value")

