"""The weight diff as every door shows it: the diagnosis, the grids, the tensors ranked, readings made of numbers.

``weights_view(result)`` turns a stored ``WeightDiffResult`` into a frozen
``WeightsView``: the profile and its colour, the headline metrics, the
layer × module grid of every cell metric and the per-head grid of every
projection (each with its one-line reading), and the compared tensors
ranked by relative change with the reading of the ranking. The Weights page,
the reports and the terminal all rank and read from here. Tensors are named
as their files store them (``TensorDiff.display_name``), the normalized
pairing key beside them where a table has room; ``find_tensors`` matches
either. The rest of the
page (unpaired tensors, the adapter, spectra, norms, embeddings) is
``weights_detail``'s.

Selects, ranks and words what the analysis stored (a median or a ratio of
two stored numbers at most); draws and escapes nothing. Cost: linear in the
tensors, plus one sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import get_args

from afterburn_core.views.theme import PROFILE_TONES
from afterburn_core.views.ranking import leaders, listed
from afterburn_core.views.wording import count, duration, shape, visible
from afterburn_core.weights.types import Finding, HeadScores, ModuleType, TensorDiff, WeightDiffResult

#: Rows of the "most changed tensors" table of the reports and the terminal, and curves of the spectra chart.
TOP_TENSORS = 12
SPECTRA = 6
#: Grid column order: the core's module types in their declared order (q, k, v, o, gate, up, down, …).
MODULE_ORDER: tuple[str, ...] = get_args(ModuleType)
#: How the dashboard labels the module types (Llama names, the common case).
MODULE_LABELS = {
    "q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
    "gate": "gate_proj", "up": "up_proj", "down": "down_proj", "qkv": "fused qkv", "gate_up": "fused gate_up",
    "norm": "norm", "embed": "embedding", "head": "lm_head", "other": "other",
}
#: The grid row of the tensors outside the decoder stack (embeddings, final norm, head).
OUTSIDE_LAYERS = "outside"
#: Statuses of a tensor compared one to one (the "Tensors compared" count).
COMPARED_STATUSES = ("changed", "unchanged", "resized")
#: Head projections in the order of the attention block, then any other by name.
PROJECTION_ORDER = {"q": 0, "k": 1, "v": 2, "o": 3}
COMBINED = "combined"


@dataclass(frozen=True)
class CellMetric:
    """A ``LayerModuleCell`` field as a heatmap: which field, whether low values stand out, its number format."""

    field: str
    low_stands_out: bool
    number_format: str
    title: str


#: The grid metrics a page may pick, by label (the reports draw the first).
CELL_METRICS = {
    "Relative change": CellMetric("relative_change", False, ".3f", "Relative change ‖ΔW‖/‖W‖"),
    "‖ΔW‖": CellMetric("frob_norm_delta", False, ".3g", "‖ΔW‖"),
    "Effective rank": CellMetric("effective_rank", True, ".1f", "Effective rank"),
    "Energy in top k": CellMetric("energy_top_k", False, ".0%", "Energy in top k"),
}


@dataclass(frozen=True)
class Grid:
    """A heatmap: ``values[row][column]``, None where no cell exists, and the line that reads it."""

    title: str
    row_title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]
    reading: str = ""
    column_title: str = ""
    column_labels: tuple[str, ...] = ()
    low_stands_out: bool = False
    number_format: str = ".3g"

    def cells(self) -> tuple[tuple[str, str, float], ...]:
        """Every cell that has a value, as (row, column label, value)."""
        labels = self.column_labels or self.columns
        return tuple((row, label, value) for row, line in zip(self.rows, self.values)
                     for label, value in zip(labels, line) if value is not None)


@dataclass(frozen=True)
class Metric:
    """One headline number: its label, the value as text, what it means."""

    label: str
    value: str
    help: str = ""


@dataclass(frozen=True)
class RankedTensors:
    """The compared tensors, most changed first, and the line that reads the ranking."""

    tensors: tuple[TensorDiff, ...]
    reading: str


@dataclass(frozen=True)
class WeightsView:
    """Everything the doors show of a weight diff (the details are ``weights_detail``'s)."""

    caption: str
    profile: str
    profile_tone: str
    metrics: tuple[Metric, ...]
    findings: tuple[Finding, ...]
    no_findings: str
    grids: dict[str, Grid | None]
    no_cells: dict[str, str]
    heads: dict[str, Grid]
    heads_note: str
    ranked: RankedTensors


def where(layer: int | None, module: str) -> str:
    """``layer 3 q_proj``; outside the stack the module's label (``the final norm`` for a norm)."""
    label = MODULE_LABELS.get(module, module)
    if layer is None:
        return "the final norm" if module == "norm" else label
    return f"layer {layer} {label}"


def against(value: float, reference: float, what: str, number_format: str = ".3g") -> str:
    """``3.5× the median head (0.61 against 0.17)``, or ``0.61, while the median head is 0``."""
    if reference > 0:
        return f"{value / reference:.1f}× the {what} ({value:{number_format}} against {reference:{number_format}})"
    return f"{value:{number_format}}, while the {what} is 0"


def layer_module_grid(weights: WeightDiffResult, label: str = "Relative change") -> Grid | None:
    """One cell metric per layer (rows, then the tensors outside the stack) × module type (columns)."""
    metric = CELL_METRICS[label]
    cells = [cell for cell in weights.layers if getattr(cell, metric.field) is not None]
    if not cells:
        return None
    layers = sorted({cell.layer for cell in cells if cell.layer is not None})
    rows = [str(layer) for layer in layers] + ([OUTSIDE_LAYERS] if any(cell.layer is None for cell in cells) else [])
    columns = [module for module in MODULE_ORDER if any(cell.module == module for cell in cells)]
    by_position = {(OUTSIDE_LAYERS if cell.layer is None else str(cell.layer), cell.module): getattr(cell, metric.field)
                   for cell in cells}
    values = tuple(tuple(by_position.get((row, column)) for column in columns) for row in rows)
    return Grid(metric.title, "layer", tuple(rows), tuple(columns), values, _grid_reading(weights, label, cells),
                "module", tuple(MODULE_LABELS.get(column, column) for column in columns), metric.low_stands_out,
                metric.number_format)


def _grid_reading(weights: WeightDiffResult, label: str, cells: list) -> str:
    """The grid's line; cells tied for the extreme at the precision printed are named together."""
    metric = CELL_METRICS[label]
    middle = median(float(getattr(cell, metric.field)) for cell in cells)

    def places(tied: list) -> str:
        return listed([where(cell.layer, cell.module) for cell in tied]) + (", tied" if len(tied) > 1 else "")

    if metric.low_stands_out:
        lowest = leaders(cells, lambda cell: -cell.effective_rank, lambda value: f"{-value:.1f}")
        return (f"Lowest effective rank: {places(lowest)} at {lowest[0].effective_rank:.1f}, "
                f"against a median of {middle:.1f} over {len(cells)} cells.")
    if metric.field == "energy_top_k":
        top = leaders(cells, lambda cell: cell.energy_top_k, lambda value: f"{value:.0%}")
        whose = "its" if len(top) == 1 else "each one's"
        return (f"Most concentrated: {places(top)}, whose top {weights.spectrum_top_k} singular "
                f"values hold {top[0].energy_top_k:.0%} of {whose} change (median cell: {middle:.0%}).")
    top = leaders(cells, lambda cell: getattr(cell, metric.field), lambda value: f"{value:{metric.number_format}}")
    peak = max(getattr(cell, metric.field) for cell in cells)
    what = f"median {label.lower() if label[0].isalpha() else label}"
    return (f"Change peaks in {places(top)}: {against(peak, middle, what, metric.number_format)}."
            if peak > 0 else f"No cell changed: every {label} is 0.")


def head_grids(heads: HeadScores | None) -> dict[str, Grid]:
    """Per attention head relative change, layers × heads: combined, then each projection (empty: no heads)."""
    if heads is None or not heads.scores:
        return {}
    projections = sorted(heads.per_projection,
                         key=lambda name: (PROJECTION_ORDER.get(name, len(PROJECTION_ORDER)), name))
    return {name: _head_grid(heads, name) for name in (COMBINED, *projections)}


def _head_grid(heads: HeadScores, projection: str) -> Grid:
    scores = heads.scores if projection == COMBINED else heads.per_projection[projection]
    flat = [(layer, head, score) for layer, row in zip(heads.layers, scores) for head, score in enumerate(row)]
    middle = median(score for _, _, score in flat)
    top = leaders(flat, lambda cell: cell[2], lambda value: f"{value:.3f}")
    peak = max(score for _, _, score in flat)
    heads_named = listed([f"layer {layer} head {head}" for layer, head, _ in top]) + (", tied" if len(top) > 1 else "")
    reading = (f"Head change ({projection}) peaks at {heads_named}: "
               f"{against(peak, middle, 'median head', '.3f')}." if peak > 0 else f"No head changed in {projection}.")
    return Grid("Per-head relative change", "layer", tuple(str(layer) for layer in heads.layers),
                tuple(f"h{head}" for head in range(heads.num_heads)), tuple(tuple(row) for row in scores), reading,
                "head", tuple(str(head) for head in range(heads.num_heads)), False, ".3f")


def head_grid(weights: WeightDiffResult) -> Grid | None:
    """The combined per-head grid (None when the analysis found no heads)."""
    return head_grids(weights.heads).get(COMBINED)


def ranked_tensors(weights: WeightDiffResult) -> RankedTensors:
    """The compared tensors, largest relative change first, and the line that reads the ranking."""
    compared = tuple(sorted((tensor for tensor in weights.tensors if tensor.relative_change is not None),
                            key=lambda tensor: -tensor.relative_change))
    if not compared:
        return RankedTensors((), "No tensor pair was compared.")
    top, rest = compared[0], [tensor.relative_change for tensor in compared[1:]]
    runner_up = (f", {top.relative_change / rest[0]:.1f}× the next one" if rest and rest[0] > 0
                 else ", the only one that changed" if rest else "")
    return RankedTensors(compared, f"{top.display_name} changed most: relative change {top.relative_change:.3f}"
                                   f"{runner_up}; {weights.concentration.tensors_with_change} of {len(compared)} "
                                   "compared tensors changed.")


def top_tensors(weights: WeightDiffResult, limit: int = TOP_TENSORS) -> tuple[TensorDiff, ...]:
    """The ``limit`` tensors with the largest relative change, largest first."""
    return ranked_tensors(weights).tensors[:limit]


#: The columns of the most-changed-tensors table, and which of them hold numbers.
TENSOR_COLUMNS = ("tensor", "module", "layer", "‖ΔW‖/‖W‖", "effective rank", "rank₉₀")
TENSOR_NUMERIC = (2, 3, 4, 5)


#: What a table cell shows where a tensor has no value (a 1-D tensor has no spectrum, a head no layer).
NO_VALUE = "–"


def rank_90_text(tensor: TensorDiff) -> str:
    """rank₉₀ as every door shows it: the count, ``> k`` when 90 % of the energy needs more than the k singular
    values computed, ``–`` for a tensor without a spectrum."""
    if tensor.rank_90 is not None:
        return str(tensor.rank_90)
    return NO_VALUE if tensor.singular_values is None else f"> {len(tensor.singular_values)}"


def tensor_cells(tensor: TensorDiff) -> tuple[str, ...]:
    """One row of the reports' most-changed-tensors table (``TENSOR_COLUMNS``), as text."""
    return (tensor.display_name, tensor.module, NO_VALUE if tensor.layer is None else str(tensor.layer),
            NO_VALUE if tensor.relative_change is None else f"{tensor.relative_change:.4f}",
            NO_VALUE if tensor.effective_rank is None else f"{tensor.effective_rank:.1f}",
            rank_90_text(tensor))


def tensor_table(tensors: tuple[TensorDiff, ...]) -> dict[str, list]:
    """The dashboard's table of tensors: a column per field, in the order given."""
    return {
        "Tensor": [tensor.display_name for tensor in tensors],
        "Key": [tensor.name for tensor in tensors],
        "Layer": [NO_VALUE if tensor.layer is None else str(tensor.layer) for tensor in tensors],
        "Module": [MODULE_LABELS.get(tensor.module, tensor.module) for tensor in tensors],
        "Shape": [shape(tensor.shape) for tensor in tensors],
        "Relative change": [tensor.relative_change for tensor in tensors],
        "‖ΔW‖": [tensor.frob_norm_delta for tensor in tensors],
        "‖W‖ base": [tensor.frob_norm_base for tensor in tensors],
        "Cosine": [tensor.cosine_similarity for tensor in tensors],
        "Effective rank": [NO_VALUE if tensor.effective_rank is None else f"{tensor.effective_rank:.1f}"
                           for tensor in tensors],
        "rank₉₀": [rank_90_text(tensor) for tensor in tensors],
        "Low rank": [tensor.low_rank for tensor in tensors],
        "Unchanged": [tensor.fraction_unchanged for tensor in tensors],
    }


def display_names(tensors: tuple[TensorDiff, ...]) -> dict[str, str]:
    """``{normalized key: name as stored}`` of ``tensors``, for the parts of a result that name a tensor by key
    (``tied_to``, norm shifts, the embedding drift)."""
    return {tensor.name: tensor.display_name for tensor in tensors}


@dataclass(frozen=True)
class TensorSearch:
    """The tensors a search matched, in the order searched, and what to say when none did ("" otherwise)."""

    tensors: tuple[TensorDiff, ...]
    note: str


def find_tensors(tensors: tuple[TensorDiff, ...], query: str) -> TensorSearch:
    """The tensors whose stored name, base name or normalized key holds ``query`` (any case; blank: all)."""
    needle = query.strip().casefold()
    found = tensors if not needle else tuple(
        tensor for tensor in tensors
        if any(needle in name.casefold() for name in (tensor.display_name, tensor.name, tensor.base_stored_name or "")))
    note = "" if found or not tensors else f"No tensor's name holds {visible(query.strip())}."
    return TensorSearch(found, note)


def tensor_records(weights: WeightDiffResult) -> list[dict]:
    """Every tensor, paired or not, with all its fields as flat values (the CSV download)."""
    return [{**vars(tensor), "shape": shape(tensor.shape),
             "trained_shape": shape(tensor.trained_shape) if tensor.trained_shape else "",
             "singular_values": " ".join(f"{value:.6g}" for value in tensor.singular_values or ())}
            for tensor in weights.tensors]


def spectra(weights: WeightDiffResult, limit: int = SPECTRA) -> tuple[TensorDiff, ...]:
    """The most changed tensors that have a singular-value spectrum."""
    return tuple(tensor for tensor in ranked_tensors(weights).tensors if tensor.singular_values)[:limit]


def heads_note(result: WeightDiffResult) -> str:
    """What the head scores are, or why there are none (every door says it where the head view would be)."""
    heads = result.heads
    if heads is None:
        return f"No per-head scores: {result.heads_reason or 'the attention layout was not recognized'}."
    return (f"{heads.num_heads} query heads over {heads.num_kv_heads} key/value heads: a k or v head's change "
            "counts in every query head of its group.")


def weights_view(result: WeightDiffResult) -> WeightsView:
    """The weight diff as the doors show it (the registry's view of the ``weights`` kind)."""
    concentration = result.concentration
    compared = sum(tensor.status in COMPARED_STATUSES for tensor in result.tensors)
    caption = (f"Spectra: {'exact' if result.exact else f'top {result.spectrum_top_k} singular values'} · "
               f"computed on {result.device} in {duration(result.seconds)}"
               + (" · post-trained side is a LoRA adapter" if result.is_adapter else ""))
    metrics = (
        Metric("Tensors compared", count(compared)),
        Metric("Changed", count(concentration.tensors_with_change)),
        Metric("Top 10% share", f"{concentration.top_decile_share:.0%}",
               "Share of the total change held by the most-changed tenth of the tensors."),
        Metric("Gini", f"{concentration.gini:.2f}",
               "0: the change is spread evenly over the tensors; 1: it sits in one tensor."),
    )
    heads = result.heads
    return WeightsView(
        caption=caption, profile=result.diagnosis.profile,
        profile_tone=PROFILE_TONES.get(result.diagnosis.profile, "gray"), metrics=metrics,
        findings=result.diagnosis.findings,
        no_findings="No findings: nothing in this diff crossed a diagnosis threshold.",
        grids={label: layer_module_grid(result, label) for label in CELL_METRICS},
        no_cells={label: f"No layer × module cell has a value for {label.lower()}." for label in CELL_METRICS},
        heads=head_grids(heads), heads_note=heads_note(result), ranked=ranked_tensors(result),
    )
