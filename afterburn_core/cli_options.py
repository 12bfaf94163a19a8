"""The CLI's settings options, generated from ``AnalysisConfig``'s fields: a verb takes what its analyses read.

``settings_options(kinds)`` decorates a click command with one option per
config field that the analyses of ``kinds`` (and their dependencies) read,
as the analyses registry declares them (``analyses.config_fields_for``):
``weight-diff`` gets ``--exact`` and ``--top-k``, not ``--suites``. Each
option's name is ``--`` + the field name with hyphens, or the field's
``metadata["flag"]``; its help is ``metadata["help"]``; its type follows the
field's annotation (``metadata["choices"]`` for a string with fixed values);
its default, shown in ``--help``, is the field's. The command receives the
settings the user actually typed as one ``settings`` mapping, so a setting
left out keeps the value of ``.afterburn.yaml`` (or the default).

It validates nothing a config does not: a bad value reaches ``AnalysisConfig``
and comes back as its ``ConfigError``, the same sentence the API and the pages
show. It knows no analysis and runs nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from afterburn_core.analyses import config_fields_for
from afterburn_core.config import AnalysisConfig

#: Said after the help of an option that takes a list: each value may hold several, comma-separated.
LIST_HINT = "Repeat or comma-separate."


class _NameNumber(click.ParamType):
    """``name=number`` pairs, comma-separated (``length_bias=0.4,sycophancy=0.1``), for a ``dict[str, float]``."""

    name = "NAME=NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, float]:
        if isinstance(value, dict):
            return value
        pairs = {}
        for item in _split(value):
            name, equals, number = (part.strip() for part in item.partition("="))
            if not (name and equals and _is_number(number)):
                self.fail(f"{item!r} is not NAME=NUMBER (e.g. length_bias=0.4)", param, ctx)
            pairs[name] = float(number)
        return pairs


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _flag(config_field: dataclasses.Field) -> str:
    return config_field.metadata.get("flag", "--" + config_field.name.replace("_", "-"))


def _option(config_field: dataclasses.Field, annotation: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of one config field (its Python name is the field's)."""
    flag, help_text = _flag(config_field), config_field.metadata["help"]
    default = config_field.default if config_field.default is not dataclasses.MISSING else config_field.default_factory()
    if annotation is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", config_field.name, default=default, show_default=True,
                             help=help_text)
    if typing.get_origin(annotation) in (tuple, dict):
        value_type = _NameNumber() if typing.get_origin(annotation) is dict else str
        return click.option(flag, config_field.name, type=value_type, multiple=True, help=f"{help_text} {LIST_HINT}")
    value_type = click.Choice(config_field.metadata["choices"]) if "choices" in config_field.metadata else annotation
    return click.option(flag, config_field.name, type=value_type, default=default, show_default=True, help=help_text)


def _given(annotation: Any, value: Any) -> Any:
    """A typed option's value as the config takes it; None when a list option held nothing."""
    if typing.get_origin(annotation) is tuple:
        return tuple(part for entry in value for part in _split(entry)) or None
    if typing.get_origin(annotation) is dict:
        return {name: number for pairs in value for name, number in pairs.items()} or None
    return value


def settings_options(kinds: tuple[str, ...] | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options of every setting the analyses of ``kinds`` (None: all) read; the command gets
    ``settings``: the ones given on the command line, by field name."""
    names = config_fields_for(kinds)
    annotations = typing.get_type_hints(AnalysisConfig)
    config_fields = [f for f in dataclasses.fields(AnalysisConfig) if f.name in names]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_settings(*args: Any, **kwargs: Any) -> Any:
            context = click.get_current_context()
            values = {name: _given(annotations[name], kwargs.pop(name)) for name in names}
            settings = {name: value for name, value in values.items()
                        if value is not None and context.get_parameter_source(name) is not ParameterSource.DEFAULT}
            return command(*args, settings=settings, **kwargs)

        for config_field in reversed(config_fields):
            with_settings = _option(config_field, annotations[config_field.name])(with_settings)
        return with_settings

    return decorate

