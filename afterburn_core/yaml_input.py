"""Bounded YAML for the files users hand Afterburn: prompt suites and ``.afterburn.yaml``.

``load_marked(text)`` parses one document with PyYAML's *safe* constructor (never
a Python object: a ``!!python/object`` tag has no constructor here and fails
before anything is built). A first pass over the parser's events refuses, before
anything is built, what would make later work unbounded:

- nesting deeper than ``MAX_YAML_DEPTH`` (the constructor recurses per level);
- aliases (``*name``) that would add more than ``MAX_YAML_ALIAS_NODES`` nodes
  ("billion laughs": nine aliases of nine aliases … is 9⁹ nodes for every later
  walk, ``repr`` or copy), and an alias inside its own anchor (an endless structure).

The second pass builds plain types only, each remembering where it was written:

- mappings as ``MarkedDict``: ``line`` (1-based, where the mapping starts) and
  ``key_lines`` (the line of each key);
- lists as ``MarkedList``: ``line`` and ``item_lines``;
- numbers as ``MarkedInt`` / ``MarkedFloat``: still numbers, plus ``raw``, the
  text as written, so ``expected_answer: 007`` or ``1.50`` can be kept exactly;
  an integer longer than ``MAX_INT_CHARS`` characters is refused (past 4 300
  digits Python cannot even print it);
- text, true/false and null. A date-like scalar (``2001-12-14``) stays the text
  as written: neither suites nor settings hold dates, and ``2001-13-45`` would
  otherwise fail inside ``datetime``. ``!!binary``, ``!!set``, ``!!omap`` and
  ``!!pairs`` are refused like any other tag.

A key repeated in one mapping (which plain PyYAML resolves silently to the last
one) is an error naming the key and both lines. Every problem is a
``yaml.YAMLError`` with a mark; ``describe_yaml_error`` turns it into a line and
one sentence, and never quotes more than a key of the file. It does not know
files or schemas: callers name the file and check the meaning. Cost: two passes
over the text (events, then the build), each linear in its length.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from afterburn_core.limits import MAX_INT_CHARS, MAX_QUOTED_CHARS, MAX_YAML_ALIAS_NODES, MAX_YAML_DEPTH, quoted

# libyaml's parser when PyYAML was built with it (about 10x faster); the
# constructor, and so the set of types that can be built, is the safe one either way.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"
#: The safe constructor's tags we build; the rest of its table (binary, set, omap, pairs) is refused.
_PLAIN_TAGS = {_TAG + name for name in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp")}
_TOO_DEEP = f"lists and mappings nest deeper than {MAX_YAML_DEPTH} levels; flatten the data"


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


class YamlProblem(yaml.MarkedYAMLError):
    """A problem this module words itself: ``problem`` is the whole sentence, with its fix."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class BadScalar(YamlProblem):
    """A value that cannot be built (a huge integer, a tag it does not fit), named by its key."""

    def __init__(self, what: str, fix: str, mark: Any, key: Any = None) -> None:
        where = "" if key is None else f" under key {quoted(key)}"
        super().__init__(f"the value{where} is {what}; {fix}", mark)
        self.what, self.fix, self.key = what, fix, key


def _check_bounds(text: str) -> None:
    """Refuse deep nesting and alias expansion past the budget, from the parser's events alone."""
    loader = _BaseLoader(text)
    open_nodes: list[list[Any]] = []  # [anchor, nodes so far (aliases expanded)] of each open collection
    sizes: dict[str, int] = {}  # nodes an anchor stands for, its own aliases expanded
    alias_nodes = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(open_nodes) >= MAX_YAML_DEPTH:
                    raise YamlProblem(_TOO_DEEP, event.start_mark)
                open_nodes.append([event.anchor, 1])
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                anchor, size = open_nodes.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                if any(node[0] == event.anchor for node in open_nodes):
                    raise YamlProblem(
                        f"the alias *{event.anchor[:MAX_QUOTED_CHARS]} sits inside its own anchor, an endless "
                        "structure; write the data out", event.start_mark)
                anchor, size = None, sizes.get(event.anchor, 1)  # an unknown anchor: the build names it
                alias_nodes += size
                if alias_nodes > MAX_YAML_ALIAS_NODES:
                    raise YamlProblem(
                        f"aliases (*name) expand to more than {MAX_YAML_ALIAS_NODES} nodes; "
                        "write the data out or use fewer aliases", event.start_mark)
            else:
                continue  # stream and document boundaries
            if anchor is not None:
                sizes[anchor] = size
            if open_nodes:
                open_nodes[-1][1] += size
    finally:
        loader.dispose()


class _MarkedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader restricted to plain types, whose mappings, lists and numbers carry their source lines."""

    yaml_constructors = {tag: build for tag, build in SafeConstructor.yaml_constructors.items()
                         if tag is None or tag in _PLAIN_TAGS}


def _expect(node: yaml.Node, kind: type[yaml.Node], what: str) -> None:
    # An explicit tag (`!!map some text`) can put any node under any constructor.
    if not isinstance(node, kind):
        raise BadScalar(f"tagged !!{what} but is not one", "remove the tag or fix the value", node.start_mark)


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Any:
    _expect(node, yaml.MappingNode, "map")
    data = MarkedDict(line=node.start_mark.line + 1)
    yield data
    explicit = [pair for pair in node.value if pair[0].tag != _MERGE_TAG]
    loader.flatten_mapping(node)  # resolves `<<: *anchor` merges; merged pairs come first
    first_explicit = len(node.value) - len(explicit)
    explicit_lines: dict[Any, int] = {}
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable) or isinstance(key, (list, dict)):
            raise YamlProblem("a mapping key must be a plain value (text or a number), not a list or mapping",
                              key_node.start_mark)
        line = key_node.start_mark.line + 1
        if index >= first_explicit:
            if key in explicit_lines:
                raise YamlProblem(
                    f"key {quoted(key)} appears twice in one mapping (first on line {explicit_lines[key]}); keep one",
                    key_node.start_mark)
            explicit_lines[key] = line
        try:
            data[key] = loader.construct_object(value_node, deep=True)
        except BadScalar as error:
            if error.key is not None:
                raise
            raise BadScalar(error.what, error.fix, error.problem_mark, key) from None
        data.key_lines[key] = line


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> Any:
    _expect(node, yaml.SequenceNode, "seq")
    data = MarkedList(line=node.start_mark.line + 1)
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


def _checked_scalar(kind: str, build: Callable[[Any, yaml.ScalarNode], Any]) -> Callable[[Any, yaml.ScalarNode], Any]:
    """``build`` with its errors on text an explicit tag forced on it (``!!int abc``) as one sentence."""

    def construct(loader: Any, node: yaml.ScalarNode) -> Any:
        try:
            return build(loader, node)
        except (ValueError, LookupError):
            raise BadScalar(f"tagged !!{kind} but is not one", "remove the tag or fix the value",
                            node.start_mark) from None

    return construct


def _construct_int(loader: Any, node: yaml.ScalarNode) -> MarkedInt:
    if isinstance(node.value, str) and len(node.value) > MAX_INT_CHARS:
        raise BadScalar(f"an integer of {len(node.value)} characters",
                        f"the limit is {MAX_INT_CHARS}, quote it if it is text", node.start_mark)
    value = MarkedInt(SafeConstructor.construct_yaml_int(loader, node))
    value.raw = str(node.value)
    return value


def _construct_float(loader: Any, node: yaml.ScalarNode) -> MarkedFloat:
    value = MarkedFloat(SafeConstructor.construct_yaml_float(loader, node))
    value.raw = str(node.value)
    return value


_MarkedLoader.add_constructor(_TAG + "map", _construct_mapping)
_MarkedLoader.add_constructor(_TAG + "seq", _construct_sequence)
_MarkedLoader.add_constructor(_TAG + "int", _checked_scalar("int", _construct_int))
_MarkedLoader.add_constructor(_TAG + "float", _checked_scalar("float", _construct_float))
_MarkedLoader.add_constructor(_TAG + "bool", _checked_scalar("bool", SafeConstructor.construct_yaml_bool))
_MarkedLoader.add_constructor(_TAG + "timestamp", SafeConstructor.construct_scalar)  # the date as written


def load_marked(text: str) -> Any:
    """Parse one bounded YAML document into plain, marked types (None for an empty document).

    Raises ``yaml.YAMLError`` (with ``problem_mark``) on bad syntax, a bound
    exceeded, an unsafe tag, an unbuildable scalar or a repeated key; the caller names the file.
    """
    _check_bounds(text)
    loader = _MarkedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def plain(value: Any) -> Any:
    """``value`` with its marked types made built-in (dict, list, int, float): for records that outlive the file."""
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def describe_yaml_error(error: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line and a one-sentence problem-and-fix for a YAML error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = str(getattr(error, "problem", None) or error)
    if isinstance(error, YamlProblem):
        return line, problem
    if isinstance(error, ConstructorError) and "could not determine a constructor for the tag" in problem:
        tag = problem.split("tag", 1)[1].strip(" '\"").replace(_TAG, "!!")
        return line, (
            f"the tag {tag[:MAX_QUOTED_CHARS]} is not allowed; Afterburn reads plain YAML "
            "(text, numbers, true/false, lists, mappings), remove the tag"
        )
    if isinstance(error, yaml.reader.ReaderError):  # no mark: the reader refuses a character before parsing
        return None, (f"character {error.position + 1} is U+{error.character:04X}, which YAML does not allow; "
                      f"remove it, or write it as \\u{error.character:04x} inside double quotes")
    if "exceeded maximum nesting depth" in problem:  # libyaml's own bound (1 000), met while scanning ahead
        return line, _TOO_DEEP
    if problem.startswith("mapping values are not allowed"):
        # The usual cause: unquoted text that contains ": " (libyaml and PyYAML word this differently).
        return line, "a ': ' inside unquoted text starts a mapping; put the text in quotes"
    context = getattr(error, "context", None)
    detail = " ".join((f"{context}, {problem}" if context else problem).split())  # one line
    return line, f"not valid YAML ({detail[:2 * MAX_QUOTED_CHARS]}); check the indentation and quoting there"
