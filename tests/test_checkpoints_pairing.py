"""The tie-aware pairing plan: the inventory (Checkpoints page) and the weight diff (Weights page) agree on tied heads."""

from __future__ import annotations

import pytest
from weight_factories import EMBED, HEAD, add_noise, grow_vocab, llama_tensors, save_checkpoint

from afterburn_core.checkpoints import resolve
from afterburn_core.checkpoints.pairing import build_inventory
from afterburn_core.config import AnalysisConfig
from afterburn_core.types import PlannedPair
from afterburn_core.views.inventory import inventory_view
from afterburn_core.weights.analysis import analyze_weights


def _both_views(tmp_path, base_tensors, trained_tensors):
    base = resolve(str(save_checkpoint(tmp_path / "base", base_tensors)))
    trained = resolve(str(save_checkpoint(tmp_path / "trained", trained_tensors)))
    return build_inventory(base, trained), analyze_weights(base, trained, AnalysisConfig(device="cpu")).tensors


def _assert_agree(inventory, tensors):
    assert {pair.name: pair.tied_to for pair in inventory.tied} == {
        tensor.name: tensor.tied_to for tensor in tensors if tensor.tied_to is not None}
    assert [entry.name for entry in inventory.base_only] == sorted(
        tensor.name for tensor in tensors if tensor.status == "base_only")
    assert [entry.name for entry in inventory.trained_only] == sorted(
        tensor.name for tensor in tensors if tensor.status == "trained_only")


def test_a_head_only_the_base_stores_is_tied_on_both_pages(tmp_path):
    """Base stores an untied lm_head; the trained model ties it (stores none): not 'base only' anywhere."""
    base_tensors = llama_tensors(seed=0, layers=1)
    trained_tensors = {name: tensor for name, tensor in add_noise(base_tensors).items() if name != HEAD}
    inventory, tensors = _both_views(tmp_path, base_tensors, trained_tensors)
    assert inventory.base_only == () and inventory.trained_only == ()
    # The trained file stores no head, so the record is named as the base stores it.
    assert inventory.tied == (PlannedPair("lm_head.weight", "lm_head.weight", "embed_tokens.weight",
                                          tied_to="embed_tokens.weight", stored_name="lm_head.weight"),)
    head = next(tensor for tensor in tensors if tensor.name == "lm_head.weight")
    assert (head.status, head.tied_to) == ("changed", "embed_tokens.weight")
    _assert_agree(inventory, tensors)


def test_a_head_neither_side_stores_is_one_tied_record(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1, tied=True)
    inventory, tensors = _both_views(tmp_path, base_tensors, add_noise(base_tensors))
    assert inventory.tied == (PlannedPair("lm_head.weight", None, None, tied_to="embed_tokens.weight", both_tied=True),)
    assert [tensor.status for tensor in tensors if tensor.name == "lm_head.weight"] == ["tied"]
    _assert_agree(inventory, tensors)


@pytest.mark.parametrize("drop", ["base", "trained"])
def test_an_untied_side_keeps_its_head_one_sided(tmp_path, drop):
    """A side whose config says untied and stores no head has no head: the other side's is one-sided on both pages."""
    with_head = llama_tensors(seed=0, layers=1)
    without_head = {name: tensor for name, tensor in with_head.items() if name != HEAD}
    base_dir = save_checkpoint(tmp_path / "base", without_head if drop == "base" else with_head, tied=False)
    trained_dir = save_checkpoint(tmp_path / "trained", without_head if drop == "trained" else with_head, tied=False)
    base, trained = resolve(str(base_dir)), resolve(str(trained_dir))
    inventory = build_inventory(base, trained)
    tensors = analyze_weights(base, trained, AnalysisConfig(device="cpu")).tensors
    assert inventory.tied == ()
    one_sided = inventory.trained_only if drop == "base" else inventory.base_only
    assert [entry.name for entry in one_sided] == ["lm_head.weight"]
    assert EMBED.removeprefix("model.") not in {entry.name for entry in one_sided}
    _assert_agree(inventory, tensors)


def test_the_checkpoints_page_names_tensors_as_each_file_stores_them(tmp_path):
    """The base saves ``model.``-prefixed keys, the trained file bare ones: each table shows the names a user
    finds in that file, the key the two pair by beside them."""
    base_tensors = llama_tensors(seed=0, layers=1)
    trained_tensors = grow_vocab(base_tensors, 8, names=(EMBED,))
    trained_tensors["model.layers.0.mlp.extra.weight"] = trained_tensors[EMBED][:2].clone()
    del trained_tensors["model.layers.0.post_attention_layernorm.weight"]
    base = resolve(str(save_checkpoint(tmp_path / "base", base_tensors)))
    trained = resolve(str(save_checkpoint(tmp_path / "trained", trained_tensors, prefix=False)))
    base_only, trained_only, reshaped = (tensors.table for tensors in inventory_view(
        build_inventory(base, trained)).lists)
    assert base_only["Tensor"] == ["model.layers.0.post_attention_layernorm.weight"]
    assert base_only["Key"] == ["layers.0.post_attention_layernorm.weight"]
    assert trained_only["Tensor"] == ["layers.0.mlp.extra.weight"]
    assert reshaped["Tensor"] == ["model.embed_tokens.weight → embed_tokens.weight"]
    assert reshaped["Key"] == ["embed_tokens.weight"]
