"""The streamed weight diff on planted pairs: statuses, metrics against fp64, ranking, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from weight_factories import (
    EMBED,
    HEAD,
    NORM,
    Q_PROJ,
    add_noise,
    cast,
    grow_vocab,
    llama_tensors,
    move_rows,
    plant_low_rank,
    rescale,
    save_checkpoint,
)

from afterburn_core.checkpoints import resolve
from afterburn_core.device import choose_device
from afterburn_core.errors import ConfigError, ShapeMismatch
from afterburn_core.weights import comparer as comparer_module
from afterburn_core.weights import stream
from afterburn_core.weights.engine import compare_weights
from afterburn_core.checkpoints.naming import classify


def _pair(tmp_path, base_tensors, trained_tensors, **trained_options):
    base = resolve(str(save_checkpoint(tmp_path / "base", base_tensors)))
    trained = resolve(str(save_checkpoint(tmp_path / "trained", trained_tensors, **trained_options)))
    return base, trained


def _by_name(weight_pass):
    return {record.name: record for record in weight_pass.tensors}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Base, and trained = base + small noise + rank-2 q_proj edit + norm ×1.25 + 4 moved embedding rows."""
    root = tmp_path_factory.mktemp("planted")
    base_tensors = llama_tensors(seed=0)
    trained_tensors = add_noise(base_tensors, 1e-3)
    trained_tensors = plant_low_rank(trained_tensors, Q_PROJ, rank=2, relative=1.0)
    trained_tensors = rescale(trained_tensors, NORM, 1.25)
    trained_tensors = move_rows(trained_tensors, (3, 17, 42, 99))
    base, trained = _pair(root, base_tensors, trained_tensors)
    return base_tensors, trained_tensors, base, trained, compare_weights(base, trained, device="cpu")


def test_planted_projection_ranks_first_and_reads_rank_2(planted):
    _, _, _, _, result = planted
    records = _by_name(result)
    matrices = sorted((r for r in result.tensors if len(r.shape) == 2), key=lambda r: -r.relative_change)
    assert matrices[0].name == "layers.1.self_attn.q_proj.weight"
    edit = records["layers.1.self_attn.q_proj.weight"]
    assert (edit.rank_90, edit.low_rank, edit.spectrum_method) == (2, True, "randomized")
    assert len(edit.singular_values) == 32 and list(edit.singular_values) == sorted(edit.singular_values, reverse=True)
    noisy = [r for r in matrices if r.name != edit.name and r.name != "embed_tokens.weight"]
    assert noisy and not any(r.low_rank for r in noisy)
    assert all(r.effective_rank is None for r in matrices)
    norm = records["layers.0.post_attention_layernorm.weight"]
    assert norm.relative_change == pytest.approx(0.25, rel=1e-2)
    assert max((r for r in result.tensors if r.module == "norm"), key=lambda r: r.relative_change).name == norm.name


def test_metrics_match_float64_reference(planted):
    base_tensors, trained_tensors, _, _, result = planted
    records = _by_name(result)
    for raw_name, base_value in base_tensors.items():
        record = records[raw_name.removeprefix("model.")]
        b, t = base_value.double(), trained_tensors[raw_name].double()
        d = t - b
        assert record.status == "changed" and record.layer == classify(record.name)[0]
        assert record.frob_norm_base == pytest.approx(float(b.norm()), rel=1e-5)
        assert record.frob_norm_trained == pytest.approx(float(t.norm()), rel=1e-5)
        assert record.frob_norm_delta == pytest.approx(float(d.norm()), rel=1e-5)
        assert record.relative_change == pytest.approx(float(d.norm() / b.norm()), rel=1e-5)
        cosine = float((b * t).sum() / (b.norm() * t.norm()))
        assert record.cosine_similarity == pytest.approx(cosine, rel=1e-5)
        assert record.max_abs_delta == pytest.approx(float(d.abs().max()), rel=1e-5)
        assert record.fraction_unchanged == pytest.approx(float((d == 0).double().mean()), abs=1e-12)
        detail = result.details[record.name]
        if b.ndim == 2:
            np.testing.assert_allclose(detail.row_delta_sq, (d**2).sum(1).numpy(), rtol=1e-5)
            if record.module == "o":  # column energies feed the o_proj head scores, and only those
                np.testing.assert_allclose(detail.col_delta_sq, (d**2).sum(0).numpy(), rtol=1e-5)
            else:
                assert detail.col_delta_sq is None
            np.testing.assert_allclose(detail.row_base_sq, (b**2).sum(1).numpy(), rtol=1e-5)
            sigma = np.linalg.svd(d.numpy(), compute_uv=False)
            values = np.array(record.singular_values)
            assert np.all(np.abs(sigma[: values.size] - values) <= record.spectrum_error_bound)
            energy = (sigma**2).cumsum() / (sigma**2).sum()
            # σ̃_i ≤ σ_i (a projection), so the randomized energy never overstates; on the planted
            # low-rank edit it is exact to rounding.
            assert record.energy_top_k <= energy[31] + 1e-6
            if record.name == "layers.1.self_attn.q_proj.weight":
                assert record.energy_top_k == pytest.approx(energy[31], rel=1e-5)
                assert record.stable_rank == pytest.approx((sigma**2).sum() / sigma[0] ** 2, rel=1e-5)
                np.testing.assert_allclose(values[:2], sigma[:2], rtol=1e-5)
        else:
            np.testing.assert_array_equal(detail.base_values, b.numpy())
            np.testing.assert_array_equal(detail.trained_values, t.numpy())


def test_exact_mode_equals_numpy_svd_and_reports_effective_rank(planted):
    _, trained_tensors, base, trained, _ = planted
    result = compare_weights(base, trained, exact=True, device="cpu")
    base_tensors = llama_tensors(seed=0)
    for record in result.tensors:
        if len(record.shape) != 2:
            continue
        raw = "model." + record.name if record.name != HEAD else HEAD
        d = (trained_tensors[raw].double() - base_tensors[raw].double()).numpy()
        sigma = np.linalg.svd(d, compute_uv=False)
        assert record.spectrum_method == "exact_gram_fp64"
        assert len(record.singular_values) == min(d.shape)
        np.testing.assert_allclose(record.singular_values, sigma, rtol=0, atol=1e-5 * sigma[0])
        assert np.abs(np.array(record.singular_values) - sigma).max() <= record.spectrum_error_bound
        shares = sigma / sigma.sum()
        assert record.effective_rank == pytest.approx(math.exp(-(shares * np.log(shares)).sum()), rel=1e-4)
        assert record.rank_90 is not None and record.rank_99 is not None


def test_row_blocked_results_equal_whole_matrix(planted, monkeypatch):
    _, _, base, trained, _ = planted
    for exact in (False, True):
        whole_details = compare_weights(base, trained, exact=exact, device="cpu")
        monkeypatch.setattr(comparer_module, "LARGE_MATRIX_BYTES", 1024)
        monkeypatch.setattr(stream, "BLOCK_BYTES", 7 * 512)  # 7 rows of 128 fp32 per block: ragged last block
        blocked_details = compare_weights(base, trained, exact=exact, device="cpu")
        monkeypatch.undo()
        whole, blocked = _by_name(whole_details), _by_name(blocked_details)
        for name, record in whole.items():
            other = blocked[name]
            for field in ("frob_norm_base", "frob_norm_delta", "cosine_similarity", "max_abs_delta",
                          "fraction_unchanged", "fraction_unchanged_within_resolution", "rank_90", "low_rank"):
                expected = getattr(record, field)
                if expected is None or isinstance(expected, bool):
                    assert getattr(other, field) == expected, (name, field)
                else:
                    assert getattr(other, field) == pytest.approx(expected, rel=1e-6), (name, field)
            if record.singular_values is not None:
                # Summation order differs by block, so values at the fp32 noise floor move by rounding.
                np.testing.assert_allclose(other.singular_values, record.singular_values, rtol=1e-4,
                                           atol=1e-5 * record.singular_values[0])

        for name in ("embed_tokens.weight", "layers.0.mlp.down_proj.weight"):
            np.testing.assert_allclose(blocked_details.details[name].row_delta_sq,
                                       whole_details.details[name].row_delta_sq, rtol=1e-6)
        np.testing.assert_allclose(blocked_details.details["layers.0.self_attn.o_proj.weight"].col_delta_sq,
                                   whole_details.details["layers.0.self_attn.o_proj.weight"].col_delta_sq, rtol=1e-6)


def test_same_seed_same_result_other_seed_same_ranks(planted):
    _, _, base, trained, first = planted
    again = compare_weights(base, trained, device="cpu", seed=0)
    assert [r.singular_values for r in again.tensors] == [r.singular_values for r in first.tensors]
    other = _by_name(compare_weights(base, trained, device="cpu", seed=5))
    assert other["layers.1.self_attn.q_proj.weight"].rank_90 == 2


def test_pairs_spread_over_several_devices_give_the_one_device_result_in_plan_order(planted):
    """On a CUDA run every visible GPU takes pairs (``compute_devices``); here three workers on the CPU stand in
    for them: the same records, in the same order, spectra and all, and progress counted once per pair."""
    _, _, base, trained, first = planted
    calls = []
    cpu = torch.device("cpu")
    spread = compare_weights(base, trained, device="cpu", devices=[cpu, cpu, cpu],
                             progress=lambda done, total, message: calls.append((done, message)))
    assert spread.tensors == first.tensors
    assert spread.details.keys() == first.details.keys()
    assert calls == [(done, record.name) for done, record in enumerate(first.tensors, start=1)]


def test_a_cpu_run_uses_one_device():
    from afterburn_core.weights.engine import compute_devices

    assert compute_devices(torch.device("cpu")) == [torch.device("cpu")]


def test_unchanged_pair_with_prefix_and_shard_differences(tmp_path):
    tensors = llama_tensors(seed=1)
    base = resolve(str(save_checkpoint(tmp_path / "base", tensors)))
    trained = resolve(str(save_checkpoint(tmp_path / "trained", tensors, prefix=False, shards=3)))
    calls = []
    result = compare_weights(base, trained, device="cpu", progress=lambda done, total, msg: calls.append((done, total)))
    assert {r.status for r in result.tensors} == {"unchanged"}
    assert all(r.fraction_unchanged == 1.0 and r.singular_values is None for r in result.tensors)
    assert calls == [(index, len(tensors)) for index in range(1, len(tensors) + 1)]


@pytest.mark.parametrize("workers", [1, 2], ids=["one device", "spread over two"])
def test_progress_may_cancel(planted, workers):
    """A cancel raised by progress stops the diff; spread over devices, it stops every worker too."""
    import threading

    _, _, base, trained, _ = planted

    class Stop(Exception):
        pass

    def cancel(done, total, message):
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        compare_weights(base, trained, device="cpu", devices=[torch.device("cpu")] * workers, progress=cancel)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("afterburn-weights")]


def test_bf16_resolution_counting_and_dtype_mix(tmp_path):
    base_tensors = cast(llama_tensors(seed=2, layers=1), torch.bfloat16)
    trained_tensors = dict(base_tensors)
    weight = base_tensors["model.layers.0.mlp.up_proj.weight"]
    bits = weight.view(torch.int16).clone().reshape(-1)
    bits[:100] += 1  # one ulp up: within bf16 resolution
    nudged = bits.view(torch.bfloat16).reshape(weight.shape).clone()
    nudged.reshape(-1)[100:150] *= 1.5  # far outside it
    trained_tensors["model.layers.0.mlp.up_proj.weight"] = nudged
    trained_tensors["model.layers.0.mlp.down_proj.weight"] = base_tensors["model.layers.0.mlp.down_proj.weight"].float()
    base, trained = _pair(tmp_path, base_tensors, trained_tensors)
    records = _by_name(compare_weights(base, trained, device="cpu"))
    record = records["layers.0.mlp.up_proj.weight"]
    count = weight.numel()
    assert record.fraction_unchanged == pytest.approx(1 - 150 / count, abs=1e-12)
    assert record.fraction_unchanged_within_resolution == pytest.approx(1 - 50 / count, abs=1e-12)
    mixed = records["layers.0.mlp.down_proj.weight"]
    assert (mixed.dtype_base, mixed.dtype_trained, mixed.status) == ("bfloat16", "float32", "unchanged")


def test_shape_mismatch_names_the_tensor(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1)
    trained_tensors = dict(base_tensors)
    trained_tensors["model.layers.0.mlp.up_proj.weight"] = torch.zeros(100, 128)
    base, trained = _pair(tmp_path, base_tensors, trained_tensors)
    with pytest.raises(ShapeMismatch) as raised:
        compare_weights(base, trained, device="cpu")
    # Named as both files store it, so a user can find it there.
    assert str(raised.value) == (
        "tensor 'model.layers.0.mlp.up_proj.weight' has shape [256, 128] in the base but [100, 128] in the trained "
        "checkpoint; only the rows of an embedding or head (a resized vocabulary) may differ — check that both "
        "checkpoints are the same architecture."
    )


def test_vocab_growth_is_resized_with_added_rows(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1)
    trained_tensors = grow_vocab(move_rows(base_tensors, (5,)), 8)
    base, trained = _pair(tmp_path, base_tensors, trained_tensors)
    result = compare_weights(base, trained, device="cpu")
    records = _by_name(result)
    for name in ("embed_tokens.weight", "lm_head.weight"):
        record = records[name]
        assert (record.status, record.added_rows, record.shape, record.trained_shape) == (
            "resized", 8, (256, 128), (264, 128))
        assert result.details[name].row_delta_sq.shape == (256,)
    embed = records["embed_tokens.weight"]
    assert embed.fraction_unchanged == pytest.approx(1 - 128 / (256 * 128))
    assert int(np.argmax(result.details["embed_tokens.weight"].row_delta_sq)) == 5


def test_tied_heads(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1, tied=True)
    both = _by_name(compare_weights(*_pair(tmp_path / "a", base_tensors, add_noise(base_tensors)), device="cpu"))
    assert both["lm_head.weight"].status == "tied"
    assert both["lm_head.weight"].tied_to == "embed_tokens.weight"
    untied = dict(base_tensors, **{HEAD: base_tensors[EMBED].clone() * 1.5})
    one = _by_name(compare_weights(*_pair(tmp_path / "b", base_tensors, untied), device="cpu"))
    head = one["lm_head.weight"]
    assert (head.status, head.tied_to) == ("changed", "embed_tokens.weight")
    assert head.relative_change == pytest.approx(0.5, rel=1e-6)


def test_one_sided_tensors_are_listed(tmp_path):
    base_tensors = llama_tensors(seed=0, layers=1)
    trained_tensors = dict(base_tensors)
    del trained_tensors["model.layers.0.input_layernorm.weight"]
    trained_tensors["model.layers.0.self_attn.q_norm.weight"] = torch.ones(128)
    records = _by_name(compare_weights(*_pair(tmp_path, base_tensors, trained_tensors), device="cpu"))
    assert records["layers.0.input_layernorm.weight"].status == "base_only"
    assert records["layers.0.self_attn.q_norm.weight"].status == "trained_only"
    assert records["layers.0.self_attn.q_norm.weight"].dtype_trained == "float32"
    assert len(records) == len(base_tensors) + 1


def test_demo_pair_planted_q_proj_is_low_rank():
    from afterburn_core.checkpoints import resolve_pair

    result = _by_name(compare_weights(*resolve_pair("demo:base", "demo:trained"), device="cpu"))
    edit = result["layers.1.self_attn.q_proj.weight"]
    assert edit.low_rank and edit.rank_90 <= 3
    assert max(result.values(), key=lambda r: r.relative_change or 0).name == edit.name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("layers.3.self_attn.q_proj.weight", (3, "q")),
        ("layers.3.self_attn.k_proj.bias", (3, "k")),
        ("layers.3.self_attn.q_norm.weight", (3, "norm")),
        ("layers.0.mlp.gate_proj.weight", (0, "gate")),
        ("layers.0.post_attention_layernorm.weight", (0, "norm")),
        ("embed_tokens.weight", (None, "embed")),
        ("lm_head.weight", (None, "head")),
        ("norm.weight", (None, "norm")),
        ("gpt_neox.layers.2.attention.dense.weight", (2, "o")),
        ("gpt_neox.layers.2.attention.query_key_value.weight", (2, "qkv")),
        ("transformer.h.1.attn.c_attn.bias", (1, "qkv")),
        ("layers.1.self_attn.qkv_proj.weight", (1, "qkv")),
        ("layers.1.mlp.gate_up_proj.weight", (1, "gate_up")),
        ("transformer.h.1.self_attention.dense.weight", (1, "o")),
        ("transformer.h.1.self_attention.query_key_value.weight", (1, "qkv")),
        ("gpt_neox.layers.2.mlp.dense_4h_to_h.weight", (2, "down")),
        ("gpt_neox.embed_in.weight", (None, "embed")),
        ("embed_out.weight", (None, "head")),
        ("transformer.h.1.attn.c_proj.weight", (1, "o")),
        ("transformer.h.1.mlp.c_proj.weight", (1, "down")),
        ("transformer.h.1.mlp.c_fc.weight", (1, "up")),
        ("transformer.h.1.ln_2.weight", (1, "norm")),
        ("transformer.wte.weight", (None, "embed")),
        ("layers.1.self_attn.rotary_emb.inv_freq", (1, "other")),
    ],
)
def test_classify(name, expected):
    assert classify(name) == expected


def test_choose_device():
    assert choose_device("cpu").type == "cpu"
    assert choose_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda was asked for but no CUDA GPU is available"):
            choose_device("cuda")
    with pytest.raises(ConfigError, match="'tpu' is not one of"):
        choose_device("tpu")
    with pytest.raises(ConfigError, match="spectrum_top_k"):
        compare_weights(None, None, top_k=0)
