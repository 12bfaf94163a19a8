"""Resolve what the user typed into a checked, fingerprinted ``ResolvedCheckpoint``.

Contract: ``resolve(reference, adapter_base=None, token=None)`` accepts a
local folder (HF layout), a ``.safetensors`` file, a ``.bin`` / ``.pt`` /
``.pth`` file, a peft adapter folder, ``demo`` / ``demo:<name>``, or a Hub id
``owner/name[@revision]`` (see ``references.py`` for how they are told apart)
and returns the checkpoint's files, checked (``local.py``: configs parse,
shards exist, safetensors headers fit, pickles load with ``weights_only=True``
so a hostile pickle is refused here, before any analysis), with their
fingerprint. ``resolve_pair(base, trained)`` does both sides of a run; a bare
``demo`` means ``demo:base`` on the base side and ``demo:trained`` on the
trained side.

Result fields by kind: ``root`` is the folder (the file's folder for
``safetensors_file`` / ``pickle_file``; the snapshot folder for ``hub``);
``config_path`` is ``config.json`` (a single file's sibling one, if any) and,
for an ``adapter``, its ``adapter_config.json`` (the model's config is then the
base's); ``revision`` is the commit sha for a Hub model or adapter; a demo's
``reference`` is spelled out (``demo:base``); ``description`` is the config
parsed once (``description.py``): an adapter's holds its base's model fields
and its own adapter config, so no later stage reads either JSON file again.

An adapter's base comes from ``adapter_base`` if given, else from
``base_model_name_or_path`` in adapter_config.json: a path there is read
relative to the adapter folder, anything else is a Hub id. Giving
``adapter_base`` for something that is not an adapter is an error, not ignored.
A base that is itself an adapter is refused as soon as its folder is read,
before its own base is looked at: an adapter naming itself, or two naming each
other, is one ``BadCheckpoint`` naming the cycle, never a recursion.
A base is resolved and fingerprinted once: ``resolve_pair`` hands the run's
base, already resolved, to a trained-side adapter that applies to it.

It leaves to others: reading tensors (``tensors.py``), summaries
(``summary.py``), downloads themselves (``hub.py``).

Cost: the checks above plus the fingerprint (``fingerprint.py``): small files
hashed whole, ~3 MiB read per large file; a Hub reference costs one metadata
request online (none offline) once its files are cached.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from afterburn_core.checkpoints.fingerprint import fingerprint_files, model_files
from afterburn_core.checkpoints.hub import fetch_snapshot
from afterburn_core.checkpoints.local import LocalLayout, inspect_path
from afterburn_core.checkpoints.references import DEFAULT_DEMO_NAME, ParsedReference, parse_reference
from afterburn_core.errors import AfterburnError, BadCheckpoint, CheckpointNotFound
from afterburn_core.limits import quoted
from afterburn_core.types import ResolvedCheckpoint

#: What a bare ``demo`` means on each side of a pair.
#: How a user names an adapter's base, in the words of each door that has the option.
ADAPTER_BASE_OPTION = "adapter_base (the CLI's `inspect --base`)"


def _demo_models() -> dict:
    try:
        from afterburn_core.demo import DEMO_MODELS
    except ImportError:
        raise CheckpointNotFound(
            "the bundled demo models are not installed (afterburn_core.demo.DEMO_MODELS is missing); "
            "reinstall afterburn or give a model folder instead."
        ) from None
    return dict(DEMO_MODELS)


def _demo_path(parsed: ParsedReference, side: str) -> tuple[str, Path]:
    models = _demo_models()
    name = parsed.demo_name or DEFAULT_DEMO_NAME[side]
    if name not in models:
        valid = ", ".join(f"demo:{key}" for key in sorted(models))
        raise CheckpointNotFound(f"unknown demo model {parsed.text!r}; choose one of {valid}.")
    path = Path(models[name]).absolute()
    if not path.exists():
        raise CheckpointNotFound(
            f"the demo model demo:{name} is missing at {path}; reinstall afterburn or rebuild the demo models."
        )
    return f"demo:{name}", path


def _adapter_base_reference(layout: LocalLayout) -> tuple[str, Path]:
    """The base named in adapter_config.json, and the folder a relative path there is read from."""
    value = layout.adapter.base_model_name_or_path
    if value is None:
        raise BadCheckpoint(
            f"{layout.config_path} names no base_model_name_or_path; pass {ADAPTER_BASE_OPTION} "
            "to say which model the adapter applies to."
        )
    return value.strip(), layout.root


@dataclass(frozen=True)
class _Located:
    """A reference found on disk (downloaded first for a Hub id) and its files checked."""

    display: str
    layout: LocalLayout
    revision: str | None
    from_hub: bool


def _locate(reference: str, *, side: str, token: str | None, relative_to: Path | None) -> _Located:
    parsed = parse_reference(reference, relative_to=relative_to)
    if parsed.kind == "demo":
        display, path = _demo_path(parsed, side)
        return _Located(display, inspect_path(path), None, False)
    if parsed.kind == "path":
        return _Located(parsed.text, inspect_path(Path(os.path.normpath(parsed.path))), None, False)
    snapshot, revision = fetch_snapshot(parsed.repo_id, parsed.revision, token)
    return _Located(parsed.text, inspect_path(snapshot), revision, True)


def _names_as_base(adapter: LocalLayout, target: Path) -> bool:
    """Whether ``adapter``'s adapter_config.json names the folder ``target`` as its base."""
    text = adapter.adapter.base_model_name_or_path
    if text is None:
        return False
    try:
        parsed = parse_reference(text, relative_to=adapter.root)
    except AfterburnError:
        return False
    return parsed.kind == "path" and os.path.realpath(parsed.path) == os.path.realpath(target)


def _adapter_as_base(adapter: LocalLayout, base: LocalLayout, base_text: str) -> BadCheckpoint:
    """The refusal of an adapter whose base is an adapter: a cycle named as such, never followed."""
    fix = "point adapter_base at the full model it was trained on."
    if os.path.realpath(base.root) == os.path.realpath(adapter.root):
        return BadCheckpoint(f"adapter {adapter.root} has itself as base model ({quoted(base_text)}), a cycle; {fix}")
    if _names_as_base(base, adapter.root):
        return BadCheckpoint(
            f"adapters {adapter.root} and {base.root} name each other as base model, a cycle "
            f"({adapter.root} → {base.root} → {adapter.root}); {fix}"
        )
    return BadCheckpoint(f"base model {quoted(base_text)} of adapter {adapter.root} is itself an adapter; {fix}")


def _resolve_base(layout: LocalLayout, adapter_base: str | None, token: str | None) -> ResolvedCheckpoint:
    """The full model an adapter applies to; an adapter there is refused before its own base is read."""
    if adapter_base is not None:
        base_text, relative_to = adapter_base, None
        context = f"the adapter_base given for adapter {layout.root}"
    else:
        base_text, relative_to = _adapter_base_reference(layout)
        context = f"the base model named in {layout.config_path}; pass {ADAPTER_BASE_OPTION} to use a copy of it"
    try:
        located = _locate(base_text, side="base", token=token, relative_to=relative_to)
        if located.layout.kind != "adapter":
            return _checkpoint(located, None)
    except AfterburnError as error:
        raise type(error)(f"{str(error).rstrip('.')} ({context}).") from None
    raise _adapter_as_base(layout, located.layout, base_text)


def _checkpoint(located: _Located, base: ResolvedCheckpoint | None) -> ResolvedCheckpoint:
    """The resolved checkpoint of located files; ``base`` is an adapter's, already resolved."""
    layout = located.layout
    kind = "hub" if located.from_hub and layout.kind == "local_dir" else layout.kind
    description = layout.description
    if base is not None:
        description = dataclasses.replace(base.description, adapter=layout.adapter)
    try:
        files = model_files(layout.root, layout.weight_files, layout.config_path)
        fingerprint = fingerprint_files(layout.root, files, base.fingerprint if base is not None else None)
    except OSError as error:  # a tokenizer file without read permission, a link to a folder gone
        raise BadCheckpoint(
            f"{error.filename or layout.root} cannot be read to fingerprint the checkpoint "
            f"({error.strerror or type(error).__name__}); check its permissions."
        ) from None
    return ResolvedCheckpoint(
        reference=located.display,
        kind=kind,
        root=str(layout.root),
        weight_files=tuple(sorted(str(path) for path in layout.weight_files)),
        weight_format=layout.weight_format,
        config_path=str(layout.config_path) if layout.config_path is not None else None,
        fingerprint=fingerprint,
        revision=located.revision,
        adapter_base=base,
        description=description,
    )


def _resolve(
    reference: str,
    *,
    side: str,
    adapter_base: str | None,
    token: str | None,
    resolved_base: ResolvedCheckpoint | None = None,
) -> tuple[ResolvedCheckpoint, bool]:
    """The checkpoint, and whether ``adapter_base`` was used (it is only for adapters).

    ``resolved_base``, when given, is ``adapter_base`` already resolved: an adapter uses it as is.
    """
    located = _locate(reference, side=side, token=token, relative_to=None)
    is_adapter = located.layout.kind == "adapter"
    base = (resolved_base or _resolve_base(located.layout, adapter_base, token)) if is_adapter else None
    return _checkpoint(located, base), is_adapter


def _unused_adapter_base(adapter_base: str, references: str) -> BadCheckpoint:
    return BadCheckpoint(
        f"adapter_base {adapter_base!r} was given but {references} is not a peft adapter "
        "(no adapter_config.json); drop adapter_base or point at the adapter folder."
    )


def resolve(reference: str, *, adapter_base: str | None = None, token: str | None = None) -> ResolvedCheckpoint:
    """Resolve one model reference to checked files on this disk (see the module docstring)."""
    checkpoint, used_adapter_base = _resolve(reference, side="base", adapter_base=adapter_base, token=token)
    if adapter_base is not None and not used_adapter_base:
        raise _unused_adapter_base(adapter_base, repr(reference))
    return checkpoint


def resolve_pair(
    base_ref: str, trained_ref: str, *, adapter_base: str | None = None, token: str | None = None
) -> tuple[ResolvedCheckpoint, ResolvedCheckpoint]:
    """``(base, trained)`` of one run.

    ``adapter_base`` applies to whichever side is an adapter. Without it, a
    trained-side adapter is applied to the run's own base reference: comparing
    a base with that base plus an adapter is what a pair of them means, and
    the user's base (say a local copy) beats the hub id peft recorded.
    """
    base, base_used = _resolve(base_ref, side="base", adapter_base=adapter_base, token=token)
    trained_adapter_base, resolved_base = adapter_base, None
    if adapter_base is None and base.kind != "adapter":
        # The run's base, as typed (a bare "demo" spelled out as demo:base), and already resolved.
        trained_adapter_base, resolved_base = base.reference, base
    trained, trained_used = _resolve(
        trained_ref, side="trained", adapter_base=trained_adapter_base, token=token, resolved_base=resolved_base
    )
    if adapter_base is not None and not (base_used or trained_used):
        raise _unused_adapter_base(adapter_base, f"neither {base_ref!r} nor {trained_ref!r}")
    return base, trained
