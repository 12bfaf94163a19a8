"""LoraDelta's linear algebra against the dense fp64 ΔW, and the adapter path honouring the seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from weight_factories import llama_tensors, save_checkpoint, write_lora_adapter

from afterburn_core.checkpoints import resolve
from afterburn_core.weights.engine import compare_weights
from afterburn_core.weights.lora_delta import LoraDelta
from afterburn_core.weights.spectrum import U64

ROWS, COLS, RANK, SCALE = 24, 40, 5, 0.75


@pytest.fixture
def factored():
    generator = torch.Generator().manual_seed(4)
    left = torch.randn(ROWS, RANK, generator=generator, dtype=torch.float64)
    right = torch.randn(RANK, COLS, generator=generator, dtype=torch.float64)
    left[[2, 9]] = 0.0  # two rows and three columns of ΔW exactly zero
    right[:, [0, 7, 31]] = 0.0
    return LoraDelta(left, right, SCALE), SCALE * left @ right


def test_spectrum_and_energies_equal_the_dense_delta(factored):
    delta, dense = factored
    sigma = torch.linalg.svdvals(dense).numpy()
    assert delta.shape == (ROWS, COLS)
    np.testing.assert_allclose(delta.singular_values(), sigma[:RANK], rtol=1e-12)
    assert delta.energy() == pytest.approx(float(dense.square().sum()), rel=1e-12)
    np.testing.assert_allclose(delta.row_energy(), dense.square().sum(1).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(delta.column_energy(), dense.square().sum(0).numpy(), rtol=1e-12, atol=1e-15)
    weight = torch.randn(ROWS, COLS, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert delta.inner(weight @ delta.right.T) == pytest.approx(float((weight * dense).sum()), rel=1e-12)
    assert delta.fraction_unchanged() == float((dense == 0).double().mean())


def test_spectrum_pads_with_zeros_and_bounds_its_error(factored):
    delta, dense = factored
    spectrum = delta.spectrum(min(ROWS, COLS))
    sigma = torch.linalg.svdvals(dense).numpy()
    assert (spectrum.method, spectrum.full, spectrum.values.size) == ("lora_factors", True, min(ROWS, COLS))
    assert np.all(spectrum.values[RANK:] == 0.0)
    assert np.max(np.abs(spectrum.values - sigma)) <= spectrum.error_bound
    assert spectrum.error_bound == U64 * (ROWS + COLS) * math.sqrt(delta.energy())


def test_the_adapter_path_passes_the_seed_to_its_whole_tensors(tmp_path):
    """A modules_to_save tensor is compared like a full pair, with the run's seed (it is in the cache key)."""
    base_tensors = llama_tensors(seed=0, layers=1)
    save_checkpoint(tmp_path / "base", base_tensors)
    write_lora_adapter(tmp_path / "adapter", base_tensors)
    saved_name = "model.layers.0.mlp.up_proj"
    noise = torch.randn(base_tensors[saved_name + ".weight"].shape, generator=torch.Generator().manual_seed(2))
    retrained = base_tensors[saved_name + ".weight"] + 0.1 * noise
    adapter_file = tmp_path / "adapter" / "adapter_model.safetensors"
    factors = load_file(str(adapter_file))
    factors[f"base_model.model.{saved_name}.modules_to_save.default.weight"] = retrained
    save_file(factors, str(adapter_file), metadata={"format": "pt"})
    save_checkpoint(tmp_path / "full", {**base_tensors, saved_name + ".weight": retrained})
    base, adapter, full = (resolve(str(tmp_path / name)) for name in ("base", "adapter", "full"))
    name = "layers.0.mlp.up_proj.weight"

    def values(trained, seed):
        records = compare_weights(base, trained, top_k=2, device="cpu", seed=seed).tensors
        record = next(record for record in records if record.name == name)
        assert record.spectrum_method == "randomized"
        return record.singular_values

    assert values(adapter, 3) == values(full, 3)
    assert values(adapter, 0) == values(full, 0)
    assert values(adapter, 3) != values(adapter, 0)
