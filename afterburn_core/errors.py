"""The one error family of afterburn_core.

Core code raises these; the doors translate them: the CLI prints the message as
one ``Error: …`` line and exits with ``exit_code``; a page shows it in
``st.error``. A message names the file / key / tensor at fault and, where there
is one, the fix. No traceback reaches a user.
"""

from __future__ import annotations


class AfterburnError(Exception):
    """Base of every error afterburn_core raises on purpose."""

    #: CLI exit code: 1 = an analysis failed, 2 = bad input from the user.
    exit_code = 1


class BadInput(AfterburnError):
    """The user gave something we cannot use (a reference, a file, a setting)."""

    exit_code = 2


class CheckpointNotFound(BadInput):
    """A model reference resolves to nothing: no folder, no file, not in the hub cache."""


class BadCheckpoint(BadInput):
    """A checkpoint exists but is malformed: missing config, broken index, unreadable weights."""


class UnsafeCheckpoint(BadInput):
    """A checkpoint would run code on load (a pickle payload) and was refused."""


class ShapeMismatch(BadInput):
    """Two checkpoints hold a tensor of the same name with shapes that cannot be compared."""


class ConfigError(BadInput):
    """A setting or ``.afterburn.yaml`` key is unknown or has a value out of range."""


class BadPromptSuite(BadInput):
    """A prompt suite file is missing, unreadable or invalid; the message names the file and line."""


class StoreError(AfterburnError):
    """The run store cannot be opened or written (permissions, disk full, a newer schema)."""


class RunNotFound(BadInput):
    """A run id names no run in the store."""


class AnalysisFailed(AfterburnError):
    """An analysis stopped with an error; the run is marked failed with this reason."""


class RunCancelled(AfterburnError):
    """The user cancelled the run while it was working."""


class AnalysisSkipped(AfterburnError):
    """An analysis does not apply to this pair (the reason says why); the run goes on without it."""
