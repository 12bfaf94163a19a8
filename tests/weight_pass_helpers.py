"""Hand-built weight passes and checkpoints for the structure and diagnosis tests.

``make_pass`` computes a ``WeightPass`` in float64 from two state dicts with the
definitions of ``TensorDetail`` (per-row / per-column energy of ΔW, per-row
energy of W, 1-D values), so every expected number is computed independently
of the engine. Use from a test module: ``from weight_pass_helpers import make_pass``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from afterburn_core.checkpoints.description import describe_model
from afterburn_core.types import ModelDescription, ResolvedCheckpoint
from afterburn_core.weights.spectrum import is_low_rank
from afterburn_core.weights.types import TensorDiff
from afterburn_core.weights.weight_pass import TensorDetail, WeightPass

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_BASE = REPO_ROOT / "afterburn_core" / "demo" / "base"

_MODULES = {
    "q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
    "down_proj": "down", "embed_tokens": "embed", "lm_head": "head",
}


def classify_for_test(name: str) -> tuple[int | None, str]:
    """A small stand-in for the engine's naming: Llama names only."""
    match = re.search(r"layers\.(\d+)\.", name)
    layer = int(match.group(1)) if match else None
    if "norm" in name:
        return layer, "norm"
    for part, module in _MODULES.items():
        if part in name:
            return layer, module
    return layer, "other"


def make_pass(base: dict[str, torch.Tensor], trained: dict[str, torch.Tensor]) -> WeightPass:
    """A WeightPass computed in float64 from two state dicts of the same names and shapes."""
    tensors, details = [], {}
    for name, weight in base.items():
        w = weight.double()
        delta = trained[name].double() - w
        layer, module = classify_for_test(name)
        base_norm, delta_norm = float(w.norm()), float(delta.norm())
        extra: dict = {}
        if w.ndim == 2:
            singular = torch.linalg.svdvals(delta)
            energy = (singular**2).cumsum(0) / max(float((singular**2).sum()), 1e-300)
            rank_90 = int((energy < 0.9 - 1e-12).sum()) + 1 if delta_norm > 0 else None
            extra = dict(singular_values=tuple(float(s) for s in singular), spectrum_method="exact_svdvals",
                         rank_90=rank_90, effective_rank=float(min(w.shape)) if delta_norm > 0 else None,
                         energy_top_k=1.0 if delta_norm > 0 else None,
                         low_rank=is_low_rank(rank_90, 1.0, min(w.shape)) if delta_norm > 0 else None)
            details[name] = TensorDetail(
                name, row_delta_sq=(delta**2).sum(1).numpy(), col_delta_sq=(delta**2).sum(0).numpy(),
                row_base_sq=(w**2).sum(1).numpy(),
            )
        else:
            details[name] = TensorDetail(name, base_values=w.numpy(), trained_values=trained[name].double().numpy())
        tensors.append(TensorDiff(
            name=name, shape=tuple(w.shape), status="changed" if delta_norm > 0 else "unchanged",
            module=module, layer=layer, dtype_base="F32", dtype_trained="F32", frob_norm_base=base_norm,
            frob_norm_delta=delta_norm, relative_change=delta_norm / base_norm if base_norm else 0.0,
            cosine_similarity=None, fraction_unchanged=float((delta == 0).double().mean()), **extra,
        ))
    return WeightPass(tensors=tuple(tensors), details=details)


def checkpoint_at(root: Path, config: dict | None) -> ResolvedCheckpoint:
    """A ResolvedCheckpoint whose folder holds ``config`` (or no config.json at all), described as resolve would."""
    root.mkdir(parents=True, exist_ok=True)
    config_path = None
    if config is not None:
        config_path = root / "config.json"
        config_path.write_text(json.dumps(config))
    return ResolvedCheckpoint(
        reference=str(root), kind="local_dir", root=str(root), weight_files=(), weight_format="safetensors",
        config_path=str(config_path) if config_path else None, fingerprint="0" * 16,
        description=describe_model(config) if config is not None else ModelDescription(),
    )
