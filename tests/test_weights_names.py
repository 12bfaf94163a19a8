"""Tensor rows carry the name their checkpoint stores, with the normalized key they pair by beside it.

Issue 15 item 6: a row named ``layers.5.self_attn.q_proj.weight`` cannot be
found in a file that stores ``model.layers.5.self_attn.q_proj.weight``, nor in
peft's ``target_modules``. Real safetensors pairs, one side saved with the
``model.`` prefix and the other without, and a peft adapter whose factors sit
under ``base_model.model.``; each is checked in the typed result, its JSON,
the views, and the terminal.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
from dataclasses import replace
import torch
from rich.console import Console
from weight_factories import (
    EMBED,
    NORM,
    Q_PROJ,
    add_noise,
    llama_tensors,
    plant_low_rank,
    rescale,
    save_checkpoint,
    write_lora_adapter,
)

from afterburn_core.checkpoints import resolve
from afterburn_core.errors import ShapeMismatch
from afterburn_core.serde import to_jsonable
from afterburn_core.terminal import print_weight_diff
from afterburn_core.views import weights_detail
from afterburn_core.views.weights import display_names, find_tensors, ranked_tensors, tensor_cells, tensor_table
from afterburn_core.config import AnalysisConfig
from afterburn_core.weights.analysis import analyze_weights

CPU = AnalysisConfig(device="cpu")
SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "weight-diff.schema.json").read_text())
#: Tensors planted on one side only; ``llama_tensors`` spells every trunk tensor with the ``model.`` prefix.
BASE_ONLY = "model.layers.0.self_attn.rotary_emb.inv_freq"
TRAINED_ONLY = "model.layers.0.mlp.added_proj.weight"


def key(name: str) -> str:
    return name.removeprefix("model.")


def spelled(name: str, prefixed: bool) -> str:
    """``name`` as a checkpoint saved with (or without) the ``model.`` prefix stores it."""
    return name if prefixed else key(name)


@pytest.fixture(scope="module", params=["base", "trained"], ids=["prefix-on-base", "prefix-on-trained"])
def mixed_pair(request, tmp_path_factory):
    """A pair, the ``model.`` prefix saved on one side only; a planted q_proj edit, a rescaled norm, one tensor
    on each side only. Returns (which side has the prefix, result)."""
    root = tmp_path_factory.mktemp(request.param)
    base_tensors = llama_tensors(seed=0, layers=2, hidden=64, vocab=128)
    base_tensors[BASE_ONLY] = torch.arange(8, dtype=torch.float32)
    trained_tensors = rescale(plant_low_rank(add_noise(base_tensors), Q_PROJ, rank=2), NORM, 1.5)
    del trained_tensors[BASE_ONLY]
    trained_tensors[TRAINED_ONLY] = torch.ones(4, 64)
    base = resolve(str(save_checkpoint(root / "base", base_tensors, prefix=request.param == "base")))
    trained = resolve(str(save_checkpoint(root / "trained", trained_tensors, prefix=request.param == "trained")))
    return request.param, analyze_weights(base, trained, CPU)


def test_rows_carry_each_sides_stored_name_and_still_pair(mixed_pair):
    prefixed, result = mixed_pair
    on_base, on_trained = prefixed == "base", prefixed == "trained"
    records = {record.name: record for record in result.tensors}
    # Still paired by key: only the two planted tensors are one-sided.
    assert {(record.name, record.status) for record in result.tensors if record.status.endswith("_only")} == {
        (key(BASE_ONLY), "base_only"), (key(TRAINED_ONLY), "trained_only")}
    edit = records[key(Q_PROJ)]
    assert edit.status == "changed" and edit.rank_90 == 2
    # A paired row is named as the post-trained file stores it, and the base's spelling is kept beside it.
    assert (edit.stored_name, edit.base_stored_name) == (spelled(Q_PROJ, on_trained), spelled(Q_PROJ, on_base))
    assert edit.display_name == spelled(Q_PROJ, on_trained)
    # One-sided rows carry their own side's spelling.
    assert (records[key(BASE_ONLY)].stored_name, records[key(BASE_ONLY)].base_stored_name) == (
        spelled(BASE_ONLY, on_base), None)
    assert (records[key(TRAINED_ONLY)].stored_name, records[key(TRAINED_ONLY)].base_stored_name) == (
        spelled(TRAINED_ONLY, on_trained), None)
    # lm_head sits outside the trunk: both files store it as lm_head.weight.
    assert (records["lm_head.weight"].stored_name, records["lm_head.weight"].base_stored_name) == (
        "lm_head.weight", None)


def test_the_json_keeps_name_as_the_key_and_adds_the_stored_names(mixed_pair):
    prefixed, result = mixed_pair
    document = json.loads(json.dumps(to_jsonable(result)))
    jsonschema.validate(document, SCHEMA)
    row = next(tensor for tensor in document["tensors"] if tensor["name"] == key(Q_PROJ))
    assert (row["stored_name"], row["base_stored_name"]) == (
        spelled(Q_PROJ, prefixed == "trained"), spelled(Q_PROJ, prefixed == "base"))
    # A schema-1 document written before the field existed still validates.
    for tensor in document["tensors"]:
        del tensor["stored_name"], tensor["base_stored_name"]
    jsonschema.validate(document, SCHEMA)


def test_every_view_shows_the_stored_name_and_search_finds_either(mixed_pair):
    prefixed, result = mixed_pair
    on_base, on_trained = prefixed == "base", prefixed == "trained"
    ranked = ranked_tensors(result)
    assert ranked.reading.startswith(f"{spelled(Q_PROJ, on_trained)} changed most: relative change ")
    table = tensor_table(ranked.tensors)
    assert (table["Tensor"][0], table["Key"][0]) == (spelled(Q_PROJ, on_trained), key(Q_PROJ))
    assert tensor_cells(ranked.tensors[0])[0] == spelled(Q_PROJ, on_trained)
    # No cell reads "None": a norm has no spectrum ("–"), a rank beyond the computed values reads "> k".
    assert all(value is not None for column in ("Layer", "Effective rank", "rank₉₀") for value in table[column])
    for tensor, rank in zip(ranked.tensors, table["rank₉₀"]):
        expected = ("–" if tensor.singular_values is None else
                    str(tensor.rank_90) if tensor.rank_90 is not None else f"> {len(tensor.singular_values)}")
        assert rank == expected

    for query in (Q_PROJ, key(Q_PROJ).upper(), "model.layers.1.self_attn.q"):
        assert [tensor.name for tensor in find_tensors(ranked.tensors, query).tensors] == [key(Q_PROJ)], query
    assert find_tensors(ranked.tensors, "  ").tensors == ranked.tensors
    missing = find_tensors(ranked.tensors, "q_proj.bias")
    assert (missing.tensors, missing.note) == ((), "No tensor's name holds 'q_proj.bias'.")

    unpaired = weights_detail.unpaired(result.tensors).table
    assert dict(zip(unpaired["Status"], unpaired["Tensor"])) == {
        "base only": spelled(BASE_ONLY, on_base), "post-trained only": spelled(TRAINED_ONLY, on_trained)}
    names = display_names(result.tensors)
    norms = weights_detail.norms(result.norms, result.tensors)
    assert norms.labels[0] == spelled(NORM, on_trained)
    assert norms.reading.startswith(f"{spelled(NORM, on_trained)} moved most: mean ×1.5")
    assert weights_detail.embeddings(result.embeddings, names).tensor == spelled(EMBED, on_trained)

    console = Console(file=io.StringIO(), width=300, color_system=None)
    print_weight_diff(console, result)
    printed = console.file.getvalue()
    assert f"│ {spelled(Q_PROJ, on_trained)} " in printed
    assert f"base_only: {spelled(BASE_ONLY, on_base)}\n" in printed
    assert f"trained_only: {spelled(TRAINED_ONLY, on_trained)}\n" in printed


def test_tied_heads_are_named_as_stored_and_point_at_the_embedding_as_stored(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1, hidden=64, vocab=128)
    base = resolve(str(save_checkpoint(tmp_path / "base", base_tensors, prefix=False)))
    # Post-trained stores no head (it ties it): the row is named as the base stores it and reads the embedding.
    untied = {name: tensor for name, tensor in add_noise(base_tensors).items() if name != "lm_head.weight"}
    trained = resolve(str(save_checkpoint(tmp_path / "untied", untied)))
    head = next(record for record in analyze_weights(base, trained, CPU).tensors if record.name == "lm_head.weight")
    assert (head.stored_name, head.tied_to, head.status) == ("lm_head.weight", key(EMBED), "changed")

    # Both sides tie: no file stores the head, and its note names the embedding as the post-trained file does.
    tied = llama_tensors(seed=0, layers=1, hidden=64, vocab=128, tied=True)
    base = resolve(str(save_checkpoint(tmp_path / "tied-base", tied, prefix=False)))
    trained = resolve(str(save_checkpoint(tmp_path / "tied-trained", add_noise(tied))))
    result = analyze_weights(base, trained, CPU)
    head = next(record for record in result.tensors if record.name == "lm_head.weight")
    assert (head.status, head.stored_name, head.display_name, head.tied_to) == (
        "tied", None, "lm_head.weight", key(EMBED))
    unpaired = weights_detail.unpaired(result.tensors).table
    assert unpaired["Note"] == [f"shares its storage with {EMBED}; its change is that tensor's"]
    console = Console(file=io.StringIO(), width=300, color_system=None)
    print_weight_diff(console, result)
    assert f"tied: lm_head.weight (tied to {EMBED})\n" in console.file.getvalue()


def test_a_shape_mismatch_names_the_tensor_as_stored(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1, hidden=64, vocab=128)
    trained_tensors = dict(base_tensors)
    trained_tensors["model.layers.0.mlp.up_proj.weight"] = torch.zeros(100, 64)
    base = resolve(str(save_checkpoint(tmp_path / "base", base_tensors, prefix=False)))
    trained = resolve(str(save_checkpoint(tmp_path / "trained", trained_tensors)))
    with pytest.raises(ShapeMismatch) as raised:
        analyze_weights(base, trained, CPU)
    assert str(raised.value) == (
        "tensor 'model.layers.0.mlp.up_proj.weight' has shape [128, 64] in the base but [100, 64] in the trained "
        "checkpoint; only the rows of an embedding or head (a resized vocabulary) may differ — check that both "
        "checkpoints are the same architecture."
    )


def test_an_adapters_rows_carry_the_base_models_own_names(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=2, hidden=64, vocab=128)
    save_checkpoint(tmp_path / "base", base_tensors)
    deltas = write_lora_adapter(tmp_path / "adapter", base_tensors, targets=("q_proj", "v_proj"))
    base, adapter = resolve(str(tmp_path / "base")), resolve(str(tmp_path / "adapter"))
    # peft stores the factors as base_model.model.<the base's module>.lora_A / lora_B.
    assert "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight" in adapter_names(adapter)

    result = analyze_weights(base, adapter, CPU)

    assert result.is_adapter
    changed = {record.stored_name for record in result.tensors if record.status == "changed"}
    assert changed == set(deltas) and "model.layers.1.self_attn.q_proj.weight" in changed
    assert all(record.stored_name == "model." + record.name or record.name == "lm_head.weight"
               for record in result.tensors)
    assert all(record.base_stored_name is None for record in result.tensors)
    lora = weights_detail.adapter(result.tensors).table
    assert set(lora["Tensor"]) == set(deltas)
    assert [tensor.name for tensor in find_tensors(result.tensors, "model.layers.1.self_attn.v_proj").tensors] == [
        "layers.1.self_attn.v_proj.weight"]


def adapter_names(adapter) -> set[str]:
    from afterburn_core.checkpoints import open_tensor_index

    with open_tensor_index(adapter) as index:
        return {entry.stored_name for entry in index.entries()}


def test_the_spectrum_view_draws_its_error_band_within_an_axis_fitted_to_the_data() -> None:
    from afterburn_core.weights.types import TensorDiff

    tensor = TensorDiff(name="w", shape=(8, 8), status="changed", module="q", layer=0, dtype_base="float32",
                        dtype_trained="float32", frob_norm_base=1.0, frob_norm_delta=1.0, relative_change=1.0,
                        cosine_similarity=0.5, fraction_unchanged=0.0, singular_values=(0.9, 0.3, 0.001, 0.0),
                        spectrum_method="randomized", spectrum_error_bound=0.01)
    view = weights_detail.spectrum(tensor)
    assert view.values == (0.9, 0.3, 0.001)  # exact zeros have no place on a log axis
    low, high = view.y_domain
    assert low == pytest.approx(0.001 / weights_detail.SPECTRUM_AXIS_MARGIN)
    assert high == pytest.approx(0.91 * weights_detail.SPECTRUM_AXIS_MARGIN)
    assert view.upper == pytest.approx((0.91, 0.31, 0.011))
    assert view.lower == pytest.approx((0.89, 0.29, low))  # σ₃ − bound < 0: clipped to the axis
    assert view.note.endswith("The band around the line is that bound.")
    unchanged = weights_detail.spectrum(replace(tensor, singular_values=(0.0, 0.0), frob_norm_delta=0.0))
    assert unchanged.y_domain is None and unchanged.lower == ()
