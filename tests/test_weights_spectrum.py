"""Spectra of ΔW against float64 LAPACK: the randomized bound holds, exact equals svd, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from weight_factories import low_rank_update

from afterburn_core.weights import spectrum
from afterburn_core.weights.spectrum import ExactSpectrum, RandomizedSpectrum, summarize

CPU = torch.device("cpu")


def _run(matrix64: torch.Tensor, *, exact: bool, top_k: int = 32, block_rows: int | None = None, seed: int = 0):
    """Feed ``matrix64`` (rounded to fp32, as the engine holds ΔW) through a spectrum worker."""
    delta = matrix64.float()
    rows, cols = delta.shape
    step = block_rows or rows
    spans = [(start, min(rows, start + step)) for start in range(0, rows, step)]

    def blocks():
        for start, stop in spans:
            yield start, stop, delta[start:stop]

    worker = ExactSpectrum(rows, cols, CPU) if exact else RandomizedSpectrum(rows, cols, top_k, seed, CPU)
    for start, stop, block in blocks():
        worker.consume(start, stop, block)
    frob_sq = float(delta.double().square().sum())
    result = worker.finish(blocks, frob_sq)
    return result, summarize(result, frob_sq, rows, cols, top_k, exact)


def _matrices():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(300, 200, generator=generator, dtype=torch.float64)
    decaying = torch.linalg.qr(torch.randn(300, 200, generator=generator, dtype=torch.float64)).Q @ torch.diag(
        torch.logspace(0, -6, 200, dtype=torch.float64)) @ torch.linalg.qr(
        torch.randn(200, 200, generator=generator, dtype=torch.float64)).Q.T
    planted = low_rank_update(300, 200, 2, 10.0) + 0.001 * noise
    tiny = 1e-8 * noise
    return {"noise": noise, "decaying": decaying, "planted": planted, "wide": noise.T.contiguous(), "tiny": tiny}


@pytest.mark.parametrize("kind", ["noise", "decaying", "planted", "wide", "tiny"])
@pytest.mark.parametrize("block_rows", [None, 37])
def test_randomized_bound_holds_against_fp64(kind, block_rows):
    matrix = _matrices()[kind]
    result, _ = _run(matrix, exact=False, block_rows=block_rows)
    sigma = np.linalg.svd(matrix.numpy(), compute_uv=False)[:32]
    assert result.method == "randomized" and result.values.shape == (32,)
    error = np.abs(sigma - result.values).max()
    assert error <= result.error_bound
    # The bound is informative where the spectrum is captured: tiny next to ‖ΔW‖_F for a low-rank ΔW.
    if kind == "planted":
        assert result.error_bound < 0.05 * np.linalg.norm(matrix.numpy())


def test_randomized_blocked_equals_whole():
    matrix = _matrices()["planted"]
    whole, _ = _run(matrix, exact=False)
    blocked, _ = _run(matrix, exact=False, block_rows=37)
    np.testing.assert_allclose(blocked.values, whole.values, rtol=1e-5, atol=1e-6 * whole.values[0])


@pytest.mark.parametrize("kind", ["noise", "decaying", "planted", "wide"])
@pytest.mark.parametrize("block_rows", [None, 37])
def test_exact_equals_numpy_svd(kind, block_rows):
    matrix = _matrices()[kind]
    result, summary = _run(matrix, exact=True, block_rows=block_rows)
    sigma = np.linalg.svd(matrix.numpy(), compute_uv=False)
    assert result.method == "exact_gram_fp64" and result.full
    np.testing.assert_allclose(result.values, sigma, rtol=0, atol=1e-5 * sigma[0])
    assert np.abs(result.values - sigma).max() <= result.error_bound
    assert len(summary.singular_values) == min(matrix.shape)
    assert summary.effective_rank is not None


def test_exact_falls_back_to_svdvals_when_the_gram_check_fails(monkeypatch):
    monkeypatch.setattr(spectrum, "EXACT_TOLERANCE", 0.0)
    matrix = _matrices()["decaying"]
    for block_rows in (None, 37):
        result, _ = _run(matrix, exact=True, block_rows=block_rows)
        sigma = np.linalg.svd(matrix.numpy(), compute_uv=False)
        assert result.method == "exact_svdvals"
        # svdvals keeps relative accuracy down to the fp32 rounding of ΔW, far below the Gram route's.
        np.testing.assert_allclose(result.values, sigma, rtol=0, atol=1e-6 * sigma[0])
        assert np.abs(result.values - sigma).max() <= result.error_bound


@pytest.mark.parametrize("shape", [(128, 128), (512, 64), (64, 512), (1000, 300)])
@pytest.mark.parametrize("exact", [False, True])
def test_random_full_rank_delta_is_never_low_rank(shape, exact):
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        matrix = torch.randn(*shape, generator=generator, dtype=torch.float64)
        _, summary = _run(matrix, exact=exact, seed=seed)
        assert summary.low_rank is False


@pytest.mark.parametrize("exact", [False, True])
def test_planted_rank_is_measured(exact):
    for rank in (1, 2, 5):
        matrix = low_rank_update(400, 256, rank, 3.0, seed=rank)
        _, summary = _run(matrix, exact=exact)
        values = np.array(summary.singular_values)
        assert int((values > 1e-5 * values[0]).sum()) == rank
        # planted values 2:1:½…: energy 4⁻ⁱ, so 90 % needs min(rank, 2) directions
        assert summary.rank_90 == min(rank, 2) and summary.rank_99 <= rank
        assert summary.low_rank is True
        assert summary.energy_top_k == pytest.approx(1.0, abs=1e-6)


def test_summary_ranks_and_energy_from_known_values():
    values = np.array([3.0, 2.0, 1.0, 0.5])
    frob_sq = float((values**2).sum()) + 10.0  # energy beyond the computed values
    result = spectrum.Spectrum(values=values, method="randomized", error_bound=0.0, full=False)
    summary = summarize(result, frob_sq, 100, 100, 4, False)
    assert summary.stable_rank == pytest.approx(frob_sq / 9.0)
    assert summary.energy_top_k == pytest.approx((values**2).sum() / frob_sq)
    assert summary.rank_90 is None and summary.rank_99 is None  # "> k"
    assert summary.effective_rank is None
    full = spectrum.Spectrum(values=values, method="exact_gram_fp64", error_bound=0.0, full=True)
    exact_summary = summarize(full, float((values**2).sum()), 100, 100, 4, True)
    assert exact_summary.rank_90 == 2 and exact_summary.rank_99 == 4  # cumulative 9, 13, 14, 14.25
    shares = values / values.sum()
    assert exact_summary.effective_rank == pytest.approx(np.exp(-(shares * np.log(shares)).sum()))
