"""A LoRA adapter compared from its factors equals its merged model compared in full."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from weight_factories import llama_tensors, merge_lora, save_checkpoint, write_lora_adapter

from afterburn_core.checkpoints import resolve, resolve_pair
from afterburn_core.weights.engine import compare_weights


def _records(weight_pass):
    return {record.name: record for record in weight_pass.tensors}


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"use_rslora": True, "rank": 8},
        {"rank_pattern": {"layers.1.self_attn.q_proj": 2}, "alpha_pattern": {"v_proj": 3.0}},
    ],
)
def test_adapter_equals_merged_model(tmp_path, options, exact):
    base_tensors = llama_tensors(seed=0)
    save_checkpoint(tmp_path / "base", base_tensors)
    deltas = write_lora_adapter(tmp_path / "adapter", base_tensors, **options)
    save_checkpoint(tmp_path / "merged", merge_lora(base_tensors, deltas))
    base = resolve(str(tmp_path / "base"))
    adapter = resolve(str(tmp_path / "adapter"))
    merged = resolve(str(tmp_path / "merged"))
    from_factors = compare_weights(base, adapter, exact=exact, device="cpu")
    full = _records(compare_weights(base, merged, exact=exact, device="cpu"))
    assert from_factors.is_adapter
    assert len(from_factors.tensors) == len(full)
    for record in from_factors.tensors:
        other = full[record.name]
        raw = "model." + record.name if "model." + record.name in base_tensors else record.name
        if raw not in deltas:
            assert record.status == "unchanged" and record.frob_norm_delta == 0.0
            assert record.frob_norm_base == pytest.approx(other.frob_norm_base, rel=1e-6)
            continue
        delta = deltas[raw].numpy()
        sigma = np.linalg.svd(delta, compute_uv=False)
        assert (record.status, record.spectrum_method) == ("changed", "lora_factors")
        # Same verdict as the merged model; rank-8 factors on these 64-wide matrices are 12.5 % of
        # the dimension, which the verdict does not call low-rank — rank 2 (the rank_pattern) is.
        assert record.low_rank == other.low_rank == (record.rank_90 <= 4)
        assert record.frob_norm_delta == pytest.approx(np.linalg.norm(delta), rel=1e-10)
        assert record.frob_norm_delta == pytest.approx(other.frob_norm_delta, rel=1e-4)
        assert record.cosine_similarity == pytest.approx(other.cosine_similarity, rel=1e-6)
        assert record.frob_norm_trained == pytest.approx(other.frob_norm_trained, rel=1e-6)
        assert len(record.singular_values) == len(other.singular_values)
        np.testing.assert_allclose(record.singular_values, other.singular_values, rtol=0, atol=1e-4 * sigma[0])
        np.testing.assert_allclose(record.singular_values[: sigma.size], sigma[: len(record.singular_values)],
                                   rtol=0, atol=1e-10 * sigma[0])
        assert (record.rank_90, record.rank_99) == (other.rank_90, other.rank_99)
        assert record.stable_rank == pytest.approx(other.stable_rank, rel=1e-4)
        detail, other_detail = from_factors.details[record.name], _details(tmp_path, base, merged, record.name)
        np.testing.assert_allclose(detail.row_delta_sq, (delta**2).sum(1), rtol=1e-8)
        np.testing.assert_allclose(detail.col_delta_sq, (delta**2).sum(0), rtol=1e-8)
        np.testing.assert_allclose(detail.row_base_sq, other_detail.row_base_sq, rtol=1e-6)
        if exact:
            assert record.effective_rank == pytest.approx(other.effective_rank, rel=1e-3)


_DETAILS = {}


def _details(tmp_path, base, merged, name):
    key = str(tmp_path)
    if key not in _DETAILS:
        _DETAILS[key] = compare_weights(base, merged, device="cpu").details
    return _DETAILS[key][name]


def test_scale_follows_rslora_and_patterns(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1)
    save_checkpoint(tmp_path / "base", base_tensors)
    plain = write_lora_adapter(tmp_path / "plain", base_tensors, rank=4, alpha=8.0)
    rslora = write_lora_adapter(tmp_path / "rs", base_tensors, rank=4, alpha=8.0, use_rslora=True)
    base = resolve(str(tmp_path / "base"))
    name = "layers.0.self_attn.q_proj.weight"
    plain_norm = _records(compare_weights(base, resolve(str(tmp_path / "plain")), device="cpu"))[name].frob_norm_delta
    rs_norm = _records(compare_weights(base, resolve(str(tmp_path / "rs")), device="cpu"))[name].frob_norm_delta
    assert rs_norm / plain_norm == pytest.approx(math.sqrt(4), rel=1e-9)  # α/√r over α/r
    assert plain_norm == pytest.approx(np.linalg.norm(plain["model." + name].numpy()), rel=1e-10)
    assert rs_norm == pytest.approx(np.linalg.norm(rslora["model." + name].numpy()), rel=1e-10)


def test_demo_adapter_from_factors():
    result = compare_weights(*resolve_pair("demo:base", "demo:lora"), device="cpu")
    records = _records(result)
    changed = [r for r in result.tensors if r.status == "changed"]
    assert {r.name.split(".")[-2] for r in changed} == {"q_proj", "v_proj", "o_proj"}
    assert all(r.spectrum_method == "lora_factors" and r.rank_90 <= 8 for r in changed)
    assert records["layers.0.mlp.up_proj.weight"].status == "unchanged"
    assert len(records) == 1 + 4 * 9 + 2  # embed, 4 layers × 9, final norm, lm_head


def test_peft_adapter_matches_peft_merge(tmp_path):
    """A real peft adapter against peft's own merge_and_unload."""
    from checkpoint_factories import build_lora_adapter, build_tiny_llama, tiny_llama_model
    from peft import PeftModel

    base_dir = build_tiny_llama(tmp_path / "base", model=tiny_llama_model(0), tokenizer=False)
    build_lora_adapter(base_dir, tmp_path / "adapter", rank=4)
    from transformers import LlamaForCausalLM

    merged_model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(str(base_dir)), str(tmp_path / "adapter"))
    merged_model.merge_and_unload().save_pretrained(str(tmp_path / "merged"))
    base = resolve(str(base_dir))
    adapter = resolve(str(tmp_path / "adapter"), adapter_base=str(base_dir))
    for exact in (False, True):
        from_factors = _records(compare_weights(base, adapter, exact=exact, device="cpu"))
        full = _records(compare_weights(base, resolve(str(tmp_path / "merged")), exact=exact, device="cpu"))
        for name, record in from_factors.items():
            if record.status == "changed":
                other = full[name]
                np.testing.assert_allclose(record.singular_values, other.singular_values, rtol=0,
                                           atol=1e-4 * record.singular_values[0])
                assert record.frob_norm_delta == pytest.approx(other.frob_norm_delta, rel=1e-4)
        assert {n for n, r in from_factors.items() if r.status == "changed"} == {
            n for n, r in full.items() if r.status == "changed"}


# -- adapters that do not fit their base: one line naming the tensors as the files store them -------

Q_FACTOR = "base_model.model.model.layers.0.self_attn.q_proj.lora_{}.weight"


def _refusal(tmp_path, edit, base_tensors=None) -> str:
    """The message comparing an adapter of a 1-layer Llama, its factors passed through ``edit``, raises."""
    from safetensors.torch import load_file, save_file

    from afterburn_core.errors import AfterburnError

    trained_on = llama_tensors(seed=0, layers=1)
    save_checkpoint(tmp_path / "base", base_tensors if base_tensors is not None else trained_on)
    write_lora_adapter(tmp_path / "adapter", trained_on)
    weights_file = tmp_path / "adapter" / "adapter_model.safetensors"
    factors = load_file(str(weights_file))
    edit(factors)
    save_file(factors, str(weights_file), metadata={"format": "pt"})
    with pytest.raises(AfterburnError) as raised:
        compare_weights(resolve(str(tmp_path / "base")), resolve(str(tmp_path / "adapter")), device="cpu")
    return str(raised.value)


def test_a_lora_bias_is_refused_by_its_stored_name(tmp_path):
    def add_bias(factors):
        factors[Q_FACTOR.format("B").replace(".weight", ".bias")] = torch.zeros(128)

    assert _refusal(tmp_path, add_bias) == (
        "adapter tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias' is a LoRA bias (lora_bias); "
        "it is not supported yet.")


def test_a_factor_without_its_partner_is_named_as_stored(tmp_path):
    assert _refusal(tmp_path, lambda factors: factors.pop(Q_FACTOR.format("B"))) == (
        "adapter tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has no lora_B partner; "
        "re-save the adapter.")


def test_a_target_the_base_lacks_is_named_as_the_base_would_store_it(tmp_path):
    def retarget(factors):
        for which in ("A", "B"):
            factors[Q_FACTOR.format(which).replace("q_proj", "qkv_proj")] = factors.pop(Q_FACTOR.format(which))

    assert _refusal(tmp_path, retarget) == (
        "adapter tensor 'base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight' targets "
        "'model.layers.0.self_attn.qkv_proj.weight', which the base model does not have; the adapter was trained "
        "on another model — check adapter_base.")


def test_factors_of_another_shape_name_the_base_tensor_and_the_adapter_module(tmp_path):
    narrower = llama_tensors(seed=0, layers=1, hidden=64)
    assert _refusal(tmp_path, lambda factors: None, base_tensors=narrower) == (
        "base tensor 'model.layers.0.self_attn.q_proj.weight' has shape [64, 64] but the adapter's factors of "
        "'base_model.model.model.layers.0.self_attn.q_proj' make [128, 128]; the adapter was trained on another "
        "model — check adapter_base.")
