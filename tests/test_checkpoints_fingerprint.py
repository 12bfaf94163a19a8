"""Fingerprints change with any defining file, survive a copy, and are stable across calls."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct

import pytest
from checkpoint_factories import copy_checkpoint, tiny_world

import afterburn_core.checkpoints.fingerprint as fingerprint_module
from afterburn_core.checkpoints import recompute_fingerprint, resolve


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("tiny_world"))


def flip_byte(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def first_tensor_byte(safetensors_path) -> int:
    """Offset of the first byte of tensor data (past the header), so a flip keeps the file valid."""
    (header_length,) = struct.unpack("<Q", safetensors_path.read_bytes()[:8])
    return 8 + header_length


def test_stable_across_calls_and_recomputable(world):
    first = resolve(str(world.base))
    assert resolve(str(world.base)).fingerprint == first.fingerprint
    assert recompute_fingerprint(first) == first.fingerprint


def test_copy_elsewhere_keeps_the_fingerprint(world, tmp_path):
    copy = copy_checkpoint(world.base, tmp_path / "somewhere" / "else")
    assert resolve(str(copy)).fingerprint == resolve(str(world.base)).fingerprint


def test_different_models_differ(world):
    assert resolve(str(world.base)).fingerprint != resolve(str(world.trained)).fingerprint


@pytest.mark.parametrize("file_name", ["model.safetensors", "config.json", "tokenizer.json", "generation_config.json"])
def test_one_byte_changes_it(world, tmp_path, file_name):
    folder = copy_checkpoint(world.base, tmp_path / "model")
    before = resolve(str(folder)).fingerprint
    target = folder / file_name
    if file_name.endswith(".safetensors"):
        flip_byte(target, first_tensor_byte(target) + 3)
    else:
        text = target.read_text()
        target.write_text(text.replace('"', "'", 1) if file_name == "tokenizer.json" else text + " ")
    assert resolve(str(folder)).fingerprint != before


def test_one_byte_in_one_shard_changes_it(world, tmp_path):
    folder = copy_checkpoint(world.sharded, tmp_path / "sharded")
    before = resolve(str(folder)).fingerprint
    shard = sorted(folder.glob("model-*.safetensors"))[-1]
    flip_byte(shard, first_tensor_byte(shard))
    assert resolve(str(folder)).fingerprint != before


def test_unrelated_files_do_not_count(world, tmp_path):
    folder = copy_checkpoint(world.base, tmp_path / "model")
    before = resolve(str(folder)).fingerprint
    (folder / "README.md").write_text("notes")
    (folder / "training_log.txt").write_text("loss 1.0")
    assert resolve(str(folder)).fingerprint == before


def test_adapter_fingerprint_follows_its_base(world, tmp_path):
    base = copy_checkpoint(world.base, tmp_path / "base")
    adapter = copy_checkpoint(world.lora, tmp_path / "lora")  # adapter_config says ../base
    before = resolve(str(adapter))
    assert before.adapter_base.root == str(base)
    config = json.loads((base / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5 if config.get("rms_norm_eps") != 1e-5 else 1e-6
    (base / "config.json").write_text(json.dumps(config))
    after = resolve(str(adapter))
    assert after.adapter_base.fingerprint != before.adapter_base.fingerprint
    assert after.fingerprint != before.fingerprint

    flip_byte(adapter / "adapter_model.safetensors", first_tensor_byte(adapter / "adapter_model.safetensors"))
    assert resolve(str(adapter)).fingerprint != after.fingerprint


# -- the sampled digest of large files (limit lowered so the test files stay small) -------------------


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(fingerprint_module, "FULL_HASH_LIMIT", 1024)
    monkeypatch.setattr(fingerprint_module, "EDGE_BYTES", 4096)
    monkeypatch.setattr(fingerprint_module, "SAMPLE_BYTES", 512)


def test_large_file_digest_is_sampled_and_sees_edges_samples_and_mtime(small_limit, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(200_000))
    digest = fingerprint_module.file_digest(big)
    assert digest.startswith("sampled:")
    stat = big.stat()

    def after_flip(offset: int) -> str:
        flip_byte(big, offset)
        os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: only the bytes differ
        changed = fingerprint_module.file_digest(big)
        flip_byte(big, offset)
        os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return changed

    step = (200_000 - 512) // 15
    for offset in (0, 200_000 - 1, 7 * step + 10):  # first MiB, last MiB, one sample
        assert after_flip(offset) != digest
    assert fingerprint_module.file_digest(big) == digest

    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint_module.file_digest(big) != digest  # any rewrite moves the mtime

    preserved = tmp_path / "copy_with_times.bin"
    shutil.copy2(big, preserved)
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.utime(preserved, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint_module.file_digest(preserved) == digest


def test_small_files_are_hashed_whole(tmp_path):
    small = tmp_path / "config.json"
    small.write_bytes(b"{}" * 100)
    assert fingerprint_module.file_digest(small) == "sha256:" + hashlib.sha256(b"{}" * 100).hexdigest()


def test_hub_blob_named_by_sha256_gives_the_exact_digest(small_limit, tmp_path):
    content = os.urandom(50_000)
    blobs = tmp_path / "models--o--n" / "blobs"
    blobs.mkdir(parents=True)
    blob = blobs / hashlib.sha256(content).hexdigest()
    blob.write_bytes(content)
    link = tmp_path / "models--o--n" / "snapshots" / "abc" / "model.safetensors"
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    assert fingerprint_module.file_digest(link) == "sha256:" + hashlib.sha256(content).hexdigest()
