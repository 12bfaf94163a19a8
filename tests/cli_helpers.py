"""The ``afterburn`` command run as a user runs it: a real subprocess of this interpreter.

Use from a test module: ``from cli_helpers import afterburn``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from waits import HANG_S


def afterburn(*args: str, cwd: Path | None = None, timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:
    """``afterburn *args`` with a wide terminal (so tables do not wrap), its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "afterburn_core", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, "COLUMNS": "200"},
    )
