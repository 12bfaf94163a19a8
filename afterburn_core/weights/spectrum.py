"""Singular values of a weight delta ΔW (m × n), read in row blocks, with an error bound.

Two methods, both fed by the engine's first pass over ΔW (``consume`` takes
each row block while the cheap metrics are taken from it, so no extra read):

``RandomizedSpectrum`` (default): the top-k singular values from a randomized
range finder with power iterations — the same subspace as
``torch.svd_lowrank(ΔW, q=k+OVERSAMPLE, niter=POWER_ITERATIONS)`` (Halko,
Martinsson & Tropp 2011, Alg. 4.4), Q = orth(ΔW (ΔWᵀΔW)^niter Ω), and the same
6 m·n·q flops: each power iteration is one pass V ← qr(ΔWᵀ(ΔW V)) (V is n × q,
so no m × q QR per half step), the first fused with the metrics pass; then
Q = qr(ΔW V), Z = ΔWᵀQ and σ̃ = svdvals(Z) in fp64. Skipping the QR of ΔW V
inside an iteration only loses directions with σ below √u32·σ_max, which
the bound covers. Every product runs block by block (ΔWᵀ· summed over
blocks), so a large matrix's fp32 copy never exists whole. Error bound
(absolute, on every σ̃_i): since Q has orthonormal columns,
σ_i(QᵀΔW) ≤ σ_i(ΔW) ≤ σ_i(QᵀΔW) + ‖(I − QQᵀ)ΔW‖₂ (Weyl), and
‖(I − QQᵀ)ΔW‖₂ ≤ ‖(I − QQᵀ)ΔW‖_F = √(‖ΔW‖_F² − ‖QᵀΔW‖_F²), exact by
Pythagoras and free: ‖ΔW‖_F comes from the metrics pass, ‖QᵀΔW‖_F = ‖Z‖_F.
To it we add a rounding allowance ``RANDOMIZED_ROUNDING_FACTOR · u32 · √max(m, n) · ‖ΔW‖_F``
for the fp32 products and QR (Higham's √n model of accumulated rounding)
and ``u32 · ‖ΔW‖_F`` for ΔW's own fp32 rounding. The tests check the bound
against fp64 singular values of the original tensors.

``ExactSpectrum`` (``exact=True``, and any matrix with min(m, n) ≤ k + OVERSAMPLE):
the eigenvalues of the smaller Gram matrix (ΔWᵀΔW or ΔWΔWᵀ) accumulated over
row blocks in fp64, σ = √max(λ, 0). The Gram matrix's rounding perturbs each
λ by at most δλ = u64 · (√inner + min(m, n)) · ‖ΔW‖_F² (accumulation over the
inner dimension, √ model, plus the symmetric eigensolver), so each σ moves by
at most √δλ (|√a − √b| ≤ √|a − b|). The check: that bound must be ≤
``EXACT_TOLERANCE · σ_max`` (1e-5, the accuracy the issue asks of every
metric against fp64); where it is not, the spectrum comes from ``svdvals`` of
the R factor of a blockwise (TSQR) fp64 QR of ΔW, which needs no squaring.
``u`` is the unit roundoff (2⁻²⁴ for fp32, 2⁻⁵³ for fp64).

``summarize`` turns values into stable rank, energy in the top k, rank_90 /
rank_99, effective rank and the low-rank verdict. Cost: randomized ≈ 6 m·n·q
flops (like the floor), exact ≈ m·n·min(m, n) fp64 flops.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from afterburn_core.device import supports_float64

#: Extra random directions beyond k: torch.svd_lowrank's and the issue floor's q = k + 10
#: (Halko et al. 2011 §4.2 recommend 5–10).
OVERSAMPLE = 10
#: Power iterations: the floor's niter = 2 (Halko et al. §4.5: 1–3 suffice for slowly decaying spectra).
POWER_ITERATIONS = 2
#: Multiplier of the √n rounding model in the randomized bound; 4 covers the fp32 QR's loss of
#: orthogonality too. Measured: the fp64 error of σ̃ stays under the bound in tests/test_weights_spectrum.py.
RANDOMIZED_ROUNDING_FACTOR = 4.0
#: Absolute accuracy, relative to σ_max, the Gram route must guarantee before it is trusted (the
#: issue asks 1e-5 relative agreement with fp64 for every metric); above it svdvals is used.
EXACT_TOLERANCE = 1e-5
#: rank_90 and rank_99: the energy shares (of ‖ΔW‖_F²) the issue names.
ENERGY_90 = 0.90
ENERGY_99 = 0.99
#: Low-rank (LoRA-like) verdict — the one verdict every view and finding uses. A 2-D ΔW is
#: low-rank when 90 % of ‖ΔW‖_F² sits in at most this share of min(m, n) directions … Sources:
#: LoRA ranks in practice are r = 8–64 on widths 2048–12288 (Hu et al. 2021), ≤ 3 %; a random
#: full-rank ΔW needs ≥ ~0.5·min(m, n) (Marchenko–Pastur). Measured on the demo pairs (exact fp64
#: SVD): the planted rank-3 q_proj needs 3/128 = 0.023; the lowest unplanted full fine-tune delta
#: needs 9/64 = 0.14 (edited pair) and 11/128 = 0.086 (control), so 0.05 separates them.
LOW_RANK_MAX_FRACTION = 0.05
#: … or in at most this many directions, whatever the dimension: the demo LoRA adapter (r = 8,
#: peft's default) needs 1–4 directions per delta (4/64 on a v_proj is above 5 %), unplanted
#: fine-tune deltas at least 9.
LOW_RANK_MAX_ABSOLUTE = 4
#: Smaller matrices are not judged: below 8 × LOW_RANK_MAX_ABSOLUTE a few directions are most of them.
LOW_RANK_MIN_DIM = 32
#: …and at least this share of the energy in the top k singular values (the same 90 % as rank_90).
LOW_RANK_MIN_ENERGY_TOP_K = 0.90

U32 = 2.0**-24
U64 = 2.0**-53

#: Row blocks of ΔW: ``(start, stop, fp32 block on the compute device)``.
BlockSource = Callable[[], Iterator[tuple[int, int, torch.Tensor]]]


@dataclass(frozen=True)
class Spectrum:
    """Singular values (descending, float64) with the method and absolute error bound on each."""

    values: np.ndarray
    method: str
    error_bound: float
    full: bool


def tensor_seed(seed: int, name: str) -> int:
    """A per-tensor seed: the same run seed gives each tensor the same Ω in any order."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def _fp64_device(device: torch.device) -> torch.device:
    return device if supports_float64(device) else torch.device("cpu")


def _orthonormal(matrix: torch.Tensor) -> torch.Tensor:
    if matrix.device.type == "mps":  # no QR kernel on MPS (torch 2.x): do the thin QR on the CPU
        return torch.linalg.qr(matrix.cpu(), mode="reduced").Q.to(matrix.device)
    return torch.linalg.qr(matrix, mode="reduced").Q


class RandomizedSpectrum:
    """Top-k singular values by a blocked randomized range finder (see the module docstring)."""

    def __init__(self, rows: int, cols: int, top_k: int, seed: int, device: torch.device):
        self.rows, self.cols, self.top_k = rows, cols, top_k
        self.width = min(top_k + OVERSAMPLE, rows, cols)
        generator = torch.Generator().manual_seed(seed)
        self.omega = torch.randn(cols, self.width, generator=generator).to(device)
        self.normal = torch.zeros(cols, self.width, dtype=torch.float32, device=device)

    def consume(self, start: int, stop: int, block: torch.Tensor) -> None:
        """First pass: accumulate ΔWᵀ(ΔW Ω) block by block (the first power iteration)."""
        self.normal.addmm_(block.T, block @ self.omega)

    def finish(self, blocks: BlockSource, frob_sq: float) -> Spectrum:
        """The other power iterations and the final projection, re-reading ``blocks`` (3 passes).

        Each iteration is one pass, V ← qr(ΔWᵀ(ΔW V)) with V (n × q): the same subspace as
        svd_lowrank's alternating QRs, orth((ΔWᵀΔW)^niter Ω), without an m × q QR per half step;
        then Q = qr(ΔW V) — svd_lowrank's Q exactly — and Z = ΔWᵀQ.
        """
        right = _orthonormal(self.normal)
        del self.normal, self.omega
        for _ in range(POWER_ITERATIONS - 1):
            right = _orthonormal(_apply_normal(blocks, right))
        basis = _orthonormal(_apply(blocks, right, self.rows))
        projected = _apply_transpose(blocks, basis, self.cols).to(_fp64_device(basis.device), torch.float64)
        values = torch.linalg.svdvals(projected).cpu().numpy()[: self.top_k]
        captured_sq = float(projected.square().sum())
        residual = math.sqrt(max(frob_sq - captured_sq, 0.0))
        frob = math.sqrt(frob_sq)
        rounding = (RANDOMIZED_ROUNDING_FACTOR * math.sqrt(max(self.rows, self.cols)) + 1.0) * U32 * frob
        return Spectrum(values=values, method="randomized", error_bound=residual + rounding, full=False)


def _apply_normal(blocks: BlockSource, right: torch.Tensor) -> torch.Tensor:
    """ΔWᵀ(ΔW · right) (cols × q), one pass over the row blocks."""
    out = torch.zeros_like(right)
    for _, _, block in blocks():
        out.addmm_(block.T, block @ right)
    return out


def _apply(blocks: BlockSource, right: torch.Tensor, rows: int) -> torch.Tensor:
    """ΔW · right (rows × q), one row block at a time."""
    out = torch.empty(rows, right.shape[1], dtype=torch.float32, device=right.device)
    for start, stop, block in blocks():
        torch.matmul(block, right, out=out[start:stop])
    return out


def _apply_transpose(blocks: BlockSource, left: torch.Tensor, cols: int) -> torch.Tensor:
    """ΔWᵀ · left (cols × q), summed over row blocks."""
    out = torch.zeros(cols, left.shape[1], dtype=torch.float32, device=left.device)
    for start, stop, block in blocks():
        out.addmm_(block.T, left[start:stop])
    return out


class ExactSpectrum:
    """The full spectrum from the fp64 Gram matrix, checked, else TSQR + svdvals (module docstring)."""

    def __init__(self, rows: int, cols: int, device: torch.device):
        self.rows, self.cols = rows, cols
        self.tall = cols <= rows
        self.device64 = _fp64_device(device)
        size = cols if self.tall else rows
        self.gram = torch.zeros(size, size, dtype=torch.float64, device=self.device64)
        self.wide_blocks = 0

    def consume(self, start: int, stop: int, block: torch.Tensor) -> None:
        """First pass: accumulate ΔWᵀΔW (tall) or the diagonal blocks of ΔWΔWᵀ (wide)."""
        block64 = block.to(self.device64, torch.float64)
        if self.tall:
            self.gram.addmm_(block64.T, block64)
        else:
            self.gram[start:stop, start:stop] = block64 @ block64.T
            self.wide_blocks += 1

    def finish(self, blocks: BlockSource, frob_sq: float) -> Spectrum:
        """Eigenvalues of the Gram matrix, or svdvals where the check fails."""
        if not self.tall and self.wide_blocks > 1:
            self._fill_wide_off_diagonal(blocks)
        eigenvalues = torch.linalg.eigvalsh(self.gram).cpu().numpy()
        del self.gram
        values = np.sqrt(np.clip(eigenvalues[::-1], 0.0, None))
        inner = self.rows if self.tall else self.cols
        small = min(self.rows, self.cols)
        frob = math.sqrt(frob_sq)
        gram_bound = math.sqrt(U64 * (math.sqrt(inner) + small) * frob_sq) + U32 * frob
        sigma_max = float(values[0]) if values.size else 0.0
        if gram_bound <= EXACT_TOLERANCE * sigma_max or not (self.tall or self.wide_blocks <= 1):
            return Spectrum(values=values, method="exact_gram_fp64", error_bound=gram_bound, full=True)
        return self._svdvals(blocks, inner, small, frob)

    def _fill_wide_off_diagonal(self, blocks: BlockSource) -> None:
        for index, (start, stop, block) in enumerate(blocks()):
            block64 = block.to(self.device64, torch.float64)
            for other_start, other_stop, other in _skip(blocks(), index + 1):
                product = block64 @ other.to(self.device64, torch.float64).T
                self.gram[start:stop, other_start:other_stop] = product
                self.gram[other_start:other_stop, start:stop] = product.T

    def _svdvals(self, blocks: BlockSource, inner: int, small: int, frob: float) -> Spectrum:
        triangle = None
        for _, _, block in blocks():
            block64 = block.to(self.device64, torch.float64)
            if not self.tall:
                block64 = block64.T  # a wide matrix here is a single block
            stacked = block64 if triangle is None else torch.cat([triangle, block64])
            triangle = torch.linalg.qr(stacked, mode="r").R
        values = torch.linalg.svdvals(triangle).cpu().numpy()
        values = np.concatenate([values, np.zeros(small - values.size)]) if values.size < small else values
        bound = U64 * (math.sqrt(inner) + small) * frob + U32 * frob
        return Spectrum(values=values, method="exact_svdvals", error_bound=bound, full=True)


def _skip(iterator, count: int):
    for index, item in enumerate(iterator):
        if index >= count:
            yield item


@dataclass(frozen=True)
class SpectrumSummary:
    """What the TensorDiff reports from a spectrum."""

    singular_values: tuple[float, ...]
    stable_rank: float | None
    energy_top_k: float | None
    rank_90: int | None
    rank_99: int | None
    effective_rank: float | None
    low_rank: bool


def _rank_for(energy_cumulative: np.ndarray, share: float, total: float) -> int | None:
    hits = np.nonzero(energy_cumulative >= share * total * (1 - 1e-12))[0]
    return int(hits[0]) + 1 if hits.size else None


def summarize(spectrum: Spectrum, frob_sq: float, rows: int, cols: int, top_k: int, exact: bool) -> SpectrumSummary:
    """Stable rank, energy shares, ranks and the low-rank verdict of one ΔW's spectrum.

    ``stable_rank = ‖ΔW‖_F² / σ_max²``; ``energy_top_k = Σ_{i<k} σ_i² / ‖ΔW‖_F²`` (the exact
    denominator); ``rank_90`` / ``rank_99``: fewest leading σ holding 90 % / 99 % of ‖ΔW‖_F²
    (None when the computed ones do not: "> k"); ``effective_rank``: exp of the Shannon entropy of
    σ_i / Σσ (Roy & Vetterli 2007), only with ``exact`` (it needs the whole spectrum).
    """
    values = np.asarray(spectrum.values, dtype=np.float64)
    energy = np.cumsum(values**2)
    # The full spectrum's own Σσ² equals ‖ΔW‖_F² up to rounding; using it lets rank_99 always exist.
    total = float(energy[-1]) if spectrum.full and values.size else frob_sq
    sigma_max = float(values[0]) if values.size else 0.0
    stable_rank = frob_sq / sigma_max**2 if sigma_max > 0 else None
    energy_top_k = min(1.0, float(energy[min(top_k, values.size) - 1]) / total) if values.size and total > 0 else None
    rank_90 = _rank_for(energy, ENERGY_90, total) if total > 0 else None
    rank_99 = _rank_for(energy, ENERGY_99, total) if total > 0 else None
    effective_rank = None
    if exact and spectrum.full and values.sum() > 0:
        shares = values[values > 0] / values.sum()
        effective_rank = float(np.exp(-(shares * np.log(shares)).sum()))
    low_rank = is_low_rank(rank_90, energy_top_k, min(rows, cols))
    kept = values if exact else values[:top_k]
    return SpectrumSummary(
        singular_values=tuple(float(value) for value in kept),
        stable_rank=stable_rank,
        energy_top_k=energy_top_k,
        rank_90=rank_90,
        rank_99=rank_99,
        effective_rank=effective_rank,
        low_rank=bool(low_rank),
    )


def is_low_rank(rank_90: int | None, energy_top_k: float | None, dimension: int) -> bool:
    """The LoRA-like verdict on a ΔW whose smaller side is ``dimension`` (constants above)."""
    return (
        dimension >= LOW_RANK_MIN_DIM
        and rank_90 is not None
        and rank_90 <= max(LOW_RANK_MAX_FRACTION * dimension, LOW_RANK_MAX_ABSOLUTE)
        and energy_top_k is not None
        and energy_top_k >= LOW_RANK_MIN_ENERGY_TOP_K
    )
