"""Configs parsed once at resolution: the ModelDescription every later stage reads instead of the JSON."""

from __future__ import annotations

import json

import pytest
from weight_factories import llama_tensors, save_checkpoint, write_lora_adapter

from afterburn_core.checkpoints import resolution, resolve, resolve_pair
from afterburn_core.checkpoints.description import describe_model
from afterburn_core.errors import BadCheckpoint
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.types import AdapterDescription, ModelDescription, ResolvedCheckpoint


def test_legacy_gpt2_keys():
    description = describe_model({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 2,
                                  "n_embd": 64, "n_head": 4, "vocab_size": 100, "torch_dtype": "torch.float16"})
    assert description == ModelDescription(
        architecture="GPT2LMHeadModel", model_type="gpt2", num_layers=2, hidden_size=64, num_heads=4,
        num_kv_heads=4, head_dim=16, vocab_size=100, tie_word_embeddings=None, torch_dtype="float16")


def test_multimodal_text_config_and_wrong_types_are_none():
    description = describe_model({
        "architectures": "not a list", "model_type": 3,
        "text_config": {"num_hidden_layers": 3, "hidden_size": 48, "num_attention_heads": 6,
                        "num_key_value_heads": 2, "vocab_size": 50, "tie_word_embeddings": False},
    })
    assert description == ModelDescription(num_layers=3, hidden_size=48, num_heads=6, num_kv_heads=2, head_dim=8,
                                           vocab_size=50, tie_word_embeddings=False)


@pytest.fixture
def lora_pair(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1, hidden=32, vocab=64)
    save_checkpoint(tmp_path / "base", base_tensors)
    write_lora_adapter(tmp_path / "adapter", base_tensors, rank=4, alpha=8.0, alpha_pattern={"v_proj": 3.0})
    return tmp_path / "base", tmp_path / "adapter"


def test_resolve_describes_the_model_and_an_adapter_on_its_base(lora_pair):
    base_dir, adapter_dir = lora_pair
    base, adapter = resolve_pair(str(base_dir), str(adapter_dir))
    assert base.description == ModelDescription(
        architecture="LlamaForCausalLM", model_type="llama", num_layers=1, hidden_size=32, vocab_size=64,
        tie_word_embeddings=False)
    assert adapter.description.adapter == AdapterDescription(
        peft_type="LORA", base_model_name_or_path="../base", rank=4, alpha=8.0, use_rslora=False, rank_pattern=(),
        alpha_pattern=(("v_proj", 3.0),), target_modules=("q_proj", "v_proj"), fan_in_fan_out=False, use_dora=False)
    assert adapter.description == ModelDescription(**{**vars(base.description), "adapter": adapter.description.adapter})
    assert from_jsonable(ResolvedCheckpoint, json.loads(json.dumps(to_jsonable(adapter)))) == adapter


def test_an_adapter_on_the_run_base_resolves_the_base_once(lora_pair, monkeypatch):
    base_dir, adapter_dir = lora_pair
    fingerprinted = []
    original = resolution.fingerprint_files
    monkeypatch.setattr(resolution, "fingerprint_files",
                        lambda root, *args: fingerprinted.append(root) or original(root, *args))
    base, adapter = resolve_pair(str(base_dir), str(adapter_dir))
    assert fingerprinted == [base_dir, adapter_dir]
    assert adapter.adapter_base is base


@pytest.mark.parametrize("key, value, expected", [
    ("r", "four", "a positive integer"),
    ("lora_alpha", -1, "a number ≥ 0"),
    ("use_rslora", "no", "true or false"),
    ("rank_pattern", {"q_proj": 2.5}, "an object of module patterns to positive integers"),
    ("target_modules", [1, 2], "a list of module names or a regex string"),
])
def test_a_malformed_adapter_config_names_the_file_and_key(lora_pair, key, value, expected):
    base_dir, adapter_dir = lora_pair
    config_file = adapter_dir / "adapter_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), key: value}))
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(adapter_dir), adapter_base=str(base_dir))
    assert str(error.value) == f"{config_file}: {key} is {value!r}, not {expected}; fix it or re-save the adapter with peft."
