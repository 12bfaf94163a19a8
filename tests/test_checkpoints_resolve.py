"""resolve(): every local reference kind, adapters, demo names, and the errors a user sees."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from checkpoint_factories import copy_checkpoint, set_adapter_base, tiny_world

from afterburn_core.checkpoints import resolve, resolve_pair
from afterburn_core.checkpoints.references import parse_reference
from afterburn_core.errors import BadCheckpoint, CheckpointNotFound
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.types import ResolvedCheckpoint


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("tiny_world"))


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_local_folder(world):
    checkpoint = resolve(str(world.base))
    assert checkpoint.kind == "local_dir"
    assert checkpoint.root == str(world.base)
    assert checkpoint.weight_files == (str(world.base / "model.safetensors"),)
    assert checkpoint.weight_format == "safetensors"
    assert checkpoint.config_path == str(world.base / "config.json")
    assert checkpoint.revision is None and checkpoint.adapter_base is None
    assert len(checkpoint.fingerprint) == 64


def test_relative_folder_is_made_absolute(world, monkeypatch):
    monkeypatch.chdir(world.root)
    checkpoint = resolve("./base")
    assert checkpoint.reference == "./base"
    assert checkpoint.root == str(world.base)
    assert checkpoint.fingerprint == resolve(str(world.base)).fingerprint


def test_sharded_folder_lists_every_shard_sorted_and_absolute(world):
    checkpoint = resolve(str(world.sharded))
    index = json.loads((world.sharded / "model.safetensors.index.json").read_text())
    expected = sorted(str(world.sharded / name) for name in set(index["weight_map"].values()))
    assert len(expected) > 1
    assert checkpoint.weight_files == tuple(expected)
    assert all(Path(path).is_absolute() for path in checkpoint.weight_files)


def test_missing_shard_is_named(world, tmp_path):
    folder = copy_checkpoint(world.sharded, tmp_path / "sharded")
    missing = sorted(folder.glob("model-*.safetensors"))[1]
    missing.unlink()
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(folder))
    assert one_line(error) == (
        f"shard {missing.name} listed in model.safetensors.index.json is missing from {folder}; "
        "re-download the checkpoint or copy the missing shard."
    )


def test_single_safetensors_file(world, tmp_path):
    checkpoint = resolve(str(world.base / "model.safetensors"))
    assert checkpoint.kind == "safetensors_file"
    assert checkpoint.root == str(world.base)
    assert checkpoint.config_path == str(world.base / "config.json")
    lonely = tmp_path / "lonely.safetensors"
    shutil.copy(world.base / "model.safetensors", lonely)
    assert resolve(str(lonely)).config_path is None


def test_truncated_safetensors_file_is_bad(world, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((world.base / "model.safetensors").read_bytes()[:-100])
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(broken))
    message = one_line(error)
    assert message.startswith(f"{broken} is not a valid safetensors file (tensor ")
    assert message.endswith("lies past the end of the file (truncated download?)); re-download or re-save it.")


def test_pickle_folder_and_file(world):
    folder = resolve(str(world.pickle))
    assert folder.kind == "local_dir" and folder.weight_format == "pickle"
    assert folder.weight_files == (str(world.pickle / "pytorch_model.bin"),)
    single = resolve(str(world.pickle / "pytorch_model.bin"))
    assert single.kind == "pickle_file" and single.weight_format == "pickle"
    assert single.config_path == str(world.pickle / "config.json")


def test_missing_config_is_bad(world, tmp_path):
    folder = copy_checkpoint(world.base, tmp_path / "noconfig")
    (folder / "config.json").unlink()
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(folder))
    assert one_line(error) == (
        f"{folder} has weights but no config.json; copy the config.json of the model these weights come from."
    )


def test_broken_config_names_the_file(world, tmp_path):
    folder = copy_checkpoint(world.base, tmp_path / "badconfig")
    (folder / "config.json").write_text('{"model_type": "llama",')
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(folder))
    assert one_line(error).startswith(f"{folder / 'config.json'} is not valid JSON (line 1, column ")


def test_folder_without_weights_points_at_checkpoint_subfolders(world, tmp_path):
    run_folder = tmp_path / "run"
    copy_checkpoint(world.base, run_folder / "checkpoint-500")
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(run_folder))
    assert one_line(error) == (
        f"no weight files (*.safetensors, *.bin, *.pt, *.gguf) in {run_folder}; it holds checkpoint folders "
        "(checkpoint-500): point at one of them."
    )


def test_trainer_state_files_are_not_weights(world, tmp_path):
    folder = tmp_path / "trainer"
    folder.mkdir()
    shutil.copy(world.pickle / "config.json", folder)
    shutil.copy(world.pickle / "pytorch_model.bin", folder / "pytorch_model.bin")
    shutil.copy(world.pickle / "pytorch_model.bin", folder / "optimizer.pt")
    shutil.copy(world.pickle / "pytorch_model.bin", folder / "training_args.bin")
    assert resolve(str(folder)).weight_files == (str(folder / "pytorch_model.bin"),)


@pytest.mark.parametrize("reference", ["./nowhere", "/nowhere/at/all", "~/nowhere-afterburn", "a/b/c", "model.safetensors", "lonely"])
def test_missing_local_paths(reference, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFound) as error:
        resolve(reference)
    expected_path = (tmp_path / Path(reference).expanduser()).absolute()
    assert one_line(error) == (
        f"no folder or file at {expected_path}; check the path (a Hugging Face model is written owner/name)."
    )


def test_existing_path_wins_over_hub_id(world, tmp_path, monkeypatch):
    copy_checkpoint(world.base, tmp_path / "owner" / "name")
    monkeypatch.chdir(tmp_path)
    checkpoint = resolve("owner/name")
    assert checkpoint.kind == "local_dir"
    assert checkpoint.root == str(tmp_path / "owner" / "name")


def test_hub_ids_are_parsed_without_io(tmp_path):
    parsed = parse_reference("Qwen/Qwen2.5-0.5B@refs/pr/1", relative_to=tmp_path)
    assert (parsed.kind, parsed.repo_id, parsed.revision) == ("hub", "Qwen/Qwen2.5-0.5B", "refs/pr/1")
    assert parse_reference("owner/name", relative_to=tmp_path).revision is None
    assert parse_reference("owner/name/extra", relative_to=tmp_path).kind == "path"
    assert parse_reference("owner/weights.bin", relative_to=tmp_path).kind == "path"
    with pytest.raises(CheckpointNotFound) as error:
        parse_reference("owner/name@", relative_to=tmp_path)
    assert one_line(error) == "'owner/name@' ends with '@' but names no revision; write owner/name@<branch, tag or commit sha>."


def test_adapter_base_from_relative_path_in_adapter_config(world):
    adapter = resolve(str(world.lora))
    assert adapter.kind == "adapter"
    assert adapter.weight_files == (str(world.lora / "adapter_model.safetensors"),)
    assert adapter.config_path == str(world.lora / "adapter_config.json")
    assert adapter.adapter_base is not None
    assert adapter.adapter_base.kind == "local_dir"
    assert adapter.adapter_base.root == str(world.base)
    assert adapter.adapter_base.fingerprint == resolve(str(world.base)).fingerprint


def test_adapter_base_argument_overrides_adapter_config(world, tmp_path):
    other_base = copy_checkpoint(world.trained, tmp_path / "other_base")
    adapter = resolve(str(world.lora), adapter_base=str(other_base))
    assert adapter.adapter_base.root == str(other_base)
    assert adapter.fingerprint != resolve(str(world.lora)).fingerprint


def test_adapter_base_absolute_path_in_adapter_config(world, tmp_path):
    adapter_folder = copy_checkpoint(world.lora, tmp_path / "lora")
    set_adapter_base(adapter_folder, str(world.trained))
    assert resolve(str(adapter_folder)).adapter_base.root == str(world.trained)


def test_adapter_base_missing_relative_path(world, tmp_path):
    adapter_folder = copy_checkpoint(world.lora, tmp_path / "lora")  # ../base does not exist here
    with pytest.raises(CheckpointNotFound) as error:
        resolve(str(adapter_folder))
    assert one_line(error) == (
        f"no folder or file at {tmp_path / 'base'}; check the path (a Hugging Face model is written owner/name) "
        f"(the base model named in {adapter_folder / 'adapter_config.json'}; pass adapter_base (the CLI's "
        "`inspect --base`) to use a copy of it)."
    )


def test_adapter_without_base_name_needs_adapter_base(world, tmp_path):
    adapter_folder = copy_checkpoint(world.lora, tmp_path / "lora")
    set_adapter_base(adapter_folder, None)
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(adapter_folder))
    assert one_line(error) == (
        f"{adapter_folder / 'adapter_config.json'} names no base_model_name_or_path; pass adapter_base "
        "(the CLI's `inspect --base`) to say which model the adapter applies to."
    )
    assert resolve(str(adapter_folder), adapter_base=str(world.base)).adapter_base.root == str(world.base)


def test_broken_adapter_config_names_the_file(world, tmp_path):
    adapter_folder = copy_checkpoint(world.lora, tmp_path / "lora")
    (adapter_folder / "adapter_config.json").write_text("[1, 2]")
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(adapter_folder), adapter_base=str(world.base))
    assert one_line(error) == (
        f"{adapter_folder / 'adapter_config.json'} holds a JSON list, not an object; fix or re-download the adapter config."
    )


def test_adapter_without_weights(world, tmp_path):
    adapter_folder = copy_checkpoint(world.lora, tmp_path / "lora")
    (adapter_folder / "adapter_model.safetensors").unlink()
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(adapter_folder), adapter_base=str(world.base))
    assert "has adapter_config.json but no adapter_model.safetensors or adapter_model.bin" in one_line(error)


def test_adapter_base_that_is_an_adapter_is_refused(world, tmp_path):
    other_adapter = copy_checkpoint(world.lora, tmp_path / "other_adapter")
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(world.lora), adapter_base=str(other_adapter))
    assert one_line(error) == (
        f"base model {str(other_adapter)!r} of adapter {world.lora} is itself an adapter; "
        "point adapter_base at the full model it was trained on."
    )


def test_adapter_base_for_a_full_model_is_an_error(world):
    with pytest.raises(BadCheckpoint) as error:
        resolve(str(world.base), adapter_base=str(world.trained))
    assert one_line(error) == (
        f"adapter_base {str(world.trained)!r} was given but {str(world.base)!r} is not a peft adapter "
        "(no adapter_config.json); drop adapter_base or point at the adapter folder."
    )


def test_resolved_checkpoint_round_trips_through_json(world):
    adapter = resolve(str(world.lora))
    text = json.dumps(to_jsonable(adapter))
    assert from_jsonable(ResolvedCheckpoint, json.loads(text)) == adapter


def test_resolution_is_stable(world):
    assert resolve(str(world.sharded)) == resolve(str(world.sharded))


# -- demo references ------------------------------------------------------------------------------


@pytest.fixture
def fake_demo(world, monkeypatch):
    """Stand-in for afterburn_core.demo (built by another module) pointing at the tiny world."""
    module = types.ModuleType("afterburn_core.demo")
    module.DEMO_MODELS = {"base": world.base, "trained": world.trained, "lora": world.lora, "control": world.sharded}
    monkeypatch.setitem(sys.modules, "afterburn_core.demo", module)
    return module


def test_demo_names(fake_demo, world):
    assert resolve("demo").reference == "demo:base"
    assert resolve("demo").root == str(world.base)
    assert resolve("demo:trained").root == str(world.trained)
    assert resolve("demo:control").root == str(world.sharded)
    lora = resolve("demo:lora")
    assert lora.kind == "adapter" and lora.adapter_base.root == str(world.base)


def test_resolve_pair_maps_bare_demo_to_trained(fake_demo, world):
    base, trained = resolve_pair("demo", "demo")
    assert (base.reference, trained.reference) == ("demo:base", "demo:trained")
    assert (base.root, trained.root) == (str(world.base), str(world.trained))
    base, trained = resolve_pair(str(world.base), "demo:lora")
    assert trained.kind == "adapter"


def test_resolve_pair_applies_adapter_base_to_the_adapter_side(world, tmp_path):
    other_base = copy_checkpoint(world.base, tmp_path / "other_base")
    base, trained = resolve_pair(str(world.base), str(world.lora), adapter_base=str(other_base))
    assert base.adapter_base is None and trained.adapter_base.root == str(other_base)
    with pytest.raises(BadCheckpoint):
        resolve_pair(str(world.base), str(world.trained), adapter_base=str(other_base))


def test_resolve_pair_applies_a_trained_adapter_to_the_runs_base(world, tmp_path):
    """The adapter's config names a hub id that is not here; the run's base is used instead."""
    adapter = copy_checkpoint(world.lora, tmp_path / "adapter")
    set_adapter_base(adapter, "nobody/not-downloaded")
    local_base = copy_checkpoint(world.base, tmp_path / "local_base")
    base, trained = resolve_pair(str(local_base), str(adapter))
    assert trained.adapter_base == base


def test_unknown_demo_lists_the_valid_ones(fake_demo):
    with pytest.raises(CheckpointNotFound) as error:
        resolve("demo:nope")
    assert one_line(error) == (
        "unknown demo model 'demo:nope'; choose one of demo:base, demo:control, demo:lora, demo:trained."
    )


def test_demo_model_missing_on_disk(fake_demo, tmp_path):
    fake_demo.DEMO_MODELS = {"base": tmp_path / "gone"}
    with pytest.raises(CheckpointNotFound) as error:
        resolve("demo:base")
    assert one_line(error) == (
        f"the demo model demo:base is missing at {tmp_path / 'gone'}; reinstall afterburn or rebuild the demo models."
    )
