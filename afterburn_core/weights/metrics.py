"""Cheap per-tensor metrics of a weight pair, accumulated block by block from the fp32 ΔW.

``DeltaStats.update(base, trained, delta)`` takes one row block (2-D, fp32, on
the compute device; a 1-D tensor is one row) and accumulates, in float64:
‖W_base‖², ‖W_trained‖², ‖ΔW‖², max |Δ|, the count of entries exactly
unchanged and of entries unchanged *within the dtype's resolution*, and the
per-row / per-column energies the structure views need.

Within resolution means ``|Δ| ≤ eps · max(|w_base|, |w_trained|)`` with
``eps = torch.finfo(dtype).eps`` of the coarser of the two stored dtypes
(bfloat16: 2⁻⁷, float16: 2⁻¹⁰, float32: 2⁻²³): a change of at most one unit
in the last place of the larger value, i.e. what re-rounding or a cast can
produce. Integer tensors use eps = 0 (exact only).

Why fp32 is enough: bf16 / fp16 / fp32 values are exact in fp32 and one fp32
subtraction rounds its *result* (relative error ≤ 2⁻²⁴), so ΔW is accurate
entry by entry; sums of squares are taken per row in fp32 and added in fp64.
Cosine similarity comes from the three norms (⟨b, t⟩ = (‖b‖² + ‖t‖² − ‖Δ‖²)/2)
so it costs no extra pass. It leaves spectra to ``spectrum``. Cost: ~8 reads of
each block, no copy larger than the block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from afterburn_core.weights.records import DeltaMetrics


def resolution_eps(dtype_base: str, dtype_trained: str) -> float:
    """Machine epsilon of the coarser of two dtype names (0 for non-float dtypes)."""
    eps = 0.0
    for name in (dtype_base, dtype_trained):
        dtype = getattr(torch, name, None)
        if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
            eps = max(eps, float(torch.finfo(dtype).eps))
    return eps


@dataclass
class DeltaStats:
    """Running sums over the row blocks of one tensor pair (see the module docstring)."""

    eps: float
    keep_rows: bool = True
    #: Column sums of ΔW² and W_base² are only read for output projections (per-head scores of their
    #: input columns) and fused projections (a Conv1D one stores its q|k|v features as columns);
    #: elsewhere the fp64 reduction down the columns would cost more than the rest of the tensor's
    #: metrics (30 ms for a 4864 × 896 matrix on one core).
    keep_cols: bool = False
    frob_base_sq: float = 0.0
    frob_trained_sq: float = 0.0
    frob_delta_sq: float = 0.0
    max_abs_delta: float = 0.0
    count: int = 0
    nonzero: int = 0
    beyond_resolution: int = 0

    def __post_init__(self):
        self._row_delta: list[torch.Tensor] = []
        self._row_base: list[torch.Tensor] = []
        self._col_delta: torch.Tensor | None = None
        self._col_base: torch.Tensor | None = None

    def update(self, base: torch.Tensor, trained: torch.Tensor, delta: torch.Tensor) -> None:
        """Add one (rows, cols) fp32 block; ``delta`` is ``trained - base``."""
        row_base = torch.linalg.vector_norm(base, dim=1).square_()
        row_trained = torch.linalg.vector_norm(trained, dim=1).square_()
        row_delta = torch.linalg.vector_norm(delta, dim=1).square_()
        self.frob_base_sq += float(row_base.sum(dtype=torch.float64))
        self.frob_trained_sq += float(row_trained.sum(dtype=torch.float64))
        self.frob_delta_sq += float(row_delta.sum(dtype=torch.float64))
        self.count += delta.numel()
        nonzero = int(torch.count_nonzero(delta))
        self.nonzero += nonzero
        if nonzero:
            low, high = torch.aminmax(delta)
            self.max_abs_delta = max(self.max_abs_delta, float(-low), float(high))
            self.beyond_resolution += self._count_beyond_resolution(base, trained, delta)
        if self.keep_rows:
            self._row_delta.append(row_delta)
            self._row_base.append(row_base)
        if self.keep_cols:
            # fp64 accumulation down the columns: fp32 would lose ~√m·u32 (4e-6 at m = 4864).
            col = delta.square().sum(dim=0, dtype=torch.float64) if nonzero else None
            if col is not None:
                self._col_delta = col if self._col_delta is None else self._col_delta + col
            elif self._col_delta is None:
                self._col_delta = torch.zeros(delta.shape[1], dtype=torch.float64, device=delta.device)
            col_base = base.square().sum(dim=0, dtype=torch.float64)
            self._col_base = col_base if self._col_base is None else self._col_base + col_base

    def _count_beyond_resolution(self, base: torch.Tensor, trained: torch.Tensor, delta: torch.Tensor) -> int:
        if self.eps == 0.0:
            return int(torch.count_nonzero(delta))
        # max(|b|, |t|) = (|b + t| + |b − t|) / 2, so |Δ| ≤ eps·max(|b|, |t|) ⟺ |Δ| ≤ eps/(2 − eps)·|b + t|:
        # two temporaries instead of four.
        tolerance = torch.add(base, trained).abs_().mul_(self.eps / (2.0 - self.eps))
        return int(torch.count_nonzero(delta.abs() > tolerance))

    # -- results -------------------------------------------------------------------------------
    @property
    def frob_norm_base(self) -> float:
        return math.sqrt(self.frob_base_sq)

    @property
    def frob_norm_trained(self) -> float:
        return math.sqrt(self.frob_trained_sq)

    @property
    def frob_norm_delta(self) -> float:
        return math.sqrt(self.frob_delta_sq)

    @property
    def changed(self) -> bool:
        return self.nonzero > 0

    @property
    def relative_change(self) -> float | None:
        """‖ΔW‖/‖W_base‖; 0 when nothing changed, None when the base is all zeros but the trained is not."""
        if self.frob_base_sq > 0:
            return self.frob_norm_delta / self.frob_norm_base
        return 0.0 if not self.changed else None

    @property
    def cosine_similarity(self) -> float | None:
        """⟨W_base, W_trained⟩ / (‖W_base‖‖W_trained‖), None when either side is all zeros."""
        if self.frob_base_sq == 0 or self.frob_trained_sq == 0:
            return None
        dot = 0.5 * (self.frob_base_sq + self.frob_trained_sq - self.frob_delta_sq)
        return max(-1.0, min(1.0, dot / (self.frob_norm_base * self.frob_norm_trained)))

    @property
    def fraction_unchanged(self) -> float:
        return 1.0 - self.nonzero / self.count if self.count else 1.0

    @property
    def fraction_unchanged_within_resolution(self) -> float:
        return 1.0 - self.beyond_resolution / self.count if self.count else 1.0

    def metrics(self) -> DeltaMetrics:
        """The pair's metrics over every block added so far."""
        return DeltaMetrics(
            frob_norm_base=self.frob_norm_base,
            frob_norm_delta=self.frob_norm_delta,
            frob_norm_trained=self.frob_norm_trained,
            relative_change=self.relative_change,
            cosine_similarity=self.cosine_similarity,
            fraction_unchanged=self.fraction_unchanged,
            max_abs_delta=self.max_abs_delta,
            fraction_unchanged_within_resolution=self.fraction_unchanged_within_resolution,
        )

    def row_delta_sq(self) -> np.ndarray:
        return _numpy(self._row_delta)

    def row_base_sq(self) -> np.ndarray:
        return _numpy(self._row_base)

    def col_delta_sq(self) -> np.ndarray | None:
        return None if self._col_delta is None else self._col_delta.cpu().numpy()

    def col_base_sq(self) -> np.ndarray | None:
        return None if self._col_base is None else self._col_base.cpu().numpy()


def _numpy(parts: list[torch.Tensor]) -> np.ndarray:
    if not parts:
        return np.zeros(0)
    return torch.cat(parts).to("cpu", torch.float64).numpy()
