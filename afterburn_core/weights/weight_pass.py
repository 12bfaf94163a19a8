"""What one streamed pass over a checkpoint pair hands to the structure and diagnosis steps.

``engine.compare_weights`` reads each tensor pair once and produces, besides
the serialized per-tensor ``TensorDiff`` records, a few small vectors per
tensor (``TensorDetail``) that the layer, head, norm and embedding views need:
per-row and per-column energy of ΔW, per-row energy of W, and the values of
1-D tensors. They stay in memory for the length of one analysis and are never
stored; their size is O(rows + cols) per tensor, never O(rows × cols).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from afterburn_core.weights.types import TensorDiff


@dataclass
class TensorDetail:
    """Small per-tensor vectors kept from the pass (float64 numpy arrays).

    For a 2-D tensor of shape (rows, cols) — rows are output features — over
    the rows both sides share (a grown vocabulary compares the shared rows):
    ``row_delta_sq[i] = ‖ΔW[i, :]‖²``, ``col_delta_sq[j] = ‖ΔW[:, j]‖²``,
    ``row_base_sq[i] = ‖W_base[i, :]‖²`` and, where the column sums are kept,
    ``col_base_sq[j] = ‖W_base[:, j]‖²``. For a 1-D tensor: both sides' values.
    A Conv1D tensor (stored in × out) keeps its stored orientation here; the
    structure reads its output features from the column vectors.
    A LoRA adapter fills the 2-D fields from its factors without forming B·A.
    A stacked expert tensor [E, …] is E rows here (``row_*`` per expert), and
    ``slice_row_*`` [E, a] / ``slice_col_*`` [E, b] hold each slice's row and
    column energies (a 1-D slice of n entries is one row of n columns).
    """

    name: str
    row_delta_sq: np.ndarray | None = None
    col_delta_sq: np.ndarray | None = None
    row_base_sq: np.ndarray | None = None
    col_base_sq: np.ndarray | None = None
    base_values: np.ndarray | None = None
    trained_values: np.ndarray | None = None
    slice_row_delta_sq: np.ndarray | None = None
    slice_row_base_sq: np.ndarray | None = None
    slice_col_delta_sq: np.ndarray | None = None
    slice_col_base_sq: np.ndarray | None = None


@dataclass
class WeightPass:
    """Everything one pass produced: the records, their details, where and how long."""

    tensors: tuple[TensorDiff, ...]
    details: dict[str, TensorDetail] = field(default_factory=dict)
    device: str = "cpu"
    seconds: float = 0.0
    is_adapter: bool = False
