"""The tables and chart data of the weights, behaviour and reward-hack sections, for every writer.

From each analysis's typed result: the layer × module and head grids, the
most changed tensors and their spectra, every behaviour test as a row, the
paired rates the bar charts draw, the detectors in their order and the
prompts they cite. Selects and formats what the analyses stored; draws and
escapes nothing. Cost: linear in the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from afterburn_core.behaviour.types import (
    GroupStats,
)
from afterburn_core.behaviour.listing import group_tests, shift_cells
from afterburn_core.reports.bundle import RunReport
from afterburn_core.reports.text import excerpt
from afterburn_core.reports.theme import BASE_LABEL, TRAINED_LABEL
from afterburn_core.reports.wording import p_value, statistic, words
from afterburn_core.analyses import in_detector_order
from afterburn_core.reward_hack.types import DetectorResult
from afterburn_core.weights.types import ModuleType, TensorDiff, WeightDiffResult

#: Rows of the "most changed tensors" table and curves of the spectra chart.
TOP_TENSORS = 12
SPECTRA = 6
MODULE_ORDER: tuple[str, ...] = get_args(ModuleType)
OUTSIDE_LAYERS = "outside"


@dataclass(frozen=True)
class Grid:
    """A heatmap: ``values[row][column]``, None where no cell exists."""

    title: str
    row_title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True)
class Paired:
    """One measure for both models (a rate, a median), flagged when its test is significant."""

    label: str
    base: float
    trained: float
    significant: bool = False


@dataclass(frozen=True)
class ShiftRow:
    """One behaviour test as a table row."""

    suite: str
    area: str
    measure: str
    base: str
    trained: str
    change: str
    p_adjusted: float | None
    significant: bool

    def cells(self) -> tuple[str, ...]:
        """The row as text, in ``SHIFT_COLUMNS`` order."""
        return (self.suite, self.area, self.measure, self.base, self.trained, self.change, p_value(self.p_adjusted))


#: The columns of a behaviour-tests table, and which of them hold numbers.
SHIFT_COLUMNS = ("suite", "area", "measure", BASE_LABEL, TRAINED_LABEL, "change", "p (corrected)")
SHIFT_NUMERIC = (6,)


# --- weights --------------------------------------------------------------------------------------


def layer_module_grid(weights: WeightDiffResult) -> Grid | None:
    """Relative change per layer (rows, then the tensors outside the stack) × module type (columns)."""
    cells = [cell for cell in weights.layers if cell.relative_change is not None]
    if not cells:
        return None
    layers = sorted({cell.layer for cell in cells if cell.layer is not None})
    rows = [str(layer) for layer in layers] + ([OUTSIDE_LAYERS] if any(cell.layer is None for cell in cells) else [])
    columns = [module for module in MODULE_ORDER if any(cell.module == module for cell in cells)]
    by_position = {(OUTSIDE_LAYERS if cell.layer is None else str(cell.layer), cell.module): cell.relative_change
                   for cell in cells}
    values = tuple(tuple(by_position.get((row, column)) for column in columns) for row in rows)
    return Grid("Relative change ‖ΔW‖/‖W‖", "layer", tuple(rows), tuple(columns), values)


def head_grid(weights: WeightDiffResult) -> Grid | None:
    """Per attention head relative change, layers × heads (None when the analysis found no heads)."""
    heads = weights.heads
    if heads is None or not heads.scores:
        return None
    return Grid("Per-head relative change", "layer", tuple(str(layer) for layer in heads.layers),
                tuple(f"h{head}" for head in range(heads.num_heads)), tuple(tuple(row) for row in heads.scores))


def top_tensors(weights: WeightDiffResult, limit: int = TOP_TENSORS) -> tuple[TensorDiff, ...]:
    """The tensors with the largest relative change, largest first."""
    compared = [tensor for tensor in weights.tensors if tensor.relative_change is not None]
    return tuple(sorted(compared, key=lambda tensor: -tensor.relative_change)[:limit])


#: The columns of the most-changed-tensors table, and which of them hold numbers.
TENSOR_COLUMNS = ("tensor", "module", "layer", "‖ΔW‖/‖W‖", "effective rank", "rank₉₀")
TENSOR_NUMERIC = (2, 3, 4, 5)


def tensor_cells(tensor: TensorDiff) -> tuple[str, ...]:
    """One row of the most-changed-tensors table (``TENSOR_COLUMNS``), as text."""
    return (tensor.name, tensor.module, "–" if tensor.layer is None else str(tensor.layer),
            "–" if tensor.relative_change is None else f"{tensor.relative_change:.4f}",
            "–" if tensor.effective_rank is None else f"{tensor.effective_rank:.1f}",
            "–" if tensor.rank_90 is None else str(tensor.rank_90))


def spectra(weights: WeightDiffResult, limit: int = SPECTRA) -> tuple[TensorDiff, ...]:
    """The most changed tensors that have a singular-value spectrum."""
    return tuple(tensor for tensor in top_tensors(weights, len(weights.tensors)) if tensor.singular_values)[:limit]


# --- behaviour ------------------------------------------------------------------------------------


def shift_rows(report: RunReport) -> tuple[ShiftRow, ...]:
    """Every test of every suite's overall group: significant first, then by corrected p."""
    if report.behaviour is None:
        return ()
    rows = [
        ShiftRow(suite, area, measure, *shift_cells(shift), shift.p_adjusted, shift.significant)
        for suite, stats in report.behaviour.suites.items()
        for area, measure, shift in group_tests(stats.overall)
    ]
    return tuple(sorted(rows, key=lambda row: (not row.significant, 1.0 if row.p_adjusted is None else row.p_adjusted)))


def median_lengths(report: RunReport) -> tuple[Paired, ...]:
    """Median output tokens per suite (overall, then each category)."""
    if report.behaviour is None:
        return ()
    return tuple(
        Paired(f"{suite}" if category is None else f"{suite} · {category}", group.length.base_median,
               group.length.trained_median, group.length.significant)
        for suite, stats in report.behaviour.suites.items()
        for category, group in ((None, stats.overall), *stats.categories.items())
    )


def strategy_shares(group: GroupStats) -> tuple[Paired, ...]:
    """Each strategy's share of answers, for both models (significance is the whole mix's test)."""
    labels = sorted(set(group.strategy.base) | set(group.strategy.trained))
    return tuple(Paired(words(label), group.strategy.base.get(label, 0.0), group.strategy.trained.get(label, 0.0),
                        group.strategy.significant) for label in labels)


def format_rates(group: GroupStats) -> tuple[Paired, ...]:
    """Each format feature's rate of use, for both models."""
    return tuple(Paired(words(feature), shift.base, shift.trained, shift.significant)
                 for feature, shift in group.format.items())


# --- reward hacking -------------------------------------------------------------------------------


def detectors(report: RunReport) -> tuple[DetectorResult, ...]:
    """The run's detectors in the order every view lists them (unknown names last)."""
    if report.reward_hack is None:
        return ()
    return tuple(detector for _, detector in in_detector_order(report.reward_hack.detectors))


STATISTIC_COLUMNS = ("statistic", "value", "statistic", "value")
STATISTIC_NUMERIC = (1, 3)


def statistic_rows(detector: DetectorResult) -> list[tuple[str, str, str, str]]:
    """A detector's statistics as text, two (name, value) pairs per row so a long list stays short."""
    cells = [(words(name), statistic(value)) for name, value in detector.statistics.items()]
    half = (len(cells) + 1) // 2
    return [(*left, *(right or ("", ""))) for left, right in zip(cells[:half], [*cells[half:], None])]


def evidence(report: RunReport, links: tuple[str, ...], limit: int) -> tuple[tuple[str, str, str], ...]:
    """Each ``suite/prompt_id`` a detector cites, with excerpts of the prompt and the post-trained answer."""
    by_link = {}
    if report.generations is not None:
        by_link = {f"{prompt.suite}/{prompt.prompt_id}": (excerpt(prompt.text, limit), excerpt(trained.text, limit))
                   for prompt, trained in zip(report.generations.prompts, report.generations.trained)}
    return tuple((link, *by_link.get(link, ("(not among this run's prompts)", "–"))) for link in links)
