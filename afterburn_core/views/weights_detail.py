"""The weight diff's details as the doors show them: unpaired tensors, the LoRA adapter, a spectrum, norms, embeddings,
mixture-of-experts layers.

Each function takes the stored part of a ``WeightDiffResult`` and returns a
frozen view: the rows a table lists, in the order it lists them, and the
one-line reading made of their numbers. ``weights`` holds the grids and the
ranking of the tensors. Tensors are named as their files store them; the
stored norm shifts and embedding drift name theirs by normalized key, so
their views take the key → stored name map (``weights.display_names``).
Selects, ranks and words; draws and escapes nothing.
Cost: linear in the rows, plus a sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from afterburn_core.views.ranking import leaders, listed
from afterburn_core.views.weights import MODULE_LABELS, against, display_names
from afterburn_core.views.wording import shape, visible
from afterburn_core.weights.peers import peer_medians
from afterburn_core.weights.types import EmbeddingDrift, ExpertChange, MoeLayer, NormShift, TensorDiff, TokenDrift

#: How a tensor that was not compared one to one is listed, and what its note says.
UNPAIRED_STATUSES = {
    "base_only": "base only", "trained_only": "post-trained only", "resized": "resized", "tied": "tied",
}
UNPAIRED_NOTES = {
    "base_only": "no partner in the post-trained checkpoint",
    "trained_only": "no partner in the base",
    "tied": "shares its storage with {tied_to}; its change is that tensor's",
    "resized": "metrics cover the shared rows; {added_rows} rows added",
}
#: How each spectrum method the engine records (weights/spectrum.py) is named.
SPECTRUM_METHODS = {
    "randomized": "randomized range finder with power iterations (top k only)",
    "exact_gram_fp64": "exact: eigenvalues of the smaller Gram matrix in float64",
    "exact_svdvals": "exact: LAPACK svdvals",
    "lora_factors": "exact, from the LoRA factors (QR of A and B, SVD of the r × r core)",
}


@dataclass(frozen=True)
class Unpaired:
    """The tensors not compared one to one, with the line that counts them by status (empty: every tensor pairs)."""

    tensors: tuple[TensorDiff, ...]
    counts: str
    table: dict[str, list]


@dataclass(frozen=True)
class Adapter:
    """The tensors whose change was read from LoRA factors, their ranks, and the reading (no tensors: says why)."""

    tensors: tuple[TensorDiff, ...]
    table: dict[str, list]
    reading: str


#: How far the spectrum's log axis reaches past the data on each side (a factor): room for the points and the
#: error band, not the decades below the smallest value a default log axis pads to.
SPECTRUM_AXIS_MARGIN = 1.5


@dataclass(frozen=True)
class Spectrum:
    """One tensor's plottable singular values (exact zeros left out), rank markers, reading and method note."""

    values: tuple[float, ...]
    markers: tuple[tuple[str, float], ...]
    reading: str
    note: str
    #: Each value ± the stored error bound (the lower end clipped to the axis), and the axis's range: from a
    #: factor ``SPECTRUM_AXIS_MARGIN`` under the smallest value to that factor over the largest upper end, so
    #: a log axis neither reaches decades below the data nor hides the bound.
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    y_domain: tuple[float, float] | None = None


@dataclass(frozen=True)
class Norms:
    """The norm weights, most moved first, their names as stored (``labels``), median relative change and reading."""

    shifts: tuple[NormShift, ...]
    labels: tuple[str, ...]
    median: float
    reading: str

    def table(self) -> dict[str, list]:
        return {
            "Tensor": list(self.labels),
            "Kind": [shift.kind for shift in self.shifts],
            "Mean base": [shift.mean_base for shift in self.shifts],
            "Mean post-trained": [shift.mean_trained for shift in self.shifts],
            "Mean ratio": [shift.mean_ratio for shift in self.shifts],
            "Relative change": [shift.relative_change for shift in self.shifts],
            "Max |Δ|": [shift.max_abs_delta for shift in self.shifts],
        }


@dataclass(frozen=True)
class Embeddings:
    """The most-moved embedding rows (and head rows), most moved first, the reading, the tensors' stored names."""

    tokens: tuple[TokenDrift, ...]
    labels: tuple[str, ...]
    head_tokens: tuple[TokenDrift, ...]
    reading: str
    tensor: str
    head_tensor: str | None


def unpaired(tensors: tuple[TensorDiff, ...]) -> Unpaired:
    names = display_names(tensors)
    listed = tuple(tensor for tensor in tensors if tensor.status in UNPAIRED_STATUSES)
    counts = ", ".join(f"{sum(tensor.status == status for tensor in listed)} {label}"
                       for status, label in UNPAIRED_STATUSES.items() if any(t.status == status for t in listed))
    table = {
        "Tensor": [tensor.display_name for tensor in listed],
        "Key": [tensor.name for tensor in listed],
        "Status": [UNPAIRED_STATUSES[tensor.status] for tensor in listed],
        "Base shape": [shape(tensor.shape) if tensor.status != "trained_only" else "—" for tensor in listed],
        "Post-trained shape": [shape(tensor.trained_shape or tensor.shape) if tensor.status != "base_only" else "—"
                               for tensor in listed],
        "Note": [UNPAIRED_NOTES[tensor.status].format(tied_to=names.get(tensor.tied_to, tensor.tied_to)
                                                      if tensor.tied_to else "another tensor",
                                                      added_rows=tensor.added_rows) for tensor in listed],
    }
    return Unpaired(listed, counts, table)


def lora_rank(tensor: TensorDiff) -> int:
    """The rank of a LoRA tensor's change: its nonzero singular values (the spectrum is padded with exact zeros)."""
    return sum(value > 0 for value in tensor.singular_values or ())


def layer_span(layers: list[int]) -> str:
    """``layers 0–3`` for a run of three or more, else the layers listed."""
    if len(layers) > 2 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}–{layers[-1]}"
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(map(str, layers))


def adapter(tensors: tuple[TensorDiff, ...]) -> Adapter:
    factored = tuple(tensor for tensor in tensors if tensor.spectrum_method == "lora_factors")
    if not factored:
        return Adapter((), {}, "The post-trained side is an adapter, but no tensor's change was read from LoRA factors.")
    modules = [label for module, label in MODULE_LABELS.items() if any(t.module == module for t in factored)]
    layers = sorted({tensor.layer for tensor in factored if tensor.layer is not None})
    ranks = [lora_rank(tensor) for tensor in factored]
    distinct = sorted(set(ranks))
    table = {
        "Tensor": [tensor.display_name for tensor in factored],
        "Layer": [tensor.layer for tensor in factored],
        "Module": [MODULE_LABELS.get(tensor.module, tensor.module) for tensor in factored],
        "Rank": ranks,
        "σ₁": [tensor.singular_values[0] if tensor.singular_values else None for tensor in factored],
        "‖s·B·A‖": [tensor.frob_norm_delta for tensor in factored],
        "Relative change": [tensor.relative_change for tensor in factored],
    }
    rank_text = f"rank {distinct[0]} in each" if len(distinct) == 1 else f"ranks {distinct[0]} to {distinct[-1]}"
    return Adapter(factored, table, f"The adapter touches {', '.join(modules)} in "
                                    f"{layer_span(layers) if layers else 'no layer'} ({len(factored)} tensors), "
                                    f"{rank_text}.")


def spectrum(tensor: TensorDiff) -> Spectrum:
    """What the spectrum chart of ``tensor`` plots and says (its singular values must be stored)."""
    singular_values = tensor.singular_values or ()
    values = tuple(value for value in singular_values if value > 0)  # a log axis has no room for exact zeros
    possible = min(tensor.shape[:2]) if len(tensor.shape) >= 2 else len(values)
    known = len(singular_values)
    markers = []
    if tensor.effective_rank is not None and tensor.effective_rank <= known:
        markers.append((f"effective rank {tensor.effective_rank:.1f}", tensor.effective_rank))
    if tensor.rank_90 is not None and tensor.rank_90 <= known:
        markers.append((f"rank₉₀ = {tensor.rank_90}", float(tensor.rank_90)))
    if tensor.frob_norm_delta and values:
        share = (values[0] / tensor.frob_norm_delta) ** 2
        spread = (f"90% of it lies in {tensor.rank_90} of {possible} possible directions"
                  if tensor.rank_90 is not None else
                  f"the top {known} values hold {tensor.energy_top_k:.0%} of it, so 90% needs more than {known} "
                  f"of {possible} directions" if tensor.energy_top_k is not None else
                  f"{known} of {possible} values are known")
        reading = f"σ₁ alone holds {share:.0%} of this tensor's change; {spread}."
        if tensor.effective_rank is not None:
            reading = reading[:-1] + f" (effective rank {tensor.effective_rank:.1f})."
    else:
        reading = "This tensor did not change: its spectrum is empty."
    method = SPECTRUM_METHODS.get(tensor.spectrum_method or "", tensor.spectrum_method or "unknown")
    bound = "" if tensor.spectrum_error_bound is None else f" · error bound {tensor.spectrum_error_bound:.2g}"
    if tensor.spectrum_method == "lora_factors":
        coverage = (f"The whole spectrum is known: ΔW = s·B·A has rank {lora_rank(tensor)}, "
                    "every other singular value is exactly 0.")
    elif known < possible:
        coverage = f"Only the top {known} of {possible} singular values are computed" + (
            f"; they hold {tensor.energy_top_k:.1%} of ‖ΔW‖²." if tensor.energy_top_k is not None else ".")
    else:
        coverage = f"All {known} singular values are known."
    beyond = ("" if tensor.effective_rank is None or tensor.effective_rank <= known
              else f" The effective rank ({tensor.effective_rank:.1f}) lies beyond the computed values.")
    error = tensor.spectrum_error_bound or 0.0
    upper = tuple(value + error for value in values)
    domain = (min(values) / SPECTRUM_AXIS_MARGIN, max(upper) * SPECTRUM_AXIS_MARGIN) if values else None
    lower = tuple(max(value - error, domain[0]) for value in values) if domain else ()
    drawn = " The band around the line is that bound." if error and values else ""
    return Spectrum(values, tuple(markers), reading, f"Method: {method}{bound}. {coverage}{beyond}{drawn}",
                    lower, upper, domain)


def norms(shifts: tuple[NormShift, ...], tensors: tuple[TensorDiff, ...]) -> Norms | None:
    """The norm shifts ranked, named as ``tensors`` store them (None: no norm weight was compared).

    The most moved is read against the median of its peers (the same norm in every layer), the number the
    diagnosis's outlier finding prints (``weights.peers``); a norm without peers (the final norm) against
    the median of every norm weight, named as such.
    """
    if not shifts:
        return None
    names = display_names(tensors)
    ordered = tuple(sorted(shifts, key=lambda shift: -shift.relative_change))
    middle = median(shift.relative_change for shift in ordered)
    if ordered[0].relative_change == 0:
        return Norms((), (), middle, f"No norm weight changed: the relative change of all {len(ordered)} is 0.")
    labels = tuple(names.get(shift.name, shift.name) for shift in ordered)
    # Every norm that moves as much as the first, as printed, is named with it.
    top = leaders(ordered, lambda shift: shift.relative_change, lambda change: f"{change:.3f}")
    ratio = (f"mean ×{top[0].mean_ratio:.3g}" if top[0].mean_ratio is not None
             else f"mean {top[0].mean_base:.3g} → {top[0].mean_trained:.3g}")
    if top[0].offset:
        ratio += " of its effective scale 1 + w"
    peers = peer_medians(tensors).get(top[0].name)
    tensor = next((tensor for tensor in tensors if tensor.name == top[0].name), None)
    if peers is not None and peers.median > 0 and tensor is not None and tensor.relative_change is not None:
        measured = against(tensor.relative_change, peers.median,
                           f"median ‖ΔW‖/‖W‖ of its {peers.count} peers {peers.key}", ".4g")
    else:
        measured = against(top[0].relative_change, middle, f"median relative change of the {len(ordered)} norm weights",
                           ".3f")
    moved = (f"{labels[0]} moved most" if len(top) == 1 else
             f"{listed(labels[:len(top)])} moved most, tied at a relative change of {top[0].relative_change:.3f}; "
             f"{labels[0]}")
    return Norms(ordered, labels, middle, f"{moved}: {ratio}, {measured}.")


def embeddings(drift: EmbeddingDrift, names: dict[str, str]) -> Embeddings:
    """The embedding rows that moved most, labelled ``id  'token'``; tensors named by ``names`` (key → stored)."""
    ordered = tuple(sorted(drift.top_tokens, key=lambda token: -token.drift))
    head = tuple(sorted(drift.head_top_tokens, key=lambda token: -token.drift))
    tensor = names.get(drift.tensor, drift.tensor)
    head_tensor = names.get(drift.head_tensor, drift.head_tensor) if drift.head_tensor is not None else None
    if not ordered:
        return Embeddings((), (), head, "No row moved.", tensor, head_tensor)
    labels = tuple(f"{token.token_id}  {visible(token.token)}" for token in ordered)
    # Rows that drift as far as the first, as printed, tie: they are counted, never one of them called the most.
    top = leaders(ordered, lambda token: token.drift, lambda value: f"{value:.3g}")
    if len(top) == 1:
        reading = (f"The most-moved row, token {top[0].token_id} {visible(top[0].token)}, drifted "
                   f"{against(top[0].drift, drift.median_drift, 'median row drift')}.")
    else:
        reading = (f"{len(top)} rows tie as the most moved (tokens "
                   f"{listed([f'{token.token_id} {visible(token.token)}' for token in top])}), each drifted "
                   f"{against(top[0].drift, drift.median_drift, 'median row drift')}.")
    return Embeddings(ordered, labels, head, reading, tensor, head_tensor)


def token_table(tokens: tuple[TokenDrift, ...], median_drift: float | None) -> dict[str, list]:
    """Tokens with their drift; ``median_drift`` (None: not known for these rows) adds a ``× median`` column."""
    columns: dict[str, list] = {
        "Token id": [token.token_id for token in tokens],
        "Token": [visible(token.token) for token in tokens],
        "Drift": [token.drift for token in tokens],
    }
    if median_drift:
        columns["× median"] = [token.drift / median_drift for token in tokens]
    columns["Relative drift"] = [token.relative_drift for token in tokens]
    return columns


@dataclass(frozen=True)
class ExpertLayer:
    """One MoE layer's experts table (most changed first, the shared expert last) and its reading."""

    layer: int
    reading: str
    table: dict[str, list]


@dataclass(frozen=True)
class Experts:
    """Every MoE layer's experts table, in layer order; ``default`` is the index of the layer whose expert moved most."""

    layers: tuple[ExpertLayer, ...]
    default: int
    reading: str


#: The experts table's label of a layer's shared expert (Qwen2-MoE, DeepSeek's shared_experts).
SHARED_EXPERT = "shared"


def _expert_label(change: ExpertChange) -> str:
    return SHARED_EXPERT if change.shared else str(change.expert)


def _expert_layer(moe: MoeLayer) -> ExpertLayer:
    routed = sorted((change for change in moe.experts if not change.shared), key=lambda change: -change.relative_change)
    ordered = routed + [change for change in moe.experts if change.shared]
    table = {
        "Expert": [_expert_label(change) for change in ordered],
        "Relative change": [change.relative_change for change in ordered],
        "‖ΔW‖": [change.frob_norm_delta for change in ordered],
        "Share of layer": [change.share for change in ordered],
        "Matrices": [change.tensors for change in ordered],
        "Most changed matrix": [change.top_matrix or "—" for change in ordered],
        "rank₉₀": [change.rank_90 for change in ordered],
        "Low rank": [change.low_rank for change in ordered],
    }
    router = ("" if moe.router_relative_change is None
              else f" Its router moved by {moe.router_relative_change:.4g} (‖ΔW‖/‖W‖).")
    if not routed or routed[0].frob_norm_delta == 0:
        reading = f"No routed expert of layer {moe.layer} changed.{router}"
    else:
        top = routed[0]
        reading = (f"Expert {top.expert} changed most in layer {moe.layer}: relative change "
                   f"{top.relative_change:.4g}, {top.share:.0%} of the layer's routed-expert ‖ΔW‖² "
                   f"(Gini {moe.gini:.2f} over {len(routed)} experts).{router}")
    return ExpertLayer(moe.layer, reading, table)


def experts(layers: tuple[MoeLayer, ...]) -> Experts | None:
    """The MoE layers' experts tables (None: a dense model, no expert tensors)."""
    if not layers:
        return None
    views = tuple(_expert_layer(moe) for moe in layers)
    peaks = [max((change.relative_change for change in moe.experts if not change.shared), default=0.0)
             for moe in layers]
    default = max(range(len(layers)), key=lambda index: peaks[index])
    count = max(len(moe.experts) for moe in layers)
    shared = any(change.shared for moe in layers for change in moe.experts)
    reading = (f"{len(layers)} MoE layers of up to {count} expert groups{' (a shared expert included)' if shared else ''}; "
               f"layer {layers[default].layer} holds the most-changed expert." if peaks[default] > 0
               else f"{len(layers)} MoE layers; no routed expert changed.")
    return Experts(views, default, reading)


#: Expert rows a report or the terminal shows of one layer (the shared expert comes on top): Mixtral's
#: 8 experts whole; of Qwen3-MoE's 128 the most changed, as the dashboard's full table is a click away.
EXPERT_ROWS = 8
#: The experts table's columns as the reports and the terminal print them, and which of them hold numbers.
EXPERT_COLUMNS = ("expert", "‖ΔW‖/‖W‖", "‖ΔW‖", "share of layer", "matrices", "most changed matrix", "rank₉₀",
                  "low rank")
EXPERT_NUMERIC = (1, 2, 3, 4, 6)


def expert_cells(layer: ExpertLayer, limit: int = EXPERT_ROWS) -> list[tuple[str, ...]]:
    """The first ``limit`` rows of ``layer``'s table and its shared expert, as text (``EXPERT_COLUMNS``)."""
    table = layer.table
    rows = [(table["Expert"][index], f"{table['Relative change'][index]:.4g}", f"{table['‖ΔW‖'][index]:.4g}",
             "–" if table["Share of layer"][index] is None else f"{table['Share of layer'][index]:.1%}",
             str(table["Matrices"][index]), table["Most changed matrix"][index],
             "–" if table["rank₉₀"][index] is None else str(table["rank₉₀"][index]),
             {True: "yes", False: "no", None: "–"}[table["Low rank"][index]])
            for index in range(len(table["Expert"]))]
    return rows[:limit] + [row for row in rows[limit:] if row[0] == SHARED_EXPERT]


def spectrum_tensors(ordered: tuple[TensorDiff, ...]) -> dict[str, TensorDiff]:
    """Every matrix with a spectrum by its name as stored, in the order given: a stacked expert tensor as its slices."""
    return {matrix.display_name: matrix for tensor in ordered for matrix in (tensor.slices() or (tensor,))
            if matrix.singular_values}
