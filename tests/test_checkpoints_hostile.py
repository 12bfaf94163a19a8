"""Hostile checkpoints (issue 13): what a stranger's files say is bounded and checked, and each refusal
is one line naming the file, the tensor and the numbers — at resolution, before any tensor is read."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from checkpoint_factories import (
    copy_checkpoint,
    set_adapter_base,
    tiny_world,
    write_raw_safetensors,
    write_shard_index,
)
from cli_helpers import afterburn

from afterburn_core.checkpoints import budget, open_tensor_index, resolve
from afterburn_core.checkpoints.check import ReferenceCheck, check_reference
from afterburn_core.checkpoints.pairing import build_inventory
from afterburn_core.errors import BadCheckpoint, CheckpointNotFound
from afterburn_core.limits import MAX_JSON_DEPTH, MAX_TENSORS, quoted

#: JSON nested far past MAX_JSON_DEPTH and past CPython's recursion limit (a RecursionError before).
DEEP_JSON = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
DEEP_PROBLEM = f"nests deeper than {MAX_JSON_DEPTH} levels"


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("tiny_world"))


def refusal(reference: str, **options) -> str:
    """The one-line message ``resolve`` refuses ``reference`` with."""
    with pytest.raises(BadCheckpoint) as error:
        resolve(reference, **options)
    message = str(error.value)
    assert "\n" not in message and "\x1b" not in message
    return message


def not_safetensors(path: Path, problem: str) -> str:
    return f"{path} is not a valid safetensors file ({problem}); re-download or re-save it."


def model_with_weights(world, folder: Path, header: dict | bytes, data_size: int | None = None) -> Path:
    """The tiny model's config and tokenizer with ``model.safetensors`` replaced by a raw header."""
    copy_checkpoint(world.base, folder)
    write_raw_safetensors(folder / "model.safetensors", header, data_size)
    return folder / "model.safetensors"


def weight_names(path: Path) -> list[str]:
    length = int.from_bytes(path.read_bytes()[:8], "little")
    return [name for name in json.loads(path.read_bytes()[8 : 8 + length]) if name != "__metadata__"]


# -- tensor count and memory: refused from the headers, up front --------------------------------------


def test_too_many_tensors_in_one_header_is_refused_at_resolution(world, tmp_path):
    header = {str(number): {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for number in range(MAX_TENSORS + 1)}
    weights = model_with_weights(world, tmp_path / "model", header)
    started = time.perf_counter()
    message = refusal(str(tmp_path / "model"))
    assert message == not_safetensors(
        weights, f"it holds {MAX_TENSORS + 1:,} tensors, over the limit of {MAX_TENSORS:,} (limits.MAX_TENSORS)"
    )
    # Refused from the header at resolution (the message says so); the bound only catches a return to the
    # old path, which took 100 s to inventory on 2 idle cores, with room for a busy machine.
    assert time.perf_counter() - started < 300


def test_too_many_tensors_in_a_shard_index_is_refused_before_any_shard_is_read(world, tmp_path):
    folder = copy_checkpoint(world.sharded, tmp_path / "sharded")
    index = write_shard_index(folder, {f"t{number}": "model.safetensors" for number in range(MAX_TENSORS + 1)})
    assert refusal(str(folder)) == (
        f"{index} lists {MAX_TENSORS + 1:,} tensors, over the limit of {MAX_TENSORS:,} (limits.MAX_TENSORS); "
        "no real checkpoint holds that many: re-download or re-save it."
    )


def test_tensor_count_adds_up_across_shards_at_resolution_and_indexing(world, tmp_path, monkeypatch):
    folder = copy_checkpoint(world.sharded, tmp_path / "sharded")
    checkpoint = resolve(str(folder))
    shards = [Path(path) for path in checkpoint.weight_files]
    counts = [len(weight_names(shard)) for shard in shards]
    limit = sum(counts[:2]) - 1  # the second shard tips it over
    monkeypatch.setattr(budget, "MAX_TENSORS", limit)
    expected = (
        f"the weight files up to {shards[1]} hold {sum(counts[:2]):,} tensors, over the limit of {limit:,} "
        "(limits.MAX_TENSORS); no real checkpoint holds that many: re-download or re-save it."
    )
    assert refusal(str(folder)) == expected
    with pytest.raises(BadCheckpoint) as error:
        open_tensor_index(checkpoint)  # resolved before the files grew: the index checks again
    assert str(error.value) == expected


def test_too_many_weight_files_is_refused(world, tmp_path, monkeypatch):
    folder = copy_checkpoint(world.sharded, tmp_path / "sharded")
    files = len(resolve(str(folder)).weight_files)
    monkeypatch.setattr(budget, "MAX_WEIGHT_FILES", files - 1)
    assert refusal(str(folder)) == (
        f"{folder} has {files:,} weight files, over the limit of {files - 1:,} (limits.MAX_WEIGHT_FILES); "
        "no real checkpoint has that many: re-save it in fewer shards."
    )


def test_a_tensor_larger_than_memory_is_refused_from_its_header(world, tmp_path, monkeypatch):
    """A 1 TiB vector (a sparse file: no disk used) — the diff would read it whole."""
    size = 2**40
    weights = model_with_weights(world, tmp_path / "model", {"huge": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    assert refusal(str(tmp_path / "model")).startswith(f"tensor 'huge' in {weights} has shape [{size}]: the weight diff")
    monkeypatch.setattr("afterburn_core.limits.available_memory_bytes", lambda: 16 * 2**30)
    assert refusal(str(tmp_path / "model")) == (
        f"tensor 'huge' in {weights} has shape [{size}]: the weight diff needs at least 8,192.0 GiB for it "
        "(both sides of a vector or of one row, in fp32) but 16.0 GiB of memory is available; "
        "free memory or use a larger machine if the checkpoint is genuine."
    )


def test_a_matrix_larger_than_memory_that_streams_by_rows_is_accepted(world, tmp_path, monkeypatch):
    """4 GiB of fp32 on a machine with 1 GiB free: the diff reads it in row blocks, so it is no reason to refuse."""
    rows, cols = 2**20, 2**10
    header = {"embed_tokens.weight": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [0, 4 * rows * cols]}}
    model_with_weights(world, tmp_path / "model", header)
    monkeypatch.setattr("afterburn_core.limits.available_memory_bytes", lambda: 2**30)
    assert resolve(str(tmp_path / "model")).weight_files == (str(tmp_path / "model" / "model.safetensors"),)


# -- JSON nesting ---------------------------------------------------------------------------------------


def test_deeply_nested_safetensors_header_is_one_line(world, tmp_path):
    weights = model_with_weights(world, tmp_path / "model", DEEP_JSON.encode(), data_size=0)
    assert refusal(str(tmp_path / "model")) == not_safetensors(weights, DEEP_PROBLEM)


@pytest.mark.parametrize(
    ("source", "file_name", "what"),
    [
        ("base", "config.json", "model config"),
        ("lora", "adapter_config.json", "adapter config"),
        ("sharded", "model.safetensors.index.json", "shard index"),
    ],
)
def test_deeply_nested_json_files_are_one_line(world, tmp_path, source, file_name, what):
    folder = copy_checkpoint(getattr(world, source), tmp_path / source)
    (folder / file_name).write_text(DEEP_JSON)
    assert refusal(str(folder)) == (
        f"{folder / file_name} is not JSON afterburn reads ({DEEP_PROBLEM}); fix or re-download the {what}."
    )


# -- header fields ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"dtype": "F32", "shape": ["2", "2"], "data_offsets": [0, 16]}, "has shape ['2', '2'], not a list of integers ≥ 0"),
        ({"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}, "has shape 4, not a list of integers ≥ 0"),
        ({"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}, "has shape [-2, -2], not a list of integers ≥ 0"),
        ({"dtype": "F32", "shape": [True, 4], "data_offsets": [0, 16]}, "has shape [True, 4], not a list of integers ≥ 0"),
        ({"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}, "has shape [4.0], not a list of integers ≥ 0"),
        ({"dtype": "F33", "shape": [4], "data_offsets": [0, 16]}, "has dtype 'F33', not one of safetensors' dtypes"),
        ({"shape": [4], "data_offsets": [0, 16]}, "has dtype None, not one of safetensors' dtypes"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [16]}, "has data_offsets [16], not two integers"),
        ({"dtype": "F32", "shape": [4], "data_offsets": ["0", "16"]}, "has data_offsets ['0', '16'], not two integers"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [0, 8, 16]}, "has data_offsets [0, 8, 16], not two integers"),
        ({"dtype": "F32", "shape": [4], "data_offsets": 16}, "has data_offsets 16, not two integers"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}, "has data_offsets [16, 0], not 0 ≤ start ≤ end"),
        ({"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 16]},
         "of shape [2, 4] and dtype F32 does not take the 16 bytes its data_offsets span"),
        ({"dtype": "F4", "shape": [3], "data_offsets": [0, 16]},
         "of shape [3] and dtype F4 does not take the 16 bytes its data_offsets span"),
        ([0, 16], "is [0, 16], not an object with dtype, shape and data_offsets"),
    ],
)
def test_malformed_tensor_entries_name_the_file_and_tensor(world, tmp_path, entry, problem):
    weights = model_with_weights(world, tmp_path / "model", {"w": entry}, data_size=16)
    assert refusal(str(tmp_path / "model")) == not_safetensors(weights, f"tensor 'w' {problem}")


@pytest.mark.parametrize(
    ("header", "data_size", "problem"),
    [
        ({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}, "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}},
         12, "tensor 'b' starts at data byte 4, not 8 (tensors overlap or leave a gap)"),
        ({"a": {"dtype": "U8", "shape": [8], "data_offsets": [2, 10]}}, 10,
         "tensor 'a' starts at data byte 2, not 0 (tensors overlap or leave a gap)"),
        ({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, 12, "its tensors cover 8 of its 12 data bytes"),
        ({"__metadata__": {"format": 1}, "a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, 8,
         "__metadata__ is not an object of strings"),
    ],
)
def test_tensors_must_tile_the_data_as_safetensors_requires(world, tmp_path, header, data_size, problem):
    weights = model_with_weights(world, tmp_path / "model", header, data_size)
    assert refusal(str(tmp_path / "model")) == not_safetensors(weights, problem)


def test_a_hostile_tensor_name_is_quoted_and_cut(world, tmp_path):
    name = "\x1b]0;OWNED\x07\x1b[2J" + "x" * 100_000
    weights = model_with_weights(world, tmp_path / "model", {name: {"dtype": "F32", "shape": "big", "data_offsets": [0, 4]}})
    message = refusal(str(tmp_path / "model"))
    assert message == not_safetensors(weights, f"tensor {quoted(name)} has shape 'big', not a list of integers ≥ 0")
    assert "\\x1b]0;OWNED\\x07" in message and len(message) < len(str(weights)) + 400


def test_valid_exotic_dtypes_pass(world, tmp_path):
    header = {
        "packed": {"dtype": "F4", "shape": [4, 4], "data_offsets": [0, 8]},
        "micro": {"dtype": "F6_E2M3", "shape": [4], "data_offsets": [8, 11]},
        "empty": {"dtype": "BF16", "shape": [0, 16], "data_offsets": [11, 11]},
        "__metadata__": {"format": "pt"},
    }
    model_with_weights(world, tmp_path / "model", header)
    with open_tensor_index(resolve(str(tmp_path / "model"))) as index:
        assert [(entry.name, entry.dtype, entry.shape) for entry in index.entries()] == [
            ("packed", "float4_e2m1fn_x2", (4, 4)), ("micro", "F6_E2M3", (4,)), ("empty", "bfloat16", (0, 16))
        ]
        assert index.nbytes("micro") == 3


# -- adapters whose base leads back to themselves -------------------------------------------------------


def test_an_adapter_that_is_its_own_base_is_named_a_cycle(world, tmp_path):
    adapter = copy_checkpoint(world.lora, tmp_path / "adapter")
    set_adapter_base(adapter, ".")
    assert refusal(str(adapter)) == (
        f"adapter {adapter} has itself as base model ('.'), a cycle; point adapter_base at the full model it was "
        "trained on."
    )


@pytest.fixture
def adapter_cycle(world, tmp_path) -> tuple[Path, Path, str]:
    """Adapters a and b, each naming the other as its base, and the message that refuses a."""
    first, second = copy_checkpoint(world.lora, tmp_path / "a"), copy_checkpoint(world.lora, tmp_path / "b")
    set_adapter_base(first, "../b")
    set_adapter_base(second, str(first))
    message = (
        f"adapters {first} and {second} name each other as base model, a cycle ({first} → {second} → {first}); "
        "point adapter_base at the full model it was trained on."
    )
    return first, second, message


def test_two_adapters_naming_each_other_are_named_a_cycle(adapter_cycle):
    first, _, message = adapter_cycle
    assert refusal(str(first)) == message


def test_an_adapter_cycle_in_the_base_box_is_a_verdict_not_a_crash(adapter_cycle):
    first, _, message = adapter_cycle
    assert check_reference(str(first)) == ReferenceCheck(False, message)


def test_an_adapter_cycle_in_the_cli_is_one_line_exit_2(adapter_cycle):
    first, _, message = adapter_cycle
    result = afterburn("inspect", str(first))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: {message}"


# -- shard names stay in the model folder ---------------------------------------------------------------


def sharded_outside(world, tmp_path: Path, shard_name_of) -> tuple[Path, str]:
    """A model folder whose index maps every tensor to one shard named ``shard_name_of(outside)``;
    the real weights sit at ``<tmp_path>/outside.safetensors``, beside the folder."""
    folder = copy_checkpoint(world.base, tmp_path / "model")
    outside = tmp_path / "outside.safetensors"
    shutil.move(folder / "model.safetensors", outside)
    shard_name = shard_name_of(folder, outside)
    write_shard_index(folder, {name: shard_name for name in weight_names(outside)})
    return folder, shard_name


def outside_message(folder: Path, shard_name: str) -> str:
    return (
        f"shard {quoted(shard_name)} listed in model.safetensors.index.json is not a file inside {folder}; "
        "an index may only name files of its own folder: re-download the checkpoint."
    )


def _symlink_out(folder: Path, outside: Path) -> str:
    (folder / "link.safetensors").symlink_to(outside)
    return "link.safetensors"


def _symlinked_folder(folder: Path, outside: Path) -> str:
    (folder / "sub").symlink_to(outside.parent, target_is_directory=True)
    return "sub/outside.safetensors"


@pytest.mark.parametrize(
    "shard_name_of",
    [
        lambda folder, outside: "../outside.safetensors",
        lambda folder, outside: str(outside),
        lambda folder, outside: "./nested/../../outside.safetensors",
        _symlink_out,
        _symlinked_folder,
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlinked-file", "symlinked-folder"],
)
def test_an_index_may_not_name_files_outside_its_folder(world, tmp_path, shard_name_of):
    folder, shard_name = sharded_outside(world, tmp_path, shard_name_of)
    assert refusal(str(folder)) == outside_message(folder, shard_name)


def test_the_refusal_says_nothing_about_the_outside_file(world, tmp_path):
    folder, shard_name = sharded_outside(world, tmp_path, lambda folder, outside: "../outside.safetensors")
    when_present = refusal(str(folder))
    (tmp_path / "outside.safetensors").unlink()
    assert refusal(str(folder)) == when_present == outside_message(folder, shard_name)


def test_shards_in_a_subfolder_of_the_model_are_fine(world, tmp_path):
    folder = copy_checkpoint(world.base, tmp_path / "model")
    (folder / "weights").mkdir()
    shutil.move(folder / "model.safetensors", folder / "weights" / "all.safetensors")
    write_shard_index(folder, {name: "weights/all.safetensors" for name in weight_names(folder / "weights" / "all.safetensors")})
    checkpoint = resolve(str(folder))
    assert checkpoint.weight_files == (str(folder / "weights" / "all.safetensors"),)
    assert build_inventory(checkpoint, checkpoint).shared_tensors == len(weight_names(folder / "weights" / "all.safetensors"))


# -- base names the filesystem cannot take ----------------------------------------------------------------


BASE_CONTEXT = "the base model named in {config}; pass adapter_base (the CLI's `inspect --base`) to use a copy of it"


def test_an_adapter_base_with_a_nul_character_is_one_line(world, tmp_path):
    adapter = copy_checkpoint(world.lora, tmp_path / "adapter")
    set_adapter_base(adapter, "../base\x00.safetensors")
    with pytest.raises(CheckpointNotFound) as error:
        resolve(str(adapter))
    assert str(error.value) == (
        "the model reference '../base\\x00.safetensors' holds a NUL character; no path or Hub id does "
        f"({BASE_CONTEXT.format(config=adapter / 'adapter_config.json')})."
    )


def test_an_adapter_base_name_too_long_for_the_filesystem_is_one_line(world, tmp_path):
    adapter = copy_checkpoint(world.lora, tmp_path / "adapter")
    set_adapter_base(adapter, "x" * 5000)
    with pytest.raises(CheckpointNotFound) as error:
        resolve(str(adapter))
    assert str(error.value) == (
        f"{adapter / ('x' * 5000)} cannot be looked up (File name too long); check the path "
        f"({BASE_CONTEXT.format(config=adapter / 'adapter_config.json')})."
    )
