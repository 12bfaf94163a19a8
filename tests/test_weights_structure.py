"""Structure of a weight diff on hand-built passes: cells, GQA heads, norms, embedding drift, concentration.

The passes are built here from small torch tensors with the definitions of
``TensorDetail`` (per-row / per-column energy of ΔW, per-row energy of W, 1-D
values), so every expected number is computed independently of the engine.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from afterburn_core.checkpoints.architecture import HeadGeometry, architecture_map
from afterburn_core.weights.structure import build_structure, gini, top_share
from afterburn_core.weights.tokens import load_token_decoder
from afterburn_core.weights.weight_pass import WeightPass
from weight_pass_helpers import DEMO_BASE, checkpoint_at, make_pass

REPO_ROOT = Path(__file__).resolve().parent.parent
# 4 query heads over 2 kv heads, head_dim 8, hidden 32.
HEADS, KV_HEADS, HEAD_DIM, HIDDEN = 4, 2, 8, 32
GQA_CONFIG = {"num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "hidden_size": HIDDEN}


def attention_layer(generator: torch.Generator, layer: int) -> dict[str, torch.Tensor]:
    prefix = f"model.layers.{layer}.self_attn."
    return {
        prefix + "q_proj.weight": torch.randn(HEADS * HEAD_DIM, HIDDEN, generator=generator),
        prefix + "k_proj.weight": torch.randn(KV_HEADS * HEAD_DIM, HIDDEN, generator=generator),
        prefix + "v_proj.weight": torch.randn(KV_HEADS * HEAD_DIM, HIDDEN, generator=generator),
        prefix + "o_proj.weight": torch.randn(HIDDEN, HEADS * HEAD_DIM, generator=generator),
    }


def gqa_model() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    state = {}
    for layer in range(3):
        state.update(attention_layer(generator, layer))
        state[f"model.layers.{layer}.input_layernorm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=generator)
    return state


def nudged(state: dict[str, torch.Tensor], scale: float = 1e-3, seed: int = 1) -> dict[str, torch.Tensor]:
    """Every tensor moved a little: the diffuse background a planted change has to stand out of."""
    generator = torch.Generator().manual_seed(seed)
    return {name: value + scale * torch.randn(value.shape, generator=generator) for name, value in state.items()}


def geometry(folder: Path, config: dict | None):
    return architecture_map(checkpoint_at(folder, config).description).heads


def test_head_layout_reads_gqa_and_derives_head_dim(tmp_path: Path) -> None:
    assert geometry(tmp_path / "a", GQA_CONFIG) == HeadGeometry(num_heads=4, num_kv_heads=2, head_dim=8)
    explicit = geometry(tmp_path / "b", {**GQA_CONFIG, "head_dim": 16})
    assert explicit is not None and explicit.head_dim == 16
    assert geometry(tmp_path / "c", {"hidden_size": 32}) is None
    assert geometry(tmp_path / "d", None) is None


@pytest.mark.parametrize("projection, expect_heads", [("q", {2}), ("k", {2, 3}), ("v", {0, 1}), ("o", {1})])
def test_one_planted_head_scores_highest_gqa_aware(tmp_path: Path, projection: str, expect_heads: set[int]) -> None:
    base = gqa_model()
    trained = nudged(base)
    name = f"model.layers.1.self_attn.{projection}_proj.weight"
    # q: head 2 = rows 16..24; k: kv head 1 = rows 8..16 (read by query heads 2, 3);
    # v: kv head 0 = rows 0..8 (query heads 0, 1); o: head 1 = input columns 8..16.
    if projection == "o":
        trained[name][:, 8:16] += 0.5 * base[name][:, 8:16]
    else:
        start = {"q": 16, "k": 8, "v": 0}[projection]
        trained[name][start : start + HEAD_DIM] += 0.5 * base[name][start : start + HEAD_DIM]
    structure = build_structure(make_pass(base, trained), checkpoint_at(tmp_path, GQA_CONFIG))
    heads = structure.heads
    assert heads is not None
    assert (heads.num_heads, heads.num_kv_heads, heads.layers) == (4, 2, (0, 1, 2))
    matrix = np.array(heads.per_projection[projection])
    row = matrix[1]
    top = {int(h) for h in np.flatnonzero(np.isclose(row, row.max()))}
    assert top == expect_heads
    # The planted slice moved by half its base norm; the others by the background only.
    if projection != "o":
        assert row.max() == pytest.approx(0.5, rel=0.02)
    assert np.delete(row, list(expect_heads)).max() < 0.01
    # The combined score follows, in the planted layer only.
    scores = np.array(heads.scores)
    assert set(np.flatnonzero(scores[1] == scores[1].max())) <= expect_heads
    assert scores[1].max() > 5 * scores[0].max()


def test_o_head_score_uses_even_share_of_the_whole_norm(tmp_path: Path) -> None:
    base = gqa_model()
    trained = {k: v.clone() for k, v in base.items()}
    name = "model.layers.0.self_attn.o_proj.weight"
    trained[name][:, 24:32] += 0.3
    structure = build_structure(make_pass(base, trained), checkpoint_at(tmp_path, GQA_CONFIG))
    row = structure.heads.per_projection["o"][0]
    delta = float((torch.full((HIDDEN, HEAD_DIM), 0.3, dtype=torch.float64)).norm())
    expected = delta / (float(base[name].double().norm()) * math.sqrt(HEAD_DIM / (HEADS * HEAD_DIM)))
    assert row[3] == pytest.approx(expected, rel=1e-6)
    assert row[:3] == (0.0, 0.0, 0.0)


def test_no_head_layout_means_no_heads_and_misfit_shapes_are_skipped(tmp_path: Path) -> None:
    base = gqa_model()
    weight_pass = make_pass(base, nudged(base))
    none = build_structure(weight_pass, checkpoint_at(tmp_path / "none", None))
    assert none.heads is None
    assert none.heads_reason == ("config.json gives no attention head count (num_attention_heads / n_head), "
                                 "so heads cannot be sliced")
    wrong = {"num_attention_heads": 3, "num_key_value_heads": 3, "hidden_size": 30}  # 3 × 10 fits no tensor
    misfit = build_structure(weight_pass, checkpoint_at(tmp_path / "wrong", wrong))
    assert misfit.heads is None
    assert misfit.heads_reason == (
        "no attention projection's shape fits 3 query heads and 3 key/value heads of width 10 from config.json "
        "(e.g. model.layers.0.self_attn.q_proj.weight is [32, 32])")


def test_cells_combine_norms_root_sum_square_and_weight_ranks_by_energy(tmp_path: Path) -> None:
    base = gqa_model()
    trained = nudged(base, scale=0.01)
    weight_pass = make_pass(base, trained)
    # Give two tensors of one cell known effective ranks to check the ‖ΔW‖²-weighted mean.
    patched = []
    for tensor in weight_pass.tensors:
        if tensor.layer == 0 and tensor.module in ("q", "o"):
            rank = 2.0 if tensor.module == "q" else 6.0
            tensor = type(tensor)(**{**tensor.__dict__, "module": "q", "effective_rank": rank})
        patched.append(tensor)
    weight_pass = WeightPass(tensors=tuple(patched), details=weight_pass.details)
    cells = {(c.layer, c.module): c for c in build_structure(weight_pass, checkpoint_at(tmp_path, None)).layers}
    members = [t for t in patched if t.layer == 0 and t.module == "q"]
    cell = cells[(0, "q")]
    assert cell.tensors == 2
    assert cell.frob_norm_base == pytest.approx(math.sqrt(sum(t.frob_norm_base**2 for t in members)))
    assert cell.frob_norm_delta == pytest.approx(math.sqrt(sum(t.frob_norm_delta**2 for t in members)))
    assert cell.relative_change == pytest.approx(cell.frob_norm_delta / cell.frob_norm_base)
    weights = [t.frob_norm_delta**2 for t in members]
    ranks = [2.0 if t.name.endswith("q_proj.weight") else 6.0 for t in members]
    assert cell.effective_rank == pytest.approx(sum(w * r for w, r in zip(weights, ranks)) / sum(weights))
    assert [(c.layer, c.module) for c in cells.values()][:4] == [(0, "q"), (0, "k"), (0, "v"), (0, "norm")]


def test_norm_shift_reports_a_rescale(tmp_path: Path) -> None:
    base = gqa_model()
    trained = {k: v.clone() for k, v in base.items()}
    trained["model.layers.2.input_layernorm.weight"] *= 1.25
    norms = {n.name: n for n in build_structure(make_pass(base, trained), checkpoint_at(tmp_path, None)).norms}
    assert len(norms) == 3
    shift = norms["model.layers.2.input_layernorm.weight"]
    assert (shift.kind, shift.layer) == ("gamma", 2)
    assert shift.mean_ratio == pytest.approx(1.25)
    assert shift.relative_change == pytest.approx(0.25)
    gamma = base["model.layers.2.input_layernorm.weight"].double()
    assert shift.max_abs_delta == pytest.approx(float(0.25 * gamma.abs().max()))
    assert norms["model.layers.0.input_layernorm.weight"].relative_change == 0.0


def embedding_pair(moved: list[int], vocab: int = 1024, dim: int = 16) -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(3)
    base = {"model.embed_tokens.weight": torch.randn(vocab, dim, generator=generator),
            "lm_head.weight": torch.randn(vocab, dim, generator=generator)}
    trained = {k: v.clone() for k, v in base.items()}
    trained["model.embed_tokens.weight"][:400] += 0.01 * torch.randn(400, dim, generator=generator)
    for rank, token_id in enumerate(moved):
        trained["model.embed_tokens.weight"][token_id] += (2.0 + 0.1 * rank) * torch.ones(dim) / math.sqrt(dim)
    trained["lm_head.weight"] += 0.02 * torch.randn(vocab, dim, generator=generator)
    return base, trained


def test_embedding_drift_top_tokens_are_the_moved_ids_decoded(tmp_path: Path) -> None:
    moved = [273, 271, 267, 265, 264, 262, 261, 260]  # drift grows with position: 260 moved most
    base, trained = embedding_pair(moved)
    weight_pass = make_pass(base, trained)
    decoder = load_token_decoder(DEMO_BASE)
    structure = build_structure(weight_pass, checkpoint_at(tmp_path, None), decoder=decoder)
    drift = structure.embeddings
    assert drift is not None and drift.tensor == "model.embed_tokens.weight"
    assert [t.token_id for t in drift.top_tokens[:8]] == moved[::-1]
    assert [t.token for t in drift.top_tokens[:8]] == ["th", "is", " th", "``", "re", "on", "es", "ti"]
    delta = (trained["model.embed_tokens.weight"].double() - base["model.embed_tokens.weight"].double()).norm(dim=1)
    assert drift.top_tokens[0].drift == pytest.approx(float(delta[260]), rel=1e-9)
    row = base["model.embed_tokens.weight"][260].double()
    assert drift.top_tokens[0].relative_drift == pytest.approx(float(delta[260] / row.norm()), rel=1e-9)
    assert len(drift.top_tokens) == 20
    assert (drift.rows_compared, drift.rows_added) == (1024, 0)
    moved_rows = set(range(400)) | set(moved)
    assert drift.rows_unchanged == 1024 - len(moved_rows)
    assert drift.median_drift == pytest.approx(float(np.median(delta[delta > 0].numpy())))
    assert drift.head_tensor == "lm_head.weight" and len(drift.head_top_tokens) == 20


def test_embedding_tokens_fall_back_to_ids_without_a_tokenizer(tmp_path: Path) -> None:
    base, trained = embedding_pair([5, 6])
    structure = build_structure(make_pass(base, trained), checkpoint_at(tmp_path, None))  # empty folder
    assert [t.token for t in structure.embeddings.top_tokens[:2]] == ["#6", "#5"]


def test_token_decoder_renders_bytes_specials_and_unknown_ids() -> None:
    decoder = load_token_decoder(DEMO_BASE)
    assert decoder.available
    assert decoder.token(3) == "<|im_start|>"
    assert decoder.token(262) == " th"
    assert decoder.token(200) == repr("\x08")  # a control byte, shown visibly
    assert decoder.token(130).startswith("<0x")  # half of a UTF-8 character
    assert decoder.token(10**6) == "#1000000"
    assert load_token_decoder(None).token(7) == "#7"


def test_build_structure_finds_the_tokenizer_in_the_base_folder(tmp_path: Path) -> None:
    base, trained = embedding_pair([262])
    checkpoint = checkpoint_at(tmp_path / "ck", None)
    (tmp_path / "ck" / "tokenizer.json").write_bytes((DEMO_BASE / "tokenizer.json").read_bytes())
    structure = build_structure(make_pass(base, trained), checkpoint)
    assert structure.embeddings.top_tokens[0].token == " th"


def test_top_decile_share_and_gini_against_hand_computed_values() -> None:
    energies = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 45.0]  # n = 11 -> ceil(1.1) = 2
    assert top_share(energies) == pytest.approx((45 + 10) / 100)
    # Gini by the mean-absolute-difference definition: Σ_i Σ_j |x_i − x_j| / (2 n² mean).
    x = np.array(energies)
    expected = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert gini(energies) == pytest.approx(expected)
    assert gini([3.0] * 7) == pytest.approx(0.0)
    assert gini([0.0] * 9 + [5.0]) == pytest.approx(0.9)
    assert top_share([0.0, 0.0]) == 0.0 and gini([]) == 0.0


def test_concentration_counts_only_compared_tensors(tmp_path: Path) -> None:
    base = gqa_model()
    trained = {k: v.clone() for k, v in base.items()}
    trained["model.layers.0.self_attn.q_proj.weight"] += 1.0
    structure = build_structure(make_pass(base, trained), checkpoint_at(tmp_path, None))
    assert structure.concentration.tensors_with_change == 1
    assert structure.concentration.top_decile_share == pytest.approx(1.0)
    assert structure.concentration.gini == pytest.approx(1 - 1 / 15)  # one of 15 tensors holds it all
