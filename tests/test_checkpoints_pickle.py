"""Pickle checkpoints: hostile payloads are refused before they run; honest ones load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from checkpoint_factories import build_pickle_checkpoint, tiny_llama_model, tiny_world, write_malicious_pickle

from afterburn_core.checkpoints import open_tensor_index, resolve
from afterburn_core.errors import BadCheckpoint, UnsafeCheckpoint
from afterburn_core.types import ResolvedCheckpoint


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("tiny_world"))


def unsafe_message(path) -> str:
    return (
        f"{path} holds pickled code that weights_only loading refuses (Unsupported global: GLOBAL getattr); "
        "it was not run. Convert it to safetensors or load it only if you trust it."
    )


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch.save zip", "legacy"])
@pytest.mark.parametrize("shell", [False, True], ids=["Path.touch", "os.system"])
def test_payload_is_live_when_loaded_unsafely(tmp_path, zip_format, shell):
    """The payloads the other tests use really run under a plain unpickler (so they can fail)."""
    marker = tmp_path / "pwned"
    evil = write_malicious_pickle(tmp_path / "evil.bin", marker, zip_format=zip_format, shell=shell)
    torch.load(evil, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch.save zip", "legacy"])
def test_shell_payload_is_refused(tmp_path, zip_format):
    marker = tmp_path / "pwned"
    evil = write_malicious_pickle(tmp_path / "pytorch_model.bin", marker, zip_format=zip_format, shell=True)
    with pytest.raises(UnsafeCheckpoint) as error:
        resolve(str(evil))
    message = str(error.value)
    assert message.startswith(f"{evil} holds pickled code that weights_only loading refuses (")
    assert "GLOBAL posix.system" in message and "\n" not in message and message.endswith("it was not run. Convert it to safetensors or load it only if you trust it.")
    assert not marker.exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch.save zip", "legacy"])
def test_malicious_pytorch_model_bin_in_a_folder_is_refused(world, tmp_path, zip_format):
    marker = tmp_path / "pwned"
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(world.pickle / "config.json", folder)
    evil = write_malicious_pickle(folder / "pytorch_model.bin", marker, zip_format=zip_format)
    with pytest.raises(UnsafeCheckpoint) as error:
        resolve(str(folder))
    assert str(error.value) == unsafe_message(evil)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth"])
def test_malicious_single_file_is_refused(tmp_path, suffix):
    marker = tmp_path / "pwned"
    evil = write_malicious_pickle(tmp_path / f"weights{suffix}", marker)
    with pytest.raises(UnsafeCheckpoint) as error:
        resolve(str(evil))
    assert str(error.value) == unsafe_message(evil)
    assert not marker.exists()


def test_malicious_second_shard_is_refused(world, tmp_path):
    marker = tmp_path / "pwned"
    folder = build_pickle_checkpoint(tmp_path / "sharded", shards=2)
    second_shard = folder / "pytorch_model-00002-of-00002.bin"
    write_malicious_pickle(second_shard, marker)
    with pytest.raises(UnsafeCheckpoint) as error:
        resolve(str(folder))
    assert str(error.value) == unsafe_message(second_shard)
    assert not marker.exists()


def test_tensor_index_refuses_a_payload_even_without_resolve(tmp_path):
    """The loader itself is safe: a checkpoint record built by hand does not bypass it."""
    marker = tmp_path / "pwned"
    evil = write_malicious_pickle(tmp_path / "pytorch_model.bin", marker)
    checkpoint = ResolvedCheckpoint(
        reference=str(evil), kind="pickle_file", root=str(tmp_path), weight_files=(str(evil),),
        weight_format="pickle", config_path=None, fingerprint="0" * 64,
    )
    with pytest.raises(UnsafeCheckpoint):
        open_tensor_index(checkpoint)
    assert not marker.exists()


def test_unreadable_pickle_is_bad_not_unsafe(tmp_path):
    garbage = tmp_path / "pytorch_model.bin"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(garbage))
    assert not isinstance(error.value, UnsafeCheckpoint)
    message = str(error.value)
    assert message.startswith(f"{garbage} is not a readable PyTorch checkpoint (") and message.endswith("re-download or re-save it.")
    assert "\n" not in message


def test_pickle_without_tensors_is_bad(tmp_path):
    path = tmp_path / "numbers.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(path))
    assert str(error.value) == (
        f"{path} holds no state dict of tensors (found dict); save the model's state_dict() or use safetensors."
    )


def test_legit_bin_loads_every_tensor(world):
    expected = tiny_llama_model(seed=0).state_dict()
    checkpoint = resolve(str(world.pickle))
    with open_tensor_index(checkpoint) as index:
        assert {index.source(name)[1] for name in index.names()} == set(expected)
        for entry in index.entries():
            raw_name = index.source(entry.name)[1]
            tensor = index.load(entry.name)
            assert entry.dtype == "float32" and entry.shape == tuple(expected[raw_name].shape)
            torch.testing.assert_close(tensor, expected[raw_name], rtol=0, atol=0)


def test_sharded_bin_and_nested_state_dict(tmp_path):
    folder = build_pickle_checkpoint(tmp_path / "sharded", shards=3)
    checkpoint = resolve(str(folder))
    index_json = json.loads((folder / "pytorch_model.bin.index.json").read_text())
    assert len(checkpoint.weight_files) == 3
    with open_tensor_index(checkpoint) as index:
        assert len(index) == len(index_json["weight_map"])

    lightning = tmp_path / "lightning.ckpt.pt"
    torch.save({"epoch": 1, "state_dict": {"model.w": torch.ones(2, 2, dtype=torch.bfloat16)}}, lightning)
    with open_tensor_index(resolve(str(lightning))) as index:
        assert [(entry.name, entry.shape, entry.dtype) for entry in index.entries()] == [("w", (2, 2), "bfloat16")]
