"""Shared fixtures: a private run store per test, and the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from afterburn_core.store import RunStore

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def afterburn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$AFTERBURN_HOME`` for this test (also seen by subprocesses it starts)."""
    home = tmp_path / "afterburn-home"
    monkeypatch.setenv("AFTERBURN_HOME", str(home))
    return home


@pytest.fixture
def store(afterburn_home: Path):
    """A run store in the test's own home."""
    with RunStore(afterburn_home) as opened:
        yield opened
