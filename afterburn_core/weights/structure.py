"""Where in the model the change sits: layer × module cells, heads, norms, embeddings, concentration.

Input: one ``WeightPass`` (the per-tensor records and their small vectors) and
the base checkpoint (its ``description`` gives the architecture map —
``checkpoints.architecture``: head geometry, fused layouts, Conv1D
orientation, offset norms; its folder the tokenizer).
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
  A fused tensor (``qkv``, ``gate_up``) counts as its roles: the q, k, v (gate,
  up) output features the map assigns, each a member of its own cell with
  no rank fields (the spectrum is the stored tensor's, on its own row). An
  offset norm's base is its effective scale 1 + w.
- **Heads**: head ``h`` of a q/k/v projection owns the output features
  ``h·d … (h+1)·d`` (d = head_dim) — of the q, k or v role for a fused
  tensor — and head ``h`` of the output projection owns the input features
  ``h·d … (h+1)·d``. Output features are rows of a Linear weight and columns of
  a Conv1D one (stored in × out, GPT-2), input features the other axis. A
  head's relative change is ‖ΔW[features]‖ / ‖W[features]‖; where the pass has
  no per-feature base energy (an o projection from LoRA factors), the
  denominator is the share of ‖W‖ an evenly spread head would hold:
  ‖ΔW[:, cols]‖ / (‖W‖ · sqrt(d / in_features)). k/v have
  ``num_key_value_heads`` heads; query head ``h`` reads kv head
  ``h // (num_heads / num_kv_heads)`` and takes its score (GQA). The combined
  score of query head ``h`` is sqrt(Σ_p ΔE_p) / sqrt(Σ_p E_p) over the
  projections p present (its q rows, its kv group's k and v rows, its o
  columns): the relative change of every weight that head reads or writes.
  A projection a layer does not have is NaN in ``per_projection``. No heads
  (no geometry in the config, no projection fits it): ``heads_reason`` says why.
- **Norms**: one ``NormShift`` per 1-D norm tensor, read at the scale the
  layer applies (1 + w for an offset norm: Gemma); ``mean_ratio`` is
  mean(trained) / mean(base) for gammas (None for betas, whose mean sits near 0).
- **Embeddings**: drift of row i = ‖ΔE[i]‖, relative drift = drift / ‖E_base[i]‖.
  ``median_drift`` is the median over the rows that moved: a fine-tune leaves
  the rows of tokens it never saw bit-identical, so the median over all rows
  is often exactly 0 and would make every moved row look infinite.
- **Concentration**: over the ‖ΔW‖² of the compared tensors, the share the top
  10 % (ceil) hold, and the Gini coefficient (0 = even, → 1 = one tensor).
- **Stacked experts** (``mlp.experts.gate_up_proj`` [E, …]): each expert slice
  is a member of its cell, with the slice's own rank fields; a gate|up slice
  counts as its gate and up features (``architecture.expert_split``, read
  on the slice's output axis), without rank fields like any fused role.
- **Experts** (``MoeLayer``): per MoE layer, per routed expert (per-expert
  tensors by their index, stacked tensors by slice) and for the shared
  expert as one group: ‖W‖ and ‖ΔW‖ as root-sum-of-squares over the
  expert's matrices, their ratio, the routed expert's share of the layer's
  routed-expert ‖ΔW‖², its most-changed matrix with that matrix's rank_90;
  the layer's ``top_share`` and ``gini`` over its routed experts' ‖ΔW‖², and
  the relative change of its router tensors (module ``router``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from afterburn_core.weights.types import (
    Concentration,
    EmbeddingDrift,
    ExpertChange,
    HeadScores,
    LayerModuleCell,
    MoeLayer,
    NormShift,
    TensorDiff,
    TokenDrift,
)
from afterburn_core.checkpoints.architecture import ArchitectureMap, HeadGeometry, architecture_map
from afterburn_core.checkpoints.naming import is_position_embedding
from afterburn_core.types import ResolvedCheckpoint
from afterburn_core.weights.tokens import TokenDecoder, load_token_decoder
from afterburn_core.weights.weight_pass import TensorDetail, WeightPass

#: Rows listed in ``EmbeddingDrift.top_tokens`` (and ``head_top_tokens``): what fits one table.
TOP_DRIFTED_TOKENS = 20
#: Share of tensors whose ‖ΔW‖² ``Concentration.top_decile_share`` sums (a decile, by convention).
TOP_SHARE_FRACTION = 0.10
#: Order of module types in the heatmap (rows of the stack, then the ends).
MODULE_ORDER = ("q", "k", "v", "o", "router", "gate", "up", "down", "qkv", "gate_up", "norm", "embed", "head", "other")
ATTENTION_PROJECTIONS = ("q", "k", "v", "o")
#: Module types a fused tensor carries; the architecture map splits them into their roles.
FUSED_MODULES = ("qkv", "gate_up")
#: Module types heads are sliced from.
HEAD_MODULES = ("q", "k", "v", "o", "qkv")
_COMPARED = ("changed", "unchanged", "resized")


@dataclass(frozen=True)
class Structure:
    """Aggregates of one weight pass, ready for the views and the diagnosis."""

    layers: tuple[LayerModuleCell, ...]
    heads: HeadScores | None
    norms: tuple[NormShift, ...]
    embeddings: EmbeddingDrift | None
    concentration: Concentration
    architecture: ArchitectureMap
    heads_reason: str | None = None
    experts: tuple[MoeLayer, ...] = ()


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


# --- parts: what each tensor contributes to a (layer, module) cell ----------------------------------


@dataclass(frozen=True)
class Part:
    """One module role's share of a compared tensor: the whole tensor, or one role of a fused one.

    ``base_sq`` / ``delta_sq`` are ‖W‖² / ‖ΔW‖² of the share (an offset norm's base is its
    effective scale 1 + w); the rank fields are the tensor's own, None for a fused role (the
    spectrum belongs to the stored tensor, whose row shows it).
    """

    layer: int | None
    module: str
    base_sq: float
    delta_sq: float
    effective_rank: float | None = None
    energy_top_k: float | None = None


def _vectors(detail: TensorDetail | None, axis: str) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(‖ΔW‖², ‖W‖²) per row or per column of a 2-D tensor, per entry of a 1-D one (None: not kept)."""
    if detail is None:
        return None
    if detail.base_values is not None and detail.trained_values is not None:
        base = np.asarray(detail.base_values, dtype=np.float64).ravel()
        delta = np.asarray(detail.trained_values, dtype=np.float64).ravel() - base
        return delta**2, base**2
    delta = detail.row_delta_sq if axis == "rows" else detail.col_delta_sq
    base = detail.row_base_sq if axis == "rows" else detail.col_base_sq
    if delta is None:
        return None
    return np.asarray(delta, dtype=np.float64), None if base is None else np.asarray(base, dtype=np.float64)


def output_vectors(tensor: TensorDiff, detail: TensorDetail | None, architecture: ArchitectureMap):
    """Per output feature (‖ΔW‖², ‖W‖²): rows of a Linear weight, columns of a Conv1D one (stored in × out)."""
    return _vectors(detail, "cols" if architecture.is_conv1d(tensor.name) and len(tensor.shape) == 2 else "rows")


def input_vectors(tensor: TensorDiff, detail: TensorDetail | None, architecture: ArchitectureMap):
    """Per input feature (‖ΔW‖², ‖W‖² or None): columns of a Linear weight, rows of a Conv1D one."""
    return _vectors(detail, "rows" if architecture.is_conv1d(tensor.name) else "cols")


def fused_roles(
    tensor: TensorDiff, detail: TensorDetail | None, architecture: ArchitectureMap
) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Each role's per-feature (‖ΔW‖², ‖W‖²) of a fused tensor, in the map's order; None when it cannot split."""
    vectors = output_vectors(tensor, detail, architecture)
    if vectors is None or vectors[1] is None:
        return None
    delta, base = vectors
    split = architecture.split(tensor.name, len(delta))
    if split is None:
        return None
    return {role: (delta[indices], base[indices]) for role, indices in split.items()}


def effective_norm_values(
    weight_pass: WeightPass, architecture: ArchitectureMap, name: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(base, trained) scale of a 1-D norm as the layer applies it: 1 + w for an offset norm, w otherwise."""
    detail = weight_pass.details.get(name)
    if detail is None or detail.base_values is None or detail.trained_values is None:
        return None
    base = np.asarray(detail.base_values, dtype=np.float64).ravel()
    trained = np.asarray(detail.trained_values, dtype=np.float64).ravel()
    if base.size == 0 or base.shape != trained.shape:
        return None
    offset = 1.0 if architecture.is_offset_norm(name) else 0.0
    return base + offset, trained + offset


def stacked_roles(
    tensor: TensorDiff, detail: TensorDetail | None, architecture: ArchitectureMap
) -> list[dict[str, tuple[float, float]]] | None:
    """Per expert slice of a stacked gate|up tensor, each role's (‖ΔW‖², ‖W‖²); None when it cannot split."""
    if detail is None or detail.slice_row_delta_sq is None or not tensor.expert_slices:
        return None
    found = architecture.expert_split(tensor.name, tensor.expert_slices[0].shape)
    if found is None:
        return None
    axis, split = found
    # A 2-D slice's output features are its rows (axis 0) or columns (axis 1); a 1-D slice's are its entries,
    # which the comparer keeps as the columns of one row.
    use_rows = axis == 0 and len(tensor.expert_slices[0].shape) == 2
    delta = detail.slice_row_delta_sq if use_rows else detail.slice_col_delta_sq
    base = detail.slice_row_base_sq if use_rows else detail.slice_col_base_sq
    return [{role: (float(delta[e, indices].sum()), float(base[e, indices].sum())) for role, indices in split.items()}
            for e in range(delta.shape[0])]


def _stacked_parts(weight_pass: WeightPass, architecture: ArchitectureMap, tensor: TensorDiff) -> list[Part]:
    """A stacked expert tensor's members: each slice (or each slice's gate and up) with the slice's rank fields."""
    if tensor.module in FUSED_MODULES:
        roles = stacked_roles(tensor, weight_pass.details.get(tensor.name), architecture)
        if roles is not None:
            return [Part(tensor.layer, role, base, delta) for by_role in roles
                    for role, (delta, base) in by_role.items()]
    return [Part(tensor.layer, tensor.module, part.frob_norm_base**2, part.frob_norm_delta**2,
                 part.effective_rank, part.energy_top_k) for part in tensor.expert_slices]


def tensor_parts(weight_pass: WeightPass, architecture: ArchitectureMap, tensor: TensorDiff) -> list[Part]:
    """What a compared tensor adds to the cells: its fused roles, or itself (an offset norm at its effective scale)."""
    if tensor.expert_slices:
        return _stacked_parts(weight_pass, architecture, tensor)
    detail = weight_pass.details.get(tensor.name)
    if tensor.module in FUSED_MODULES:
        roles = fused_roles(tensor, detail, architecture)
        if roles is not None:
            return [Part(tensor.layer, role, float(base.sum()), float(delta.sum())) for role, (delta, base) in roles.items()]
    base_sq = tensor.frob_norm_base**2
    if tensor.module == "norm" and architecture.is_offset_norm(tensor.name):
        values = effective_norm_values(weight_pass, architecture, tensor.name)
        base_sq = float((values[0] ** 2).sum()) if values is not None else base_sq
    return [Part(tensor.layer, tensor.module, base_sq, tensor.frob_norm_delta**2,
                 tensor.effective_rank, tensor.energy_top_k)]


# --- layer × module -----------------------------------------------------------------------------


def build_cells(weight_pass: WeightPass, architecture: ArchitectureMap) -> tuple[LayerModuleCell, ...]:
    """One heatmap cell per (layer, module type) present among the compared tensors' parts."""
    groups: dict[tuple[int | None, str], list[Part]] = defaultdict(list)
    for tensor in weight_pass.tensors:
        if is_compared(tensor):
            for part in tensor_parts(weight_pass, architecture, tensor):
                groups[(part.layer, part.module)].append(part)
    cells = []
    for (layer, module), members in groups.items():
        base = math.sqrt(sum(part.base_sq for part in members))
        delta = math.sqrt(sum(part.delta_sq for part in members))
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


def _energy_weighted(members: list[Part], attribute: str) -> float | None:
    """‖ΔW‖²-weighted mean of ``attribute`` over the members that have it (None if none does)."""
    pairs = [(part.delta_sq, getattr(part, attribute)) for part in members]
    pairs = [(weight, value) for weight, value in pairs if value is not None and math.isfinite(value)]
    total = sum(weight for weight, _ in pairs)
    if not pairs or total <= 0:
        return None
    return sum(weight * value for weight, value in pairs) / total


# --- heads --------------------------------------------------------------------------------------


def _per_head(
    delta: np.ndarray, base: np.ndarray | None, heads: int, head_dim: int, base_total: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Sum per-feature energies into ``heads`` blocks of ``head_dim``; None when the length does not fit.

    Without per-feature base energies (an o projection's input columns from a LoRA adapter) the
    base is the share an evenly spread head would hold: ‖W‖² · head_dim / features.
    """
    if len(delta) != heads * head_dim:
        return None
    per_head_delta = delta.reshape(heads, head_dim).sum(axis=1)
    if base is not None and len(base) == len(delta):
        return per_head_delta, base.reshape(heads, head_dim).sum(axis=1)
    return per_head_delta, np.full(heads, base_total * head_dim / len(delta))


def _projection_vectors(
    weight_pass: WeightPass, architecture: ArchitectureMap, tensor: TensorDiff
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per-feature energies of each attention projection a weight holds: q/k/v output features, o input features."""
    detail = weight_pass.details.get(tensor.name)
    if tensor.module == "qkv":
        return fused_roles(tensor, detail, architecture) or {}
    vectors = (input_vectors if tensor.module == "o" else output_vectors)(tensor, detail, architecture)
    return {tensor.module: vectors} if vectors is not None else {}


def build_heads(weight_pass: WeightPass, architecture: ArchitectureMap) -> tuple[HeadScores | None, str | None]:
    """The layer × head matrix (see the module docstring), or None and the sentence saying why not."""
    geometry = architecture.heads
    if geometry is None:
        return None, architecture.heads_reason
    group = geometry.num_heads // geometry.num_kv_heads
    # energies[layer][projection] = (delta per query head, base per query head)
    energies: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    seen = []
    for tensor in weight_pass.tensors:
        if tensor.module not in HEAD_MODULES or tensor.layer is None or not is_compared(tensor):
            continue
        if len(tensor.shape) != 2:
            continue  # biases follow their weight; the matrix is what heads are sliced from
        seen.append(tensor)
        for projection, (delta, base) in _projection_vectors(weight_pass, architecture, tensor).items():
            heads = geometry.num_kv_heads if projection in ("k", "v") else geometry.num_heads
            base_total = tensor.frob_norm_base**2
            found = _per_head(delta, base, heads, geometry.head_dim, base_total)
            if found is None:
                continue
            delta_heads, base_heads = found
            if heads != geometry.num_heads:  # a kv head's energy is read by each query head of its group
                delta_heads, base_heads = np.repeat(delta_heads, group), np.repeat(base_heads, group)
            energies[tensor.layer][projection] = (delta_heads, base_heads)
    if not energies:
        return None, _no_heads_reason(seen, geometry)
    layers = tuple(sorted(energies))
    projections = [p for p in ATTENTION_PROJECTIONS if any(p in energies[layer] for layer in layers)]
    nan_row = tuple(math.nan for _ in range(geometry.num_heads))
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
        num_heads=geometry.num_heads,
        num_kv_heads=geometry.num_kv_heads,
        layers=layers,
        scores=tuple(scores),
        per_projection=per_projection,
    ), None


def _no_heads_reason(seen: list[TensorDiff], geometry: HeadGeometry) -> str:
    heads, kv, width = geometry.num_heads, geometry.num_kv_heads, geometry.head_dim
    if not seen:
        return ("no tensor in the decoder stack is named as an attention projection "
                "(q / k / v / o, or a fused query_key_value / c_attn / qkv_proj)")
    return (f"no attention projection's shape fits {heads} query heads and {kv} key/value heads of width "
            f"{width} from config.json (e.g. {seen[0].name} is {list(seen[0].shape)})")


# --- norms --------------------------------------------------------------------------------------


def build_norms(weight_pass: WeightPass, architecture: ArchitectureMap) -> tuple[NormShift, ...]:
    """One ``NormShift`` per 1-D norm tensor whose values the pass kept, read at its effective scale."""
    shifts = []
    for tensor in weight_pass.tensors:
        if tensor.module != "norm" or not is_compared(tensor):
            continue
        values = effective_norm_values(weight_pass, architecture, tensor.name)
        if values is None:
            continue
        base, trained = values
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
                offset=architecture.is_offset_norm(tensor.name),
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
    tokens = [t for t in weight_pass.tensors if t.module == "embed" and not is_position_embedding(t.name)]
    embed = _pick(tokens, weight_pass.details)
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


# --- experts ------------------------------------------------------------------------------------


@dataclass
class _ExpertSum:
    """Running sums of one expert's matrices while ``build_experts`` walks the tensors."""

    base_sq: float = 0.0
    delta_sq: float = 0.0
    tensors: int = 0
    top: tuple[float, str, int | None, bool | None] | None = None  # (‖ΔW‖², name, rank_90, low_rank)

    def add(self, base_sq: float, delta_sq: float, name: str, rank_90: int | None, low_rank: bool | None) -> None:
        self.base_sq += base_sq
        self.delta_sq += delta_sq
        self.tensors += 1
        if self.top is None or delta_sq > self.top[0]:
            self.top = (delta_sq, name, rank_90, low_rank)


def build_experts(tensors: tuple[TensorDiff, ...]) -> tuple[MoeLayer, ...]:
    """One ``MoeLayer`` per layer holding expert tensors (see the module docstring); empty for a dense model."""
    sums: dict[int, dict[int | None, _ExpertSum]] = defaultdict(lambda: defaultdict(_ExpertSum))
    routers: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for tensor in tensors:
        if tensor.layer is None or not is_compared(tensor):
            continue
        if tensor.module == "router":
            routers[tensor.layer][0] += tensor.frob_norm_base**2
            routers[tensor.layer][1] += tensor.frob_norm_delta**2
        elif tensor.expert_slices:
            for part in tensor.expert_slices:
                sums[tensor.layer][part.expert].add(part.frob_norm_base**2, part.frob_norm_delta**2,
                                                    f"{tensor.display_name}[{part.expert}]", part.rank_90,
                                                    part.low_rank)
        elif tensor.expert is not None or tensor.shared_expert:
            key = None if tensor.shared_expert else tensor.expert
            sums[tensor.layer][key].add(tensor.frob_norm_base**2, tensor.frob_norm_delta**2, tensor.display_name,
                                        tensor.rank_90, tensor.low_rank)
    layers = []
    for layer in sorted(sums):
        routed = {expert: total for expert, total in sums[layer].items() if expert is not None}
        routed_sq = [total.delta_sq for total in routed.values()]
        routed_total = sum(routed_sq)
        changes = [_expert_change(expert, total, routed_total) for expert, total in sorted(routed.items())]
        if None in sums[layer]:
            changes.append(_expert_change(None, sums[layer][None], routed_total))
        router = routers.get(layer)
        layers.append(MoeLayer(
            layer=layer,
            experts=tuple(changes),
            top_share=max(routed_sq) / routed_total if routed_total > 0 else 0.0,
            gini=gini(routed_sq),
            router_relative_change=_ratio(math.sqrt(router[1]), math.sqrt(router[0])) if router else None,
        ))
    return tuple(layers)


def _expert_change(expert: int | None, total: _ExpertSum, routed_total: float) -> ExpertChange:
    _, top_name, rank_90, low_rank = total.top if total.top else (0.0, None, None, None)
    changed = total.delta_sq > 0
    return ExpertChange(
        expert=expert,
        shared=expert is None,
        tensors=total.tensors,
        frob_norm_base=math.sqrt(total.base_sq),
        frob_norm_delta=math.sqrt(total.delta_sq),
        relative_change=_ratio(math.sqrt(total.delta_sq), math.sqrt(total.base_sq)),
        share=(total.delta_sq / routed_total if routed_total > 0 else 0.0) if expert is not None else None,
        top_matrix=top_name if changed else None,
        rank_90=rank_90 if changed else None,
        low_rank=low_rank if changed else None,
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
    architecture = architecture_map(base.description)
    heads, heads_reason = build_heads(weight_pass, architecture)
    return Structure(
        layers=build_cells(weight_pass, architecture),
        heads=heads,
        norms=build_norms(weight_pass, architecture),
        embeddings=embeddings,
        concentration=build_concentration(weight_pass.tensors),
        architecture=architecture,
        heads_reason=heads_reason,
        experts=build_experts(weight_pass.tensors),
    )
