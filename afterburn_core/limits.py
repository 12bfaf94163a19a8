"""Every bound Afterburn puts on untrusted input, in one place, each with its reason.

Checkpoints, suite files, configs and model outputs come from strangers
(``docs/security.md`` is the threat model). Each input has a named bound here;
hitting one raises the caller's ``BadInput`` subclass with one line that names
the file, the limit and its value, and the CLI exits 2. The modules that read
the input import their bound from here so ``docs/security.md`` can list them
all from one file.

It owns the bounds and the small parsers that enforce structure-independent
ones (JSON nesting depth); it leaves to each reader what the input means.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

#: Deepest nesting of arrays / objects in any JSON we parse (safetensors headers, config.json,
#: shard indexes, JSONL suite lines, stored run configs). Real files nest 3-6 deep (a
#: transformers config with rope_scaling inside text_config); CPython's parser recurses per
#: level and raises RecursionError near 1000, so 64 leaves ample room and fails cleanly first.
MAX_JSON_DEPTH = 64


class JsonTooDeep(ValueError):
    """A JSON text nests deeper than ``MAX_JSON_DEPTH``; raised before the parser recurses."""


def json_depth_problem(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``text`` nests too deep to parse, or ``None`` when it is within ``limit``.

    One linear scan that skips string contents (and their escapes), so a ``[`` inside a
    string does not count. It does not validate the JSON; the parser does that after.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return f"nests deeper than {limit} levels"
        elif char in "]}":
            depth -= 1
    return None


def load_json(text: str | bytes, limit: int = MAX_JSON_DEPTH, **options: Callable[..., Any]) -> Any:
    """``json.loads`` with a nesting bound: raises ``JsonTooDeep`` (a ``ValueError``) past ``limit``.

    ``options`` are passed to ``json.loads`` (``object_pairs_hook``, ``parse_float``, …).
    """
    problem = json_depth_problem(text, limit)
    if problem is not None:
        raise JsonTooDeep(problem)
    return json.loads(text, **options)
