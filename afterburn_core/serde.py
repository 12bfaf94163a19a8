"""Lossless JSON for frozen dataclasses, driven by their type hints.

Every result crosses the store, the CLI and the reports as a frozen dataclass;
this module turns one into plain JSON values and back, so that
``from_jsonable(T, to_jsonable(x)) == x`` for every result type. It supports
what results are made of: dataclasses, ``tuple[X, ...]`` / ``tuple[X, Y]``,
``dict[str, X]``, ``X | None``, ``Literal``, ``Enum``, ``str``, ``int``,
``float`` (NaN and infinities written as strings so the JSON stays standard),
``bool``. It does not guess: an unsupported annotation is a ``TypeError`` at
the first use, not a silent ``str()``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from functools import lru_cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_jsonable(value: Any) -> Any:
    """A dataclass (or anything it holds) as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (tuple, list)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(annotation: Any, value: Any) -> Any:
    """Rebuild a value of type ``annotation`` from what ``to_jsonable`` wrote."""
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return from_jsonable(option, value)
            except (TypeError, ValueError, KeyError) as error:
                errors.append(str(error))
        raise ValueError(f"{value!r} matches none of {annotation}: {'; '.join(errors)}")
    if origin is Literal:
        if value not in get_args(annotation):
            raise ValueError(f"{value!r} is not one of {get_args(annotation)}")
        return value
    if origin is tuple:
        args = get_args(annotation)
        if not isinstance(value, list):
            raise TypeError(f"expected a list for {annotation}, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], item) for item in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} items for {annotation}, got {len(value)}")
        return tuple(from_jsonable(arg, item) for arg, item in zip(args, value))
    if origin is dict:
        key_type, value_type = get_args(annotation)
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {annotation}")
        return {from_jsonable(key_type, key): from_jsonable(value_type, item) for key, item in value.items()}
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {annotation.__name__}, got {type(value).__name__}")
        hints = _hints(annotation)
        kwargs = {}
        for field in dataclasses.fields(annotation):
            if field.name in value:
                kwargs[field.name] = from_jsonable(hints[field.name], value[field.name])
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise KeyError(f"{annotation.__name__} is missing field {field.name!r}")
        return annotation(**kwargs)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if annotation is float:
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation!r}")
