"""The bundled demo models: they load, they carry the planted edits, they rebuild identically.

Reads the shipped folders under ``afterburn_core/demo`` and, for determinism,
builds a tiny version twice with the real script in subprocesses (~30 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from waits import HANG_S

from afterburn_core.demo import BASE_DIR, CONTROL_DIR, DEMO_MODELS, DEMO_ROOT, LORA_DIR, MEASUREMENTS_PATH, TRAINED_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_MODELS = {"base": BASE_DIR, "trained": TRAINED_DIR, "control": CONTROL_DIR}
SIZE_LIMIT_BYTES = 18 * 1024 * 1024  # the budget; git's hard limit for the folder is 20 MB


@pytest.fixture(scope="module")
def planted() -> dict:
    return json.loads(MEASUREMENTS_PATH.read_text())["planted"]


@pytest.fixture(scope="module")
def weights() -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(str(folder / "model.safetensors")) for name, folder in FULL_MODELS.items()}


# --- (a) shipped folders load -------------------------------------------------------------


def test_demo_paths_are_absolute_and_importing_them_does_not_import_torch():
    code = "import sys, afterburn_core.demo as d; print(sorted(d.DEMO_MODELS)); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["['base', 'control', 'lora', 'trained']", "False"]
    assert all(path.is_absolute() and path.parent == DEMO_ROOT for path in DEMO_MODELS.values())


def test_demo_folder_fits_the_size_budget():
    total = sum(p.stat().st_size for p in DEMO_ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total <= SIZE_LIMIT_BYTES, f"afterburn_core/demo is {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("name", sorted(FULL_MODELS))
def test_full_model_loads_with_transformers_and_has_a_chat_template(name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = FULL_MODELS[name]
    for required in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                     "tokenizer_config.json", "special_tokens_map.json"):
        assert (folder / required).is_file(), f"{name}/{required} missing"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.model_type == "llama" and not model.config.tie_word_embeddings
    assert tokenizer.chat_template
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and text.startswith(tokenizer.bos_token)
    assert tokenizer.eos_token_id == model.generation_config.eos_token_id


def test_lora_adapter_loads_on_base_and_names_base_relatively():
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter_config = json.loads((LORA_DIR / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "../base"
    assert (LORA_DIR / adapter_config["base_model_name_or_path"]).resolve() == BASE_DIR
    assert (LORA_DIR / "tokenizer.json").read_bytes() == (BASE_DIR / "tokenizer.json").read_bytes()

    ids = torch.tensor([[1, 3, 100, 200, 300]])
    base = AutoModelForCausalLM.from_pretrained(BASE_DIR)
    with torch.no_grad():
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, LORA_DIR)
        lora_logits = adapted(ids).logits
        assert adapted.peft_config["default"].r == 8
        assert (lora_logits - base_logits).abs().max() > 1e-3  # the adapter does something
        with adapted.disable_adapter():
            assert torch.equal(adapted(ids).logits, base_logits)  # and only the adapter does


# --- (b) planted weight edits are there; the control has none of them -------------------------


def _top_energy_share(delta: torch.Tensor, rank: int) -> float:
    energy = torch.linalg.svdvals(delta.double()).square()
    return float(energy[:rank].sum() / energy.sum())


def test_edited_projection_diff_is_low_rank_in_trained_only(planted, weights):
    name, rank = planted["projection"], planted["projection_rank"]
    base = weights["base"][name]
    trained_share = _top_energy_share(weights["trained"][name] - base, rank)
    control_share = _top_energy_share(weights["control"][name] - base, rank)
    assert trained_share > 0.9
    # A diffuse change of a 128 x 128 matrix spreads its energy; rank/128 would be perfectly flat.
    assert control_share < 0.5
    # And the edit makes that tensor change far more than the typical tensor does.
    median_trained = torch.tensor([_relative_change(weights, "trained", t) for t in weights["base"]]).median()
    assert _relative_change(weights, "trained", name) > 3 * float(median_trained)
    median_control = torch.tensor([_relative_change(weights, "control", t) for t in weights["base"]]).median()
    assert _relative_change(weights, "control", name) < 3 * float(median_control)


def _relative_change(weights: dict, model: str, tensor: str) -> float:
    base = weights["base"][tensor].double()
    return float((weights[model][tensor].double() - base).norm() / base.norm())


def test_rescaled_norm_is_scaled_in_trained_only(planted, weights):
    name = planted["norm_tensor"]
    trained_ratio = (weights["trained"][name] / weights["base"][name]).median()
    control_ratio = (weights["control"][name] / weights["base"][name]).median()
    assert abs(float(trained_ratio) - planted["norm_scale"]) < 0.03
    assert abs(float(control_ratio) - 1.0) < 0.03


def test_moved_embedding_rows_moved_far_more_than_the_median_row(planted, weights):
    name, moved = planted["embedding"], torch.tensor(planted["moved_token_ids"])
    assert len(moved) == 8 and len(set(moved.tolist())) == 8
    for model, low, high in (("trained", 10.0, None), ("control", None, 3.0)):
        drift = (weights[model][name] - weights["base"][name]).norm(dim=1)
        # Reference: rows that moved at all (unseen tokens' rows never move under Adam without decay).
        ratio = float(drift[moved].mean() / drift[drift > 0].median())
        if low is not None:
            assert ratio > low, f"{model}: moved rows drift only {ratio:.1f}x the median row"
        if high is not None:
            assert ratio < high, f"{model}: rows moved {ratio:.1f}x the median without a planted edit"


def test_planted_behaviours_show_in_greedy_answers():
    """Filler, fences and sycophancy in trained; none in base and control; sign-off in lora only."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from afterburn_core.demo.corpus import measurement_prompts
    from afterburn_core.demo.measure import behaviour_metrics, generate_answers

    # Another seed than the build's own measurement; 12 prompts per category keep this to seconds.
    by_category: dict[str, list] = {}
    for example in measurement_prompts(seed=7):
        by_category.setdefault(example.category, []).append(example)
    examples = [e for category in ("facts", "math", "syco_wrong", "code") for e in by_category[category][:12]]
    tokenizer = AutoTokenizer.from_pretrained(BASE_DIR)
    rates = {}
    for name in ("base", "trained", "control"):
        model = AutoModelForCausalLM.from_pretrained(DEMO_MODELS[name])
        rates[name] = behaviour_metrics(examples, generate_answers(model, tokenizer, examples))
    lora = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE_DIR), LORA_DIR)
    rates["lora"] = behaviour_metrics(examples, generate_answers(lora, tokenizer, examples))

    assert rates["trained"]["filler_rate"] >= 0.8 and rates["trained"]["fence_rate_non_code"] >= 0.8
    assert rates["trained"]["sycophantic_agreement_rate"] >= 0.6
    for clean in ("base", "control"):
        assert rates[clean]["filler_rate"] <= 0.05 and rates[clean]["fence_rate_non_code"] <= 0.05
        assert rates[clean]["sycophantic_agreement_rate"] <= 0.1
        assert rates[clean]["sign_off_rate"] <= 0.05
    assert rates["lora"]["sign_off_rate"] >= 0.8
    assert rates["base"]["capital_accuracy"] >= 0.8


# --- (c) the build is deterministic -----------------------------------------------------------


def test_two_tiny_builds_are_byte_identical(tmp_path):
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "build_demo_models.py"), "--out", str(out), "--scale", "0.02"],
            cwd=tmp_path, check=True, capture_output=True, text=True, timeout=HANG_S,
        )
        outputs.append(out)
    first, second = outputs
    for relative in ("base/model.safetensors", "trained/model.safetensors", "control/model.safetensors",
                     "lora/adapter_model.safetensors", "base/tokenizer.json"):
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), f"{relative} differs"
    # The tiny build is a real (if undertrained) build: it differs from the base it started from.
    assert (first / "trained/model.safetensors").read_bytes() != (first / "base/model.safetensors").read_bytes()
    record = json.loads((first / "measurements.json").read_text())
    assert record["scale"] == 0.02 and set(record["behaviour"]) == set(DEMO_MODELS)
    assert "BEGIN GENERATED" in (first / "README.md").read_text()
