"""Read what a user typed as a model reference and say what kind of thing it names.

Contract: ``parse_reference(text)`` returns a ``ParsedReference`` of kind
``demo`` (``demo`` / ``demo:<name>``), ``path`` (an existing file or folder, or
something that can only be meant as a path) or ``hub`` (``owner/name`` with an
optional ``@revision``). The rules, in order:

1. ``demo`` and ``demo:<name>`` always name the bundled demo models (write
   ``./demo`` for a folder called demo);
2. an existing path wins (``owner/name`` that exists here is that folder);
3. anything that looks like a path — starts with ``./``, ``../``, ``/`` or ``~``,
   has two or more slashes before any ``@``, or ends in a checkpoint file
   extension — is a local path, missing or not;
4. ``owner/name[@revision]`` is a Hugging Face Hub id;
5. anything else is a missing local path.

It leaves to others: checking the files (``local.py``), downloading
(``hub.py``), demo lookup (``resolution.py``). Cost: one ``stat``; no other I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from afterburn_core.errors import CheckpointNotFound
from afterburn_core.limits import quoted

#: File endings that mark a reference as a file path even when the file is missing.
PATH_EXTENSIONS = (".safetensors", ".bin", ".pt", ".pth", ".json", ".ckpt", ".gguf", ".pkl")

# Hub repo names: letters, digits, "-", "_", "." (huggingface_hub's validator), max 96 chars each.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass(frozen=True)
class ParsedReference:
    """What a reference string names; ``path`` absolute for kind ``path``."""

    text: str
    kind: Literal["demo", "path", "hub"]
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None
    demo_name: str | None = None


def _looks_like_path(text: str) -> bool:
    before_revision = text.split("@", 1)[0]
    return (
        text.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or text in (".", "..")
        or "\\" in text
        or before_revision.count("/") >= 2
        or text.lower().endswith(PATH_EXTENSIONS)
    )


def _exists(path: Path) -> bool:
    """``path.exists()``, False for a name the filesystem refuses (too long: ENAMETOOLONG)."""
    try:
        return path.exists()
    except OSError:
        return False


#: The demo model a bare ``demo`` means on each side of a pair.
DEFAULT_DEMO_NAME = {"base": "base", "trained": "trained"}


def spelled_out(text: str, side: str) -> str:
    """A bare ``demo`` as the model it means on ``side`` (``demo:base``, ``demo:trained``), so the run store,
    the history and every report name the model, not "demo → demo"; any other reference as typed."""
    return f"demo:{DEFAULT_DEMO_NAME[side]}" if text.strip().lower() == "demo" else text


def parse_reference(text: str, *, relative_to: Path | None = None) -> ParsedReference:
    """Classify ``text``; ``relative_to`` is the folder a relative path is read from (default: cwd)."""
    if not isinstance(text, str) or not text.strip():
        raise CheckpointNotFound(
            "a model reference is empty; give a folder, a .safetensors/.bin file, owner/name[@revision] or demo."
        )
    text = text.strip()
    lowered = text.lower()
    if lowered == "demo" or lowered.startswith("demo:"):
        name = lowered.split(":", 1)[1].strip() if ":" in lowered else ""
        return ParsedReference(text=text, kind="demo", demo_name=name or None)

    if "\0" in text:
        raise CheckpointNotFound(f"the model reference {quoted(text)} holds a NUL character; no path or Hub id does.")
    base = relative_to if relative_to is not None else Path.cwd()
    candidate = (base / Path(text).expanduser()).absolute()
    if _exists(candidate) or _looks_like_path(text):
        return ParsedReference(text=text, kind="path", path=candidate)

    repo_id, _, revision = text.partition("@")
    if _HUB_ID.match(repo_id) and "--" not in repo_id and ".." not in repo_id:
        if "@" in text and not revision.strip():
            raise CheckpointNotFound(
                f"{text!r} ends with '@' but names no revision; write {repo_id}@<branch, tag or commit sha>."
            )
        return ParsedReference(text=text, kind="hub", repo_id=repo_id, revision=revision.strip() or None)
    return ParsedReference(text=text, kind="path", path=candidate)
