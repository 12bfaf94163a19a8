"""YAML for prompt suites: safe types only, with the line of every mapping, list and key.

``load_marked(text)`` parses with PyYAML's *safe* constructor (strings, numbers,
booleans, null, lists, mappings; never a Python object: a ``!!python/object``
tag has no constructor here and fails before anything is built) and returns

- mappings as ``MarkedDict``: ``line`` (1-based, where the mapping starts) and
  ``key_lines`` (the line of each key);
- lists as ``MarkedList``: ``line`` and ``item_lines``;
- numbers as ``MarkedInt`` / ``MarkedFloat``: still numbers, plus ``raw``, the
  text as written, so ``expected_answer: 007`` or ``1.50`` can be kept exactly.

A key repeated in one mapping (which plain PyYAML resolves silently to the last
one) is an error. This module does not know the suite schema (``suite_schema``
does) nor files (``suites`` does). Cost: one parse, linear in the text.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

# libyaml's parser when PyYAML was built with it (about 10x faster); the
# constructor, and so the set of types that can be built, is the safe one either way.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"


class MarkedDict(dict):
    """A YAML mapping that remembers its line and the line of each key."""

    def __init__(self, *args: Any, line: int = 0) -> None:
        super().__init__(*args)
        self.line = line
        self.key_lines: dict[Any, int] = {}


class MarkedList(list):
    """A YAML sequence that remembers its line and the line of each item."""

    def __init__(self, *args: Any, line: int = 0) -> None:
        super().__init__(*args)
        self.line = line
        self.item_lines: list[int] = []


class MarkedInt(int):
    """A YAML integer with the text it was written as (``raw``)."""

    raw: str = ""


class MarkedFloat(float):
    """A YAML float with the text it was written as (``raw``)."""

    raw: str = ""


class DuplicateKeyError(ConstructorError):
    """A mapping names the same key twice."""


class _MarkedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader whose mappings, lists and numbers carry their source lines."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Any:
    data = MarkedDict(line=node.start_mark.line + 1)
    yield data
    explicit = [pair for pair in node.value if pair[0].tag != _MERGE_TAG]
    loader.flatten_mapping(node)  # resolves `<<: *anchor` merges; merged pairs come first
    first_explicit = len(node.value) - len(explicit)
    explicit_lines: dict[Any, int] = {}
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable) or isinstance(key, (list, dict)):
            raise ConstructorError(None, None, "a mapping key must be a plain value", key_node.start_mark)
        line = key_node.start_mark.line + 1
        if index >= first_explicit:
            if key in explicit_lines:
                raise DuplicateKeyError(
                    None, None,
                    f"key {key!r} appears twice in one mapping (first on line {explicit_lines[key]}); keep one",
                    key_node.start_mark,
                )
            explicit_lines[key] = line
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> Any:
    data = MarkedList(line=node.start_mark.line + 1)
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


def _construct_int(loader: Any, node: yaml.ScalarNode) -> MarkedInt:
    value = MarkedInt(SafeConstructor.construct_yaml_int(loader, node))
    value.raw = str(node.value)
    return value


def _construct_float(loader: Any, node: yaml.ScalarNode) -> MarkedFloat:
    value = MarkedFloat(SafeConstructor.construct_yaml_float(loader, node))
    value.raw = str(node.value)
    return value


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)
_MarkedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_MarkedLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_marked(text: str) -> Any:
    """Parse one YAML document with safe types and line marks (None for an empty document).

    Raises ``yaml.YAMLError`` (with ``problem_mark``) on bad syntax, an unsafe
    tag or a repeated key; the caller names the file.
    """
    loader = _MarkedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe_yaml_error(error: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line and a one-sentence problem-and-fix for a YAML error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = str(getattr(error, "problem", None) or error)
    if isinstance(error, DuplicateKeyError):
        return line, problem
    if isinstance(error, ConstructorError) and "could not determine a constructor for the tag" in problem:
        tag = problem.split("tag", 1)[1].strip(" '\"").replace("tag:yaml.org,2002:", "!!")
        return line, (
            f"the tag {tag} is not allowed; suite files hold plain YAML "
            "(text, numbers, lists, mappings), remove the tag"
        )
    if problem.startswith("mapping values are not allowed"):
        # The usual cause: unquoted text that contains ": " (libyaml and PyYAML word this differently).
        return line, "a ': ' inside unquoted text starts a mapping; put the text in quotes"
    context = getattr(error, "context", None)
    detail = f"{context}, {problem}" if context else problem
    return line, f"not valid YAML ({detail}); check the indentation and quoting there"
