"""The bundled demo pairs through the real engine: the edited pair names its planted edits, the control does not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from afterburn_core.checkpoints import resolve_pair
from afterburn_core.demo import BASE_DIR
from afterburn_core.weights.types import Diagnosis
from afterburn_core.weights import diagnosis as dx
from afterburn_core.weights.diagnosis import diagnose
from afterburn_core.weights.engine import compare_weights
from afterburn_core.weights.structure import Structure, build_structure

PLANTED = json.loads((BASE_DIR.parent / "measurements.json").read_text())["planted"]
# Findings name tensors as the checkpoint stores them ("model." prefix kept), as the rows do.
PROJECTION = PLANTED["projection"]
NORM = PLANTED["norm_tensor"]


def analyse(trained: str) -> tuple[Structure, Diagnosis]:
    base, other = resolve_pair("demo:base", f"demo:{trained}")
    weight_pass = compare_weights(base, other, device="cpu")
    structure = build_structure(weight_pass, base)
    return structure, diagnose(weight_pass, structure)


@pytest.fixture(scope="module")
def edited() -> tuple[Structure, Diagnosis]:
    return analyse("trained")


@pytest.fixture(scope="module")
def control() -> tuple[Structure, Diagnosis]:
    return analyse("control")


def titles(diagnosis: Diagnosis) -> list[str]:
    return [finding.title for finding in diagnosis.findings]


def finding(diagnosis: Diagnosis, title: str):
    matches = [f for f in diagnosis.findings if f.title == title]
    assert matches, f"no finding {title!r} in {titles(diagnosis)}"
    return matches[0]


def test_edited_pair_names_the_planted_projection_as_low_rank_outlier(edited) -> None:
    _, diagnosis = edited
    outlier = finding(diagnosis, f"Outlier tensor: {PROJECTION}")
    assert outlier.value >= dx.PEER_OUTLIER_RATIO
    low_rank = finding(diagnosis, f"Low-rank change: {PROJECTION}")
    assert low_rank.value <= PLANTED["projection_rank"]
    assert f"{int(low_rank.value)} of 128 directions" in low_rank.detail


def test_edited_pair_names_the_rescaled_norm(edited) -> None:
    _, diagnosis = edited
    rescale = finding(diagnosis, f"Norm rescaled: {NORM}")
    # ×1.25 by hand on top of the fine-tune's own drift (measured: median ratio 1.2593).
    assert rescale.value == pytest.approx(PLANTED["norm_scale"], abs=0.02)
    assert "scaled ×1.26" in rescale.detail and "the median norm moved" in rescale.detail
    assert [t for t in titles(diagnosis) if t.startswith("Norm rescaled")] == [f"Norm rescaled: {NORM}"]


def test_edited_pair_moved_tokens_are_the_top_drifted_and_flagged(edited) -> None:
    structure, diagnosis = edited
    moved = PLANTED["moved_token_ids"]
    top = structure.embeddings.top_tokens
    assert {t.token_id for t in top[: len(moved)]} == set(moved)
    decoded = dict(zip(moved, (token.replace("Ġ", " ") for token in PLANTED["moved_tokens"]), strict=True))
    assert {t.token_id: t.token for t in top[: len(moved)]} == decoded
    rows = finding(diagnosis, "Embedding rows moved far beyond the rest")
    assert rows.detail.startswith(f"{len(moved)} rows of embed_tokens.weight")
    for token_id in moved:
        assert f"{token_id} {decoded[token_id]!r}" in rows.detail
    assert rows.value == pytest.approx(14.48, rel=0.01)  # README: drift ÷ median drift of moving rows


def test_control_pair_flags_none_of_the_planted_kinds(control) -> None:
    structure, diagnosis = control
    for prefix in ("Outlier tensor", "Low-rank", "Norm rescaled", "Embedding rows moved far", "Layer "):
        assert not any(t.startswith(prefix) for t in titles(diagnosis)), titles(diagnosis)
    assert "Full-rank changes" in titles(diagnosis)
    assert not set(PLANTED["moved_token_ids"]) & {t.token_id for t in structure.embeddings.top_tokens}


def test_the_two_pairs_read_differently(edited, control) -> None:
    (_, edited_dx), (_, control_dx) = edited, control
    assert (edited_dx.profile, control_dx.profile) == ("heavy", "standard")
    notable = [f.title for f in edited_dx.findings if f.severity != "info"]
    assert len(notable) >= 5 and not [f for f in control_dx.findings if f.severity != "info"]


def test_heads_put_the_planted_layer_on_top(edited, control) -> None:
    (edited_structure, _), (control_structure, _) = edited, control
    heads = edited_structure.heads
    assert (heads.num_heads, heads.num_kv_heads, heads.layers) == (4, 2, (0, 1, 2, 3))
    q_scores = np.array(heads.per_projection["q"])
    assert q_scores.argmax() // 4 == 1  # the rank-3 edit spans every head of layer 1's q_proj
    assert q_scores[1].min() > 2 * np.delete(q_scores, 1, axis=0).max()
    assert np.array(control_structure.heads.per_projection["q"]).max() < q_scores[1].min()


def test_base_against_itself_is_identical() -> None:
    structure, diagnosis = analyse("base")
    assert diagnosis.profile == "identical"
    assert titles(diagnosis) == ["No tensor changed"]
    assert structure.concentration.tensors_with_change == 0
    assert structure.embeddings.top_tokens == () and structure.embeddings.rows_unchanged == 1024
