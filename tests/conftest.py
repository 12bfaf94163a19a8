"""Shared fixtures: a private run store per test, the repository root, tiny and demo models, and the two
fixtures every page test uses (``pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server",
"fresh_streamlit_caches")``)."""

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


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny base Llama and a differently seeded 'trained' copy, built once per session."""
    from checkpoint_factories import build_tiny_llama

    root = tmp_path_factory.mktemp("tiny-pair")
    return build_tiny_llama(root / "base", seed=0), build_tiny_llama(root / "trained", seed=1)


@pytest.fixture(scope="session")
def demo_base():
    """The demo base model loaded once for every generation / scoring test (CPU)."""
    from generation_helpers import CPU

    from afterburn_core.checkpoints import resolve
    from afterburn_core.generation.loading import load_model

    return load_model(resolve("demo:base"), CPU)


@pytest.fixture(scope="session")
def demo_trained():
    """The demo trained model loaded once for every generation / scoring test (CPU)."""
    from generation_helpers import CPU

    from afterburn_core.checkpoints import resolve
    from afterburn_core.generation.loading import load_model

    return load_model(resolve("demo:trained"), CPU)


@pytest.fixture
def navigation_as_on_a_server(monkeypatch: pytest.MonkeyPatch):
    """Run app.py on every rerun, as a server does (page tests: ``pytest.mark.usefixtures``).

    A server looks for a ``pages/`` folder once, and its first ``st.navigation``
    call turns that legacy mode off for good. AppTest forgets this before every
    run, finds our ``pages/`` (the design's layout) and then reruns the last page
    file alone, without app.py. Remove once AppTest keeps the server's behaviour.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original_init = PagesManager.__init__

    def init_without_pages_folder_mode(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_without_pages_folder_mode)


@pytest.fixture
def fresh_streamlit_caches(afterburn_home: Path):
    """The app's cached store and reference checks must not leak between tests."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
