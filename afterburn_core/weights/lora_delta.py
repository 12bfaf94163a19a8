"""A LoRA weight delta kept as its factors: ΔW = s·L·R, never formed (after TransformerLens' ``FactoredMatrix``).

Contract: ``LoraDelta(left, right, scale)`` with L (m × r) and R (r × n),
fp64 on the CPU. Thin QRs L = Q_L R_L, Rᵀ = Q_R R_R give
ΔW = s·Q_L (R_L R_Rᵀ) Q_Rᵀ, so from the r × r core C = R_L R_Rᵀ:

- ``singular_values()`` σ(ΔW) = s·svdvals(C) (r values, descending);
- ``energy()`` ‖ΔW‖_F² = s²·‖C‖_F² (= s²·trace((LᵀL)(RRᵀ)));
- ``row_energy()`` s²·diag(L (RRᵀ) Lᵀ) (m), ``column_energy()`` s²·diag(Rᵀ(LᵀL)R) (n);
- ``inner(projected)`` ⟨W, ΔW⟩ = s·Σ (W Rᵀ) ⊙ L (= s·trace(Lᵀ W Rᵀ)) from ``projected`` = W Rᵀ (m × r);
- ``fraction_unchanged()`` exactly: ((zero rows of L)·n + m·(zero columns of R) − both) / (m·n);
- ``spectrum(length)`` the singular values padded with exact zeros to ``length`` (the rest of
  ΔW's spectrum), method ``lora_factors``, with its error bound: Householder QR and SVD in fp64
  are backward stable, so each σ moves by at most u64·(m + n)·‖ΔW‖_F (Higham, ch. 19).

It leaves reading the factors and peft's conventions (scale, transposes) to
``lora``. Cost: O((m + n)·r²) for the core and the energies; the core is computed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from afterburn_core.weights.spectrum import U64, Spectrum

#: The spectrum method a factored delta reports (``TensorDiff.spectrum_method``).
LORA_SPECTRUM_METHOD = "lora_factors"


@dataclass(frozen=True, eq=False)
class LoraDelta:
    """ΔW = ``scale`` · ``left`` @ ``right``; ``left`` (m × r), ``right`` (r × n), both fp64."""

    left: torch.Tensor
    right: torch.Tensor
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        """(m, n) of ΔW."""
        return self.left.shape[0], self.right.shape[1]

    @cached_property
    def _core(self) -> torch.Tensor:
        """C = R_L R_Rᵀ (r × r): ΔW / s has C's singular values and Frobenius norm."""
        _, left_r = torch.linalg.qr(self.left)
        _, right_r = torch.linalg.qr(self.right.T)
        return left_r @ right_r.T

    def singular_values(self) -> np.ndarray:
        """σ(ΔW), r values, descending."""
        return (self.scale * torch.linalg.svdvals(self._core)).numpy()

    def energy(self) -> float:
        """‖ΔW‖_F²."""
        return self.scale**2 * float(self._core.square().sum())

    def row_energy(self) -> np.ndarray:
        """‖ΔW[i, :]‖² for each of the m rows."""
        return (self.scale**2 * ((self.left @ (self.right @ self.right.T)) * self.left).sum(dim=1)).numpy()

    def column_energy(self) -> np.ndarray:
        """‖ΔW[:, j]‖² for each of the n columns."""
        return (self.scale**2 * (((self.left.T @ self.left) @ self.right) * self.right).sum(dim=0)).numpy()

    def inner(self, projected: torch.Tensor) -> float:
        """⟨W, ΔW⟩ given ``projected`` = W Rᵀ (m × r, fp64)."""
        return self.scale * float((projected * self.left).sum())

    def fraction_unchanged(self) -> float:
        """Share of ΔW's entries that are exactly 0 by the factors' zero rows and columns."""
        rows, cols = self.shape
        zero_rows = int((self.left == 0).all(dim=1).sum())
        zero_cols = int((self.right == 0).all(dim=0).sum())
        return (zero_rows * cols + rows * zero_cols - zero_rows * zero_cols) / (rows * cols)

    def spectrum(self, length: int) -> Spectrum:
        """The full spectrum, σ padded with exact zeros to ``length``, with its error bound."""
        values = self.singular_values()
        if values.size < length:
            values = np.concatenate([values, np.zeros(length - values.size)])
        rows, cols = self.shape
        bound = U64 * (rows + cols) * math.sqrt(self.energy())
        return Spectrum(values=values, method=LORA_SPECTRUM_METHOD, error_bound=bound, full=True)
