"""The tensor index: headers only, names normalized, tensors read one at a time; summaries."""

from __future__ import annotations

import struct

import pytest
import torch
from checkpoint_factories import TINY_HIDDEN, TINY_LAYERS, TINY_VOCAB, copy_checkpoint, tiny_llama_model, tiny_world
from safetensors.torch import save_file

from afterburn_core.checkpoints import normalize_tensor_name, open_tensor_index, resolve, summarize
from afterburn_core.errors import BadCheckpoint


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("tiny_world"))


@pytest.fixture(scope="module")
def base_state_dict():
    return tiny_llama_model(seed=0).state_dict()


def test_normalize_tensor_name():
    assert normalize_tensor_name("model.layers.0.mlp.up_proj.weight") == "layers.0.mlp.up_proj.weight"
    assert normalize_tensor_name("layers.0.mlp.up_proj.weight") == "layers.0.mlp.up_proj.weight"
    assert normalize_tensor_name("lm_head.weight") == "lm_head.weight"
    assert (
        normalize_tensor_name("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        == "layers.0.self_attn.q_proj.lora_A.weight"
    )
    assert normalize_tensor_name("model.model.x") == "model.x"  # one prefix of each kind, once


def test_entries_match_the_model(world, base_state_dict):
    with open_tensor_index(resolve(str(world.base))) as index:
        entries = {entry.name: entry for entry in index.entries()}
        assert set(entries) == {normalize_tensor_name(name) for name in base_state_dict}
        for raw_name, tensor in base_state_dict.items():
            entry = entries[normalize_tensor_name(raw_name)]
            assert entry.shape == tuple(tensor.shape) and entry.dtype == "float32"
            assert index.source(entry.name) == (str(world.base / "model.safetensors"), raw_name)
        assert index.num_parameters == sum(tensor.numel() for tensor in base_state_dict.values())
        assert index.size_bytes == 4 * index.num_parameters
        assert index.parameters_by_dtype == {"float32": index.num_parameters}


def test_sharded_and_single_file_give_the_same_tensors(world):
    with open_tensor_index(resolve(str(world.base))) as single, open_tensor_index(resolve(str(world.sharded))) as sharded:
        assert sorted(single.entries(), key=lambda entry: entry.name) == sorted(sharded.entries(), key=lambda entry: entry.name)
        assert len({sharded.source(name)[0] for name in sharded.names()}) > 1
        for name in single.names():
            torch.testing.assert_close(single.load(name), sharded.load(name), rtol=0, atol=0)


def test_load_reads_the_saved_values_by_either_name(world, base_state_dict):
    with open_tensor_index(resolve(str(world.base))) as index:
        expected = base_state_dict["model.layers.1.self_attn.q_proj.weight"]
        torch.testing.assert_close(index.load("layers.1.self_attn.q_proj.weight"), expected, rtol=0, atol=0)
        torch.testing.assert_close(index.load("model.layers.1.self_attn.q_proj.weight"), expected, rtol=0, atol=0)
        assert "model.layers.1.self_attn.q_proj.weight" in index and "layers.9.x" not in index
        with pytest.raises(KeyError):
            index.load("layers.9.x")


def test_checkpoints_with_and_without_the_model_prefix_pair_up(world, base_state_dict, tmp_path):
    folder = copy_checkpoint(world.base, tmp_path / "bare")
    save_file({normalize_tensor_name(name): tensor.contiguous() for name, tensor in base_state_dict.items()}, str(folder / "model.safetensors"))
    with open_tensor_index(resolve(str(world.base))) as prefixed, open_tensor_index(resolve(str(folder))) as bare:
        assert {bare.source(name)[1] for name in bare.names()} == {
            normalize_tensor_name(name) for name in base_state_dict
        }
        assert set(prefixed.names()) == set(bare.names())
        for name in prefixed.names():
            torch.testing.assert_close(prefixed.load(name), bare.load(name), rtol=0, atol=0)


def test_adapter_factors_line_up_with_base_names(world):
    adapter = resolve(str(world.lora))
    with open_tensor_index(adapter) as factors, open_tensor_index(adapter.adapter_base) as base:
        names = factors.names()
        assert "layers.0.self_attn.q_proj.lora_A.weight" in names
        assert factors.source("layers.0.self_attn.q_proj.lora_A.weight")[1] == (
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        )
        for name in names:
            module = name.rsplit(".lora_", 1)[0]
            assert f"{module}.weight" in base
        lora_a = factors.entry("layers.0.self_attn.q_proj.lora_A.weight")
        assert lora_a.shape == (4, TINY_HIDDEN)


@pytest.mark.parametrize("dtype, name", [(torch.bfloat16, "bfloat16"), (torch.float16, "float16"), (torch.int8, "int8")])
def test_dtype_names_agree_between_safetensors_and_pickle(tmp_path, dtype, name):
    tensors = {"model.w": torch.ones(3, 5).to(dtype), "model.b": torch.zeros(5).to(dtype)}
    save_file(tensors, str(tmp_path / "w.safetensors"))
    torch.save(tensors, tmp_path / "w.bin")
    listed = []
    for file_name in ("w.safetensors", "w.bin"):
        with open_tensor_index(resolve(str(tmp_path / file_name))) as index:
            listed.append(sorted((entry.name, entry.shape, entry.dtype) for entry in index.entries()))
            assert index.size_bytes == 20 * dtype.itemsize
            assert index.load("w").dtype == dtype
    assert listed[0] == listed[1] == [("b", (5,), name), ("w", (3, 5), name)]


def test_index_reads_headers_only(world, tmp_path):
    """Garbage in the data region does not disturb the listing: no tensor byte is parsed."""
    folder = copy_checkpoint(world.base, tmp_path / "model")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    (header_length,) = struct.unpack("<Q", data[:8])
    data[8 + header_length :] = b"\xff" * (len(data) - 8 - header_length)
    weights.write_bytes(bytes(data))
    with open_tensor_index(resolve(str(world.base))) as original, open_tensor_index(resolve(str(folder))) as garbled:
        assert original.entries() == garbled.entries()


def test_names_that_collide_after_normalization_are_refused(tmp_path):
    save_file({"model.w": torch.ones(2), "w": torch.zeros(2)}, str(tmp_path / "both.safetensors"))
    with pytest.raises(BadCheckpoint) as error:
        open_tensor_index(resolve(str(tmp_path / "both.safetensors")))
    message = str(error.value)
    assert "both stand for 'w'; remove the duplicate or re-save the checkpoint." in message


def test_summarize_full_model(world):
    summary = summarize(resolve(str(world.sharded)))
    assert (summary.architecture, summary.model_type) == ("LlamaForCausalLM", "llama")
    assert (summary.num_layers, summary.hidden_size, summary.vocab_size) == (TINY_LAYERS, TINY_HIDDEN, TINY_VOCAB)
    assert summary.num_tensors == 21  # embed, 2 x (4 attn + 3 mlp + 2 norms), final norm, lm_head
    assert summary.num_parameters == tiny_llama_model(seed=0).num_parameters()
    assert summary.parameters_by_dtype == {"float32": summary.num_parameters}
    assert summary.size_bytes == 4 * summary.num_parameters


def test_summarize_adapter_reads_the_base_config_and_its_own_tensors(world):
    summary = summarize(resolve(str(world.lora)))
    assert (summary.architecture, summary.num_layers, summary.hidden_size) == ("LlamaForCausalLM", TINY_LAYERS, TINY_HIDDEN)
    assert summary.num_tensors == TINY_LAYERS * 2 * 2  # q_proj, v_proj x (A, B) per layer
    assert summary.num_parameters == TINY_LAYERS * 2 * 2 * 4 * TINY_HIDDEN


def test_summarize_file_without_config(world, tmp_path):
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes((world.base / "model.safetensors").read_bytes())
    summary = summarize(resolve(str(lonely)))
    assert summary.architecture is None and summary.num_layers is None
    assert summary.num_tensors == 21
