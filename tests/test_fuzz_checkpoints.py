"""Fuzzing what a checkpoint's files say (issue 13): real tiny safetensors files and shard indexes,
mutated byte by byte and field by field, go through resolution, the tensor index and the inventory.

The property: only ``AfterburnError``s come out, each a single line, each example within
``EXAMPLE_SECONDS``; and whatever resolves names no weight file outside its model folder.
Examples are derandomized (the same on every run, no example database) and few, so the module
runs in well under 30 s on two slow cores.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from afterburn_core.checkpoints import open_tensor_index, resolve
from afterburn_core.checkpoints.headers import SAFETENSORS_DTYPES
from afterburn_core.checkpoints.pairing import build_inventory
from afterburn_core.errors import AfterburnError

#: Wall-clock seconds one example may take: a valid tiny checkpoint resolves and inventories in
#: ~20 ms, so 5 s only trips on a hang or a blow-up (not on a slow shared machine).
EXAMPLE_SECONDS = 5.0
FUZZ_SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,  # the explicit EXAMPLE_SECONDS bound below is steadier on shared cores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4, "num_hidden_layers": 1,
          "num_attention_heads": 1, "vocab_size": 8, "tie_word_embeddings": False}


def _tensors(seed: int) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(seed)
    return {
        "model.embed_tokens.weight": generator.standard_normal((8, 4)).astype(np.float32),
        "model.layers.0.self_attn.q_proj.weight": generator.standard_normal((4, 4)).astype(np.float16),
        "model.norm.weight": np.ones(4, dtype=np.float32),
        "lm_head.weight": generator.standard_normal((8, 4)).astype(np.float32),
        "model.layers.0.mask": np.array([True, False]),
    }


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, bytes]:
    """Bytes of real files written by safetensors: one whole model and its two shards."""
    folder = tmp_path_factory.mktemp("originals")
    tensors = _tensors(0)
    names = sorted(tensors)
    save_file(tensors, folder / "model.safetensors")
    save_file({name: tensors[name] for name in names[::2]}, folder / "a.safetensors")
    save_file({name: tensors[name] for name in names[1::2]}, folder / "b.safetensors")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def _split(raw: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def check(build) -> None:
    """Write a model folder with ``build(folder)`` and push it through resolution, index and inventory."""
    scratch = Path(tempfile.mkdtemp(prefix="afterburn-fuzz-"))
    try:
        folder = scratch / "model"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(CONFIG))
        shutil.copy(Path(__file__), scratch / "outside.safetensors")  # something real beside the folder
        build(folder)
        started = time.perf_counter()
        try:
            checkpoint = resolve(str(folder))
            with open_tensor_index(checkpoint) as index:
                index.entries()
            build_inventory(checkpoint, checkpoint)
        except AfterburnError as error:
            assert "\n" not in str(error)
        else:
            for weight_file in checkpoint.weight_files:
                assert Path(os.path.realpath(weight_file)).is_relative_to(os.path.realpath(folder))
        assert time.perf_counter() - started < EXAMPLE_SECONDS
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- strategies -------------------------------------------------------------------------------------------

json_leaves = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)
shapes = st.lists(st.integers(min_value=-3, max_value=2**66), max_size=4) | json_values
offsets = st.lists(st.integers(min_value=-3, max_value=2**65), min_size=0, max_size=3) | json_values
dtypes = st.sampled_from(sorted(SAFETENSORS_DTYPES)) | st.text(max_size=8) | json_values
names = st.text(max_size=40) | st.sampled_from(["__metadata__", "model.model.norm.weight", "norm.weight", ""])


def _nest(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def header_edits(draw, header: dict) -> dict:
    """A copy of ``header`` with fields replaced, tensors renamed or dropped, values nested."""
    header = json.loads(json.dumps(header))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        tensor = draw(st.sampled_from(sorted(header)))
        action = draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra", "rename", "drop", "nest", "entry"]))
        entry = header.get(tensor)
        if action in ("dtype", "shape", "data_offsets") and isinstance(entry, dict):
            entry[action] = draw({"dtype": dtypes, "shape": shapes, "data_offsets": offsets}[action])
        elif action == "extra" and isinstance(entry, dict):
            entry[draw(st.text(max_size=6))] = draw(json_values)
        elif action == "rename":
            header[draw(names)] = header.pop(tensor)
        elif action == "drop" and len(header) > 1:
            del header[tensor]
        elif action == "nest":
            # json.dumps itself recurses, so nesting past ~900 is left to the byte-level test
            header[tensor] = _nest(entry, draw(st.integers(min_value=1, max_value=900)))
        elif action == "entry":
            header[tensor] = draw(json_values)
    return header


def _write_header(path: Path, header: object, data: bytes, length_delta: int, data_delta: int) -> None:
    encoded = json.dumps(header).encode()
    length = max(0, len(encoded) + length_delta)
    data = data[: max(0, len(data) + data_delta)] if data_delta < 0 else data + bytes(data_delta)
    path.write_bytes(length.to_bytes(8, "little") + encoded + data)


# -- the fuzz tests ------------------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_header_fields(originals, data):
    header, tensor_data = _split(originals["model.safetensors"])
    edited = data.draw(header_edits(header))
    length_delta = data.draw(st.sampled_from([0, 0, 0, -1, 1, -7, 2**40]))
    data_delta = data.draw(st.sampled_from([0, 0, 0, -1, -4, 3, 2**12]))
    check(lambda folder: _write_header(folder / "model.safetensors", edited, tensor_data, length_delta, data_delta))


@FUZZ_SETTINGS
@given(
    edits=st.lists(st.tuples(st.integers(min_value=0, max_value=2**20), st.integers(min_value=0, max_value=255)), max_size=8),
    keep=st.none() | st.integers(min_value=0, max_value=2**12),
    wrap=st.integers(min_value=0, max_value=100_000),
)
def test_mutated_bytes_and_nesting(originals, edits, keep, wrap):
    raw = bytearray(originals["model.safetensors"])
    header, tensor_data = _split(bytes(raw))
    if wrap:  # the whole header wrapped in arrays: a RecursionError before the JSON depth bound
        encoded = b"[" * wrap + json.dumps(header).encode() + b"]" * wrap
        raw = bytearray(len(encoded).to_bytes(8, "little") + encoded + tensor_data)
    for position, value in edits:
        raw[position % len(raw)] = value
    raw = raw if keep is None else raw[:keep]
    check(lambda folder: (folder / "model.safetensors").write_bytes(bytes(raw)))


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_shard_indexes(originals, data):
    shard_names = st.sampled_from(["a.safetensors", "b.safetensors"])
    hostile_names = st.sampled_from(
        ["../outside.safetensors", "./../outside.safetensors", "/etc/passwd", "", ".", "..", "link.safetensors",
         "sub/../a.safetensors", "x" * 300, "a.safetensors\x00", "missing.safetensors"]
    )
    tensor_names = sorted(_tensors(0))
    weight_map = {
        name: data.draw(shard_names | hostile_names | json_values | st.text(max_size=20)) for name in tensor_names
    }
    if data.draw(st.booleans()):
        weight_map = {name: ("a.safetensors" if index % 2 == 0 else "b.safetensors") for index, name in enumerate(tensor_names)}
        weight_map[data.draw(names)] = data.draw(shard_names | hostile_names)
    index_text = json.dumps({"metadata": data.draw(json_values), "weight_map": weight_map})
    shape = data.draw(st.sampled_from(["object"] * 4 + ["other", "deep"]))
    if shape == "other":
        index_text = json.dumps(data.draw(json_values))
    elif shape == "deep":
        index_text = "[" * 5000 + index_text + "]" * 5000

    def build(folder: Path) -> None:
        (folder / "a.safetensors").write_bytes(originals["a.safetensors"])
        (folder / "b.safetensors").write_bytes(originals["b.safetensors"])
        (folder / "link.safetensors").symlink_to(folder.parent / "outside.safetensors")
        (folder / "model.safetensors.index.json").write_text(index_text)

    check(build)
