"""Files written where the user named them, and nowhere else: ``write_file(path, data)``.

Every file Afterburn writes on a user's behalf (``-o`` JSON, reports) goes
through here. The bytes go to a fresh temporary file in the target folder,
created with ``O_CREAT | O_EXCL`` under a random name (so no file or symlink
planted at a predictable name is opened, let alone followed), and then
``os.replace`` puts it in place: a symlink at the destination is replaced
by the file, its target left as it was, and a reader never sees half a file.
A failure removes the temporary and leaves the old file. It knows nothing of
formats; the caller renders the bytes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from afterburn_core.errors import BadInput

#: Names tried for the temporary before giving up: each is 64 random bits, so a second try only
#: happens when something keeps creating files at random names in the folder.
TEMPORARY_NAME_TRIES = 8


def _open_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty file in ``folder`` opened for writing, and its path; never an existing file or link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(TEMPORARY_NAME_TRIES):
        temporary = folder / f".{name}.{secrets.token_hex(8)}.partial"
        try:
            return os.open(temporary, flags, 0o666), temporary  # the umask trims the mode, as for any new file
        except FileExistsError:
            continue
    raise FileExistsError(f"{TEMPORARY_NAME_TRIES} temporary names in {folder} were taken")


def write_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, never through a symlink; return the path.

    ``BadInput`` naming the path and the reason when it cannot be written (no such
    folder, no permission, a folder at that name, a full disk).
    """
    path = Path(path).expanduser()
    try:
        descriptor, temporary = _open_temporary(path.parent, path.name)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise
    return path


def _cannot_write(path: Path, error: OSError) -> BadInput:
    return BadInput(f"cannot write {path}: {error.strerror or error}")
