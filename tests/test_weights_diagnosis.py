"""Diagnosis on hand-built passes: identical says nothing changed; planted edits are named, diffuse change is not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from weight_pass_helpers import DEMO_BASE, checkpoint_at, make_pass

from afterburn_core.weights.types import Diagnosis, TensorDiff
from afterburn_core.weights import diagnosis as dx
from afterburn_core.weights.diagnosis import diagnose, profile_of
from afterburn_core.weights.peers import peer_key
from afterburn_core.weights.structure import build_structure
from afterburn_core.weights.weight_pass import WeightPass

LAYERS, HIDDEN, FFN, VOCAB = 4, 64, 96, 300
PLANTED_PROJECTION = "model.layers.1.self_attn.q_proj.weight"
PLANTED_NORM = "model.layers.2.post_attention_layernorm.weight"
PLANTED_TOKENS = [260, 261, 262, 264, 265, 267, 271, 273]  # the demo's ids: 8 rows, 8 directions


def llama_like(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {"model.embed_tokens.weight": torch.randn(VOCAB, HIDDEN, generator=generator)}
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}."
        for name, shape in (("self_attn.q_proj", (HIDDEN, HIDDEN)), ("self_attn.k_proj", (HIDDEN // 2, HIDDEN)),
                            ("self_attn.v_proj", (HIDDEN // 2, HIDDEN)), ("self_attn.o_proj", (HIDDEN, HIDDEN)),
                            ("mlp.gate_proj", (FFN, HIDDEN)), ("mlp.up_proj", (FFN, HIDDEN)),
                            ("mlp.down_proj", (HIDDEN, FFN))):
            state[prefix + name + ".weight"] = torch.randn(shape, generator=generator) / HIDDEN**0.5
        for norm in ("input_layernorm", "post_attention_layernorm"):
            state[prefix + norm + ".weight"] = 1 + 0.05 * torch.randn(HIDDEN, generator=generator)
    state["model.norm.weight"] = 1 + 0.05 * torch.randn(HIDDEN, generator=generator)
    state["lm_head.weight"] = torch.randn(VOCAB, HIDDEN, generator=generator)
    return state


def diffuse(state: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """Full-rank noise of ~5 % on every matrix (1 % on norms, as in the demo), a third of the embedding rows only."""
    generator = torch.Generator().manual_seed(seed)
    trained = {}
    for name, value in state.items():
        scale = 0.05 if value.ndim == 2 else 0.01
        noise = scale * value.abs().mean() * torch.randn(value.shape, generator=generator)
        if name == "model.embed_tokens.weight":
            noise[VOCAB // 3 :] = 0
        trained[name] = value + noise
    return trained


def planted(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The diffuse change plus the demo's three edits: a rank-3 projection update, a ×1.25 norm, moved rows."""
    trained = diffuse(state)
    generator = torch.Generator().manual_seed(7)
    u, _ = torch.linalg.qr(torch.randn(HIDDEN, 3, generator=generator))
    v, _ = torch.linalg.qr(torch.randn(HIDDEN, 3, generator=generator))
    edit = u @ torch.diag(torch.tensor([3.0, 2.0, 1.5])) @ v.T
    trained[PLANTED_PROJECTION] = trained[PLANTED_PROJECTION] + edit * float(state[PLANTED_PROJECTION].norm()) / 4
    trained[PLANTED_NORM] = trained[PLANTED_NORM] * 1.25
    embed = trained["model.embed_tokens.weight"]
    shift = 6 * float(state["model.embed_tokens.weight"].norm(dim=1).median())
    for token_id in PLANTED_TOKENS:  # each row its own random direction, as in the demo
        direction = torch.randn(HIDDEN, generator=generator)
        embed[token_id] = embed[token_id] + shift * direction / direction.norm()
    return trained


def run(tmp_path: Path, base: dict, trained: dict) -> Diagnosis:
    checkpoint = checkpoint_at(tmp_path, {"num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": HIDDEN})
    (tmp_path / "tokenizer.json").write_bytes((DEMO_BASE / "tokenizer.json").read_bytes())
    weight_pass = make_pass(base, trained)
    return diagnose(weight_pass, build_structure(weight_pass, checkpoint))


def titles(diagnosis: Diagnosis) -> list[str]:
    return [finding.title for finding in diagnosis.findings]


def text(diagnosis: Diagnosis) -> str:
    return "\n".join(f"{f.title}: {f.detail}" for f in diagnosis.findings)


def test_identical_pair_is_identical_with_no_change_findings(tmp_path: Path) -> None:
    base = llama_like()
    diagnosis = run(tmp_path, base, {k: v.clone() for k, v in base.items()})
    assert diagnosis.profile == "identical"
    assert titles(diagnosis) == ["No tensor changed"]
    assert diagnosis.findings[0].value == 0.0
    assert "bit-identical" in diagnosis.findings[0].detail


def test_planted_edits_are_each_named_with_their_numbers(tmp_path: Path) -> None:
    diagnosis = run(tmp_path, llama_like(), planted(llama_like()))
    assert f"Outlier tensor: {PLANTED_PROJECTION}" in titles(diagnosis)
    assert f"Low-rank change: {PLANTED_PROJECTION}" in titles(diagnosis)
    low_rank = next(f for f in diagnosis.findings if f.title == f"Low-rank change: {PLANTED_PROJECTION}")
    assert low_rank.value == 3.0 and "3 of 64 directions" in low_rank.detail
    rescale = next(f for f in diagnosis.findings if f.title == f"Norm rescaled: {PLANTED_NORM}")
    assert rescale.value == pytest.approx(1.25, abs=0.02)  # ×1.25 on top of the diffuse noise
    assert f"scaled ×{rescale.value:.3g}" in rescale.detail
    rows = next(f for f in diagnosis.findings if f.title == "Embedding rows moved far beyond the rest")
    assert rows.detail.startswith("8 rows of model.embed_tokens.weight")
    for token_id, token in ((260, "'th'"), (262, "' th'"), (265, "'re'")):
        assert f"{token_id} {token}" in rows.detail
    assert rows.value >= dx.EMBED_OUTLIER_FACTOR
    # The only outliers are the planted ones; no other tensor is named as low-rank.
    outliers = {t.removeprefix("Outlier tensor: ") for t in titles(diagnosis) if t.startswith("Outlier tensor")}
    assert outliers == {PLANTED_PROJECTION, PLANTED_NORM}
    assert [t for t in titles(diagnosis) if t.startswith("Low-rank")] == [f"Low-rank change: {PLANTED_PROJECTION}"]


def test_diffuse_change_flags_none_of_the_planted_kinds(tmp_path: Path) -> None:
    diagnosis = run(tmp_path, llama_like(), diffuse(llama_like()))
    assert diagnosis.profile in ("standard", "heavy")
    for prefix in ("Outlier tensor", "Low-rank", "Norm rescaled", "Embedding rows moved far", "Layer "):
        assert not any(t.startswith(prefix) for t in titles(diagnosis)), text(diagnosis)
    assert "Full-rank changes" in titles(diagnosis)
    assert "Norms moved little" in titles(diagnosis)
    untouched = next(f for f in diagnosis.findings if f.title == "Embedding rows untouched")
    assert untouched.value == pytest.approx((VOCAB - VOCAB // 3) / VOCAB)


def test_surgical_profile_and_frozen_modules(tmp_path: Path) -> None:
    base = llama_like()
    trained = {k: v.clone() for k, v in base.items()}
    trained[PLANTED_PROJECTION] += 0.01
    diagnosis = run(tmp_path, base, trained)
    assert diagnosis.profile == "surgical"
    [frozen] = [f for f in diagnosis.findings if f.title.endswith("module types frozen")]
    for module in ("'norm'", "'embed'", "'down'", "'k'", "'v'"):
        assert module in frozen.detail
    assert "'q'" not in frozen.detail  # the one module that changed
    assert frozen.value == sum(1 for name in base if "q_proj" not in name)
    assert "Norms frozen" in titles(diagnosis)
    assert "Output head frozen: lm_head.weight" in titles(diagnosis)


def with_status(weight_pass: WeightPass, name: str, **changes) -> WeightPass:
    tensors = tuple(replace(t, **changes) if t.name == name else t for t in weight_pass.tensors)
    return WeightPass(tensors=tensors, details=weight_pass.details)


def test_tied_head_one_sided_and_resized_tensors_are_reported(tmp_path: Path) -> None:
    base = llama_like()
    weight_pass = make_pass(base, {k: v.clone() for k, v in base.items()})
    weight_pass = with_status(weight_pass, "lm_head.weight", status="tied", tied_to="model.embed_tokens.weight",
                              frob_norm_base=None, frob_norm_delta=None, relative_change=None)
    structure = build_structure(weight_pass, checkpoint_at(tmp_path / "a", None))
    identical = diagnose(weight_pass, structure)
    assert identical.profile == "identical"
    assert titles(identical) == ["No tensor changed", "Output head tied: lm_head.weight"]
    assert "tied to model.embed_tokens.weight" in identical.findings[1].detail

    extra = TensorDiff(name="model.extra_adapter.weight", shape=(4, 4), status="trained_only", module="other",
                       layer=None, dtype_base=None, dtype_trained="F32", frob_norm_base=None, frob_norm_delta=None,
                       relative_change=None, cosine_similarity=None, fraction_unchanged=None)
    grown = with_status(weight_pass, "model.embed_tokens.weight", status="resized", added_rows=6,
                        trained_shape=(VOCAB + 6, HIDDEN))
    grown = WeightPass(tensors=grown.tensors + (extra,), details=grown.details)
    diagnosis = diagnose(grown, build_structure(grown, checkpoint_at(tmp_path / "b", None)))
    assert diagnosis.profile != "identical"
    one_sided = next(f for f in diagnosis.findings if f.title == "Tensors only in the trained checkpoint")
    assert one_sided.value == 1.0 and "model.extra_adapter.weight" in one_sided.detail
    resized = next(f for f in diagnosis.findings if f.title == "Resized: model.embed_tokens.weight")
    assert resized.value == 6.0 and f"({VOCAB}, {HIDDEN}) -> ({VOCAB + 6}, {HIDDEN})" in resized.detail


def test_every_lora_like_change_is_called_low_rank(tmp_path: Path) -> None:
    base = llama_like()
    trained = {k: v.clone() for k, v in base.items()}
    generator = torch.Generator().manual_seed(5)
    for layer in range(LAYERS):
        for projection in ("q_proj", "v_proj"):
            name = f"model.layers.{layer}.self_attn.{projection}.weight"
            rows = trained[name].shape[0]
            factor_b, factor_a = torch.randn(rows, 2, generator=generator), torch.randn(2, HIDDEN, generator=generator)
            trained[name] += 0.01 * factor_b @ factor_a
    diagnosis = run(tmp_path, base, trained)
    assert diagnosis.profile != "surgical"  # 8 of 39 tensors: a LoRA on two projections is not surgical
    finding = next(f for f in diagnosis.findings if f.title == "Every 2-D change is low-rank")
    assert "All 8 changed matrices" in finding.detail


def test_profile_bands_follow_the_median_relative_change() -> None:
    def tensor(name: str, relative: float) -> TensorDiff:
        return TensorDiff(name=name, shape=(8,), status="changed" if relative else "unchanged", module="other",
                          layer=None, dtype_base="F32", dtype_trained="F32", frob_norm_base=1.0,
                          frob_norm_delta=relative, relative_change=relative, cosine_similarity=None,
                          fraction_unchanged=None)

    def profile(values: list[float]) -> str:
        return profile_of(WeightPass(tensors=tuple(tensor(f"t{i}", v) for i, v in enumerate(values))))

    assert profile([0.0] * 10) == "identical"
    assert profile([0.3] + [0.0] * 10) == "surgical"
    assert profile([0.05] * 10) == "standard"
    assert profile([dx.HEAVY_MIN_MEDIAN_RELATIVE_CHANGE] * 10) == "heavy"
    assert profile([dx.EXTREME_MIN_MEDIAN_RELATIVE_CHANGE] * 10) == "extreme"


def test_peer_key_replaces_only_the_layer_index() -> None:
    def named(name: str, layer: int | None) -> TensorDiff:
        return TensorDiff(name=name, shape=(1,), status="changed", module="q", layer=layer, dtype_base=None,
                          dtype_trained=None, frob_norm_base=1.0, frob_norm_delta=0.0, relative_change=0.0,
                          cosine_similarity=None, fraction_unchanged=None)

    assert peer_key(named("model.layers.12.mlp.up_proj.weight", 12)) == "model.layers.*.mlp.up_proj.weight"
    assert peer_key(named("transformer.h.1.attn.c_proj.weight", 1)) == "transformer.h.*.attn.c_proj.weight"
    assert peer_key(named("model.embed_tokens.weight", None)) is None
