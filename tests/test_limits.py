"""The JSON nesting bound: counts only brackets outside strings, escapes included, and refuses before parsing."""

from __future__ import annotations

import json

import pytest

from afterburn_core.limits import MAX_JSON_DEPTH, JsonTooDeep, json_depth_problem, load_json


def _nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 7, MAX_JSON_DEPTH])
def test_documents_within_the_bound_parse(depth: int) -> None:
    text = json.dumps(_nested(depth))
    assert json_depth_problem(text) is None
    assert load_json(text) == json.loads(text)


def test_one_level_past_the_bound_is_refused_before_the_parser_recurses() -> None:
    with pytest.raises(JsonTooDeep, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        load_json(json.dumps(_nested(MAX_JSON_DEPTH + 1)))
    with pytest.raises(JsonTooDeep):
        load_json("[" * 100_000)  # json.loads raises RecursionError on this


@pytest.mark.parametrize("name", ['[[[[', '"[[[[', '\\\\[[[[', '\\\\\\"[[[[', '{{{{"', '\\u005b[[['])
def test_brackets_inside_strings_do_not_count(name: str) -> None:
    document = {name: [[1]], "after": {"x": [2]}}
    text = json.dumps(document)
    assert json_depth_problem(text, limit=3) is None
    assert json_depth_problem(text, limit=2) is not None
    assert json_depth_problem(text.encode(), limit=3) is None
    assert load_json(text) == document
