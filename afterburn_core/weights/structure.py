"""Where in the model the change sits: layer × module cells, heads, norms, embeddings, concentration.

Input: one ``WeightPass`` (the per-tensor records and their small vectors) and
the base checkpoint (its ``description`` gives the head layout; its folder the tokenizer).
Output: a ``Structure``: the aggregates the heatmaps, head matrix, norm table
and embedding-drift table show, and the concentration numbers the diagnosis
reads. It does not read weights (the engine did, once) and does not judge
(``diagnosis`` does). Cost: O(rows + cols) per tensor over vectors already in
memory and, for the top drifted tokens, one tokenizer load.

Definitions (what each number means):

- **Cell** (layer, module): ``frob_norm_base`` / ``frob_norm_delta`` are the
  root-sum-of-squares of the members' norms (the norm of the concatenated
  group), ``relative_change`` = delta / base of the group; ``effective_rank``
  and ``energy_top_k`` are the ‖ΔW‖²-weighted means of the members that have
  one. Only tensors compared on both sides count (not one-sided, not tied).
- **Heads**: head ``h`` of a q/k/v projection owns the output rows
  ``h·d … (h+1)·d`` (d = head_dim); head ``h`` of ``o_proj`` owns the input
  columns ``h·d … (h+1)·d``. A q/k/v head's relative change is
  ‖ΔW[rows]‖ / ‖W[rows]‖. For o only ‖ΔW[:, cols]‖ is kept by the pass, so the
  denominator is the share of ‖W_o‖ an evenly spread head would hold:
  ‖ΔW_o[:, cols]‖ / (‖W_o‖ · sqrt(d / in_features)). k/v have
  ``num_key_value_heads`` heads; query head ``h`` reads kv head
  ``h // (num_heads / num_kv_heads)`` and takes its score (GQA). The combined
  score of query head ``h`` is sqrt(Σ_p ΔE_p) / sqrt(Σ_p E_p) over the
  projections p present (its q rows, its kv group's k and v rows, its o
  columns): the relative change of every weight that head reads or writes.
  A projection a layer does not have is NaN in ``per_projection``.
- **Norms**: one ``NormShift`` per 1-D norm tensor; ``mean_ratio`` is
  mean(trained) / mean(base) for gammas (None for betas, whose mean sits near 0).
- **Embeddings**: drift of row i = ‖ΔE[i]‖, relative drift = drift / ‖E_base[i]‖.
  ``median_drift`` is the median over the rows that moved: a fine-tune leaves
  the rows of tokens it never saw bit-identical, so the median over all rows
  is often exactly 0 and would make every moved row look infinite.
- **Concentration**: over the ‖ΔW‖² of the compared tensors, the share the top
  10 % (ceil) hold, and the Gini coefficient (0 = even, → 1 = one tensor).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from afterburn_core.weights.types import (
    Concentration,
    EmbeddingDrift,
    HeadScores,
    LayerModuleCell,
    NormShift,
    TensorDiff,
    TokenDrift,
)
from afterburn_core.types import ResolvedCheckpoint
from afterburn_core.weights.tokens import TokenDecoder, load_token_decoder
from afterburn_core.weights.weight_pass import TensorDetail, WeightPass

#: Rows listed in ``EmbeddingDrift.top_tokens`` (and ``head_top_tokens``): what fits one table.
TOP_DRIFTED_TOKENS = 20
#: Share of tensors whose ‖ΔW‖² ``Concentration.top_decile_share`` sums (a decile, by convention).
TOP_SHARE_FRACTION = 0.10
#: Order of module types in the heatmap (rows of the stack, then the ends).
MODULE_ORDER = ("q", "k", "v", "o", "gate", "up", "down", "norm", "embed", "head", "other")
ATTENTION_PROJECTIONS = ("q", "k", "v", "o")
_COMPARED = ("changed", "unchanged", "resized")


@dataclass(frozen=True)
class HeadLayout:
    """Attention head layout from the base's ``ModelDescription``."""

    num_heads: int
    num_kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class Structure:
    """Aggregates of one weight pass, ready for the views and the diagnosis."""

    layers: tuple[LayerModuleCell, ...]
    heads: HeadScores | None
    norms: tuple[NormShift, ...]
    embeddings: EmbeddingDrift | None
    concentration: Concentration


def is_compared(tensor: TensorDiff) -> bool:
    """True for a tensor both sides hold with a delta (not one-sided, not tied)."""
    return (
        tensor.status in _COMPARED
        and tensor.frob_norm_base is not None
        and tensor.frob_norm_delta is not None
    )


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with 0/0 = 0 and x/0 = inf (a weight grown from zero)."""
    if denominator > 0:
        return numerator / denominator
    return 0.0 if numerator == 0 else math.inf


# --- layer × module -----------------------------------------------------------------------------


def build_cells(tensors: tuple[TensorDiff, ...]) -> tuple[LayerModuleCell, ...]:
    """One heatmap cell per (layer, module type) present among the compared tensors."""
    groups: dict[tuple[int | None, str], list[TensorDiff]] = defaultdict(list)
    for tensor in tensors:
        if is_compared(tensor):
            groups[(tensor.layer, tensor.module)].append(tensor)
    cells = []
    for (layer, module), members in groups.items():
        base = math.sqrt(sum(t.frob_norm_base**2 for t in members))
        delta = math.sqrt(sum(t.frob_norm_delta**2 for t in members))
        cells.append(
            LayerModuleCell(
                layer=layer,
                module=module,
                tensors=len(members),
                frob_norm_base=base,
                frob_norm_delta=delta,
                relative_change=_ratio(delta, base),
                effective_rank=_energy_weighted(members, "effective_rank"),
                energy_top_k=_energy_weighted(members, "energy_top_k"),
            )
        )
    order = {module: index for index, module in enumerate(MODULE_ORDER)}
    cells.sort(key=lambda c: (c.layer is None, c.layer or 0, order.get(c.module, len(order))))
    return tuple(cells)


def _energy_weighted(members: list[TensorDiff], attribute: str) -> float | None:
    """‖ΔW‖²-weighted mean of ``attribute`` over the members that have it (None if none does)."""
    pairs = [(t.frob_norm_delta**2, getattr(t, attribute)) for t in members]
    pairs = [(weight, value) for weight, value in pairs if value is not None and math.isfinite(value)]
    total = sum(weight for weight, _ in pairs)
    if not pairs or total <= 0:
        return None
    return sum(weight * value for weight, value in pairs) / total


# --- heads --------------------------------------------------------------------------------------


def read_head_layout(base: ResolvedCheckpoint) -> HeadLayout | None:
    """Head counts and head_dim from the base's description; None when its config does not give a usable one."""
    description = base.description
    num_heads, num_kv_heads, head_dim = description.num_heads, description.num_kv_heads, description.head_dim
    if num_heads is None or num_kv_heads is None or head_dim is None or head_dim <= 0:
        return None
    if num_kv_heads <= 0 or num_heads % num_kv_heads:
        return None
    return HeadLayout(num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim)


def _head_energies(
    tensor: TensorDiff, detail: TensorDetail | None, heads: int, head_dim: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-head (‖ΔW slice‖², ‖W slice‖²) of one projection; None when its shape does not fit the layout."""
    if len(tensor.shape) != 2:
        return None
    rows, cols = tensor.shape
    base_total = (tensor.frob_norm_base or 0.0) ** 2
    if tensor.module == "o":
        if cols != heads * head_dim:
            return None
        base = np.full(heads, base_total * head_dim / cols)
        vector = detail.col_delta_sq if detail is not None else None
    else:
        if rows != heads * head_dim:
            return None
        vector = detail.row_delta_sq if detail is not None else None
        if detail is not None and detail.row_base_sq is not None and len(detail.row_base_sq) == rows:
            base = np.asarray(detail.row_base_sq, dtype=np.float64).reshape(heads, head_dim).sum(axis=1)
        else:
            base = np.full(heads, base_total * head_dim / rows)
    if vector is not None and len(vector) == heads * head_dim:
        delta = np.asarray(vector, dtype=np.float64).reshape(heads, head_dim).sum(axis=1)
    elif tensor.frob_norm_delta == 0:
        delta = np.zeros(heads)
    else:
        # No per-row vector (should not happen for a 2-D tensor): spread the change evenly.
        delta = np.full(heads, (tensor.frob_norm_delta or 0.0) ** 2 / heads)
    return delta, base


def build_heads(weight_pass: WeightPass, layout: HeadLayout | None) -> HeadScores | None:
    """The layer × head matrix (see the module docstring); None without a layout or projections."""
    if layout is None:
        return None
    group = layout.num_heads // layout.num_kv_heads
    # energies[layer][projection] = (delta per query head, base per query head)
    energies: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for tensor in weight_pass.tensors:
        if tensor.module not in ATTENTION_PROJECTIONS or tensor.layer is None or not is_compared(tensor):
            continue
        if not tensor.name.endswith("weight"):
            continue  # biases follow their weight; the matrix is what heads are sliced from
        heads = layout.num_kv_heads if tensor.module in ("k", "v") else layout.num_heads
        found = _head_energies(tensor, weight_pass.details.get(tensor.name), heads, layout.head_dim)
        if found is None:
            continue
        delta, base = found
        if heads != layout.num_heads:  # a kv head's energy is read by each query head of its group
            delta, base = np.repeat(delta, group), np.repeat(base, group)
        energies[tensor.layer][tensor.module] = (delta, base)
    if not energies:
        return None
    layers = tuple(sorted(energies))
    projections = [p for p in ATTENTION_PROJECTIONS if any(p in energies[layer] for layer in layers)]
    nan_row = tuple(math.nan for _ in range(layout.num_heads))
    per_projection: dict[str, tuple[tuple[float, ...], ...]] = {}
    for projection in projections:
        matrix = []
        for layer in layers:
            if projection in energies[layer]:
                delta, base = energies[layer][projection]
                matrix.append(tuple(_ratio(math.sqrt(d), math.sqrt(b)) for d, b in zip(delta, base)))
            else:
                matrix.append(nan_row)
        per_projection[projection] = tuple(matrix)
    scores = []
    for layer in layers:
        delta = sum(pair[0] for pair in energies[layer].values())
        base = sum(pair[1] for pair in energies[layer].values())
        scores.append(tuple(_ratio(math.sqrt(d), math.sqrt(b)) for d, b in zip(delta, base)))
    return HeadScores(
        num_layers=len(layers),
        num_heads=layout.num_heads,
        num_kv_heads=layout.num_kv_heads,
        layers=layers,
        scores=tuple(scores),
        per_projection=per_projection,
    )


# --- norms --------------------------------------------------------------------------------------


def build_norms(weight_pass: WeightPass) -> tuple[NormShift, ...]:
    """One ``NormShift`` per 1-D norm tensor whose values the pass kept."""
    shifts = []
    for tensor in weight_pass.tensors:
        if tensor.module != "norm" or not is_compared(tensor):
            continue
        detail = weight_pass.details.get(tensor.name)
        if detail is None or detail.base_values is None or detail.trained_values is None:
            continue
        base = np.asarray(detail.base_values, dtype=np.float64).ravel()
        trained = np.asarray(detail.trained_values, dtype=np.float64).ravel()
        if base.size == 0 or base.shape != trained.shape:
            continue
        kind = "beta" if tensor.name.endswith("bias") else "gamma"
        delta = trained - base
        mean_base, mean_trained = float(base.mean()), float(trained.mean())
        shifts.append(
            NormShift(
                name=tensor.name,
                layer=tensor.layer,
                kind=kind,
                mean_base=mean_base,
                mean_trained=mean_trained,
                mean_ratio=mean_trained / mean_base if kind == "gamma" and mean_base != 0 else None,
                relative_change=_ratio(float(np.linalg.norm(delta)), float(np.linalg.norm(base))),
                max_abs_delta=float(np.abs(delta).max()),
            )
        )
    return tuple(shifts)


# --- embeddings ---------------------------------------------------------------------------------


def row_drifts(detail: TensorDetail) -> np.ndarray:
    """drift[i] = ‖ΔE[i]‖ over the shared rows, shape (rows,)."""
    return np.sqrt(np.maximum(np.asarray(detail.row_delta_sq, dtype=np.float64), 0.0))


def moved_median(drifts: np.ndarray) -> float:
    """Median drift over the rows that moved (0 when none did)."""
    moved = drifts[drifts > 0]
    return float(np.median(moved)) if moved.size else 0.0


def _top_tokens(detail: TensorDetail, decoder: TokenDecoder) -> tuple[TokenDrift, ...]:
    drifts = row_drifts(detail)
    # Stable sort on -drift: ties keep id order, so the table is deterministic.
    order = np.argsort(-drifts, kind="stable")[:TOP_DRIFTED_TOKENS]
    base_sq = detail.row_base_sq
    top = []
    for token_id in order:
        drift = float(drifts[token_id])
        if drift <= 0:
            break
        base_norm = math.sqrt(float(base_sq[token_id])) if base_sq is not None else math.nan
        top.append(
            TokenDrift(
                token_id=int(token_id),
                token=decoder.token(int(token_id)),
                drift=drift,
                relative_drift=_ratio(drift, base_norm) if not math.isnan(base_norm) else math.nan,
            )
        )
    return tuple(top)


def _pick(tensors: list[TensorDiff], details: dict[str, TensorDetail]) -> TensorDiff | None:
    """The tensor with the most rows among those the pass kept row vectors for."""
    usable = [
        t
        for t in tensors
        if is_compared(t) and details.get(t.name) is not None and details[t.name].row_delta_sq is not None
    ]
    return max(usable, key=lambda t: (t.shape[0] if t.shape else 0, t.name), default=None)


def build_embeddings(weight_pass: WeightPass, decoder: TokenDecoder | None) -> EmbeddingDrift | None:
    """Per-token drift of the input embedding and of an untied head; None without an embedding."""
    embed = _pick([t for t in weight_pass.tensors if t.module == "embed"], weight_pass.details)
    if embed is None:
        return None
    decoder = decoder or TokenDecoder()
    detail = weight_pass.details[embed.name]
    drifts = row_drifts(detail)
    head = _pick([t for t in weight_pass.tensors if t.module == "head"], weight_pass.details)
    return EmbeddingDrift(
        tensor=embed.name,
        rows_compared=int(drifts.size),
        rows_added=int(embed.added_rows),
        rows_unchanged=int(np.count_nonzero(drifts == 0)),
        median_drift=moved_median(drifts),
        top_tokens=_top_tokens(detail, decoder),
        head_tensor=head.name if head is not None else None,
        head_top_tokens=_top_tokens(weight_pass.details[head.name], decoder) if head is not None else (),
    )


# --- concentration ------------------------------------------------------------------------------


def top_share(energies: list[float] | np.ndarray, fraction: float = TOP_SHARE_FRACTION) -> float:
    """Share of the total held by the largest ceil(fraction · n) values (0 when the total is 0)."""
    values = np.sort(np.asarray(energies, dtype=np.float64))[::-1]
    total = float(values.sum())
    if values.size == 0 or total <= 0:
        return 0.0
    count = max(1, math.ceil(fraction * values.size))
    return float(values[:count].sum()) / total


def gini(energies: list[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values: Σ(2i − n − 1)·x_(i) / (n·Σx), x sorted ascending."""
    values = np.sort(np.asarray(energies, dtype=np.float64))
    total = float(values.sum())
    if values.size == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, values.size + 1)
    return float(((2 * ranks - values.size - 1) * values).sum() / (values.size * total))


def build_concentration(tensors: tuple[TensorDiff, ...]) -> Concentration:
    """How the total ‖ΔW‖² spreads over the compared tensors."""
    energies = [t.frob_norm_delta**2 for t in tensors if is_compared(t)]
    return Concentration(
        top_decile_share=top_share(energies),
        gini=gini(energies),
        tensors_with_change=sum(1 for energy in energies if energy > 0),
    )


# --- all of it ----------------------------------------------------------------------------------


def build_structure(
    weight_pass: WeightPass, base: ResolvedCheckpoint, *, decoder: TokenDecoder | None = None
) -> Structure:
    """Aggregate one pass; ``base`` gives the head layout and the tokenizer (``decoder`` overrides it)."""
    embeddings = None
    if any(t.module == "embed" for t in weight_pass.tensors):
        if decoder is None:
            root = base.adapter_base.root if base.kind == "adapter" and base.adapter_base else base.root
            decoder = load_token_decoder(root)
        embeddings = build_embeddings(weight_pass, decoder)
    return Structure(
        layers=build_cells(weight_pass.tensors),
        heads=build_heads(weight_pass, read_head_layout(base)),
        norms=build_norms(weight_pass),
        embeddings=embeddings,
        concentration=build_concentration(weight_pass.tensors),
    )
