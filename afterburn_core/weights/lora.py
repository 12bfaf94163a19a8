"""A LoRA adapter compared with its base from the factors, never forming B·A.

Contract: ``compare_adapter(base, adapter, *, top_k, exact, device, progress)``
returns the same records as a full diff of base vs base + adapter: one
``TensorDiff`` per base tensor — targeted ones ``changed`` with
``spectrum_method = "lora_factors"``, the others ``unchanged`` — plus a
``TensorDetail`` each. A ``modules_to_save`` tensor stored whole in the
adapter is compared like a full pair.

Math (ΔW = s·L·R with L = B (m × r), R = A (r × n); s = α/r, or α/√r with
``use_rslora``; r and α from ``rank_pattern`` / ``alpha_pattern`` where a
pattern matches the module, as peft does; ``fan_in_fan_out`` and embedding
LoRA store the transpose): thin QRs L = Q_L R_L, Rᵀ = Q_R R_R give
ΔW = s·Q_L (R_L R_Rᵀ) Q_Rᵀ, so σ(ΔW) = s·svdvals(R_L R_Rᵀ) (r × r);
‖ΔW‖_F = s·‖R_L R_Rᵀ‖_F (= s²·trace((LᵀL)(RRᵀ)) squared); ⟨W, ΔW⟩ = s·Σ (W Rᵀ) ⊙ L
(= trace(Lᵀ W Rᵀ)); row energies s²·diag(L (RRᵀ) Lᵀ), column energies s²·diag(Rᵀ(LᵀL)R).
All in fp64 on the CPU (factors are small); W is read once, in row blocks when large.
The exact count of unchanged entries is (zero rows of L)·n + m·(zero columns of R) − both;
``max_abs_delta`` and the within-resolution count need the entries and are None.
Error bound: Householder QR and SVD in fp64 are backward stable, so each σ moves by at most
u64·(m + n)·‖ΔW‖_F (Higham, ch. 19) — far below anything fp32 weights resolve.
Cost: one read of the base; O((m + n)·r²) per targeted tensor plus m·n·r for ⟨W, ΔW⟩.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import torch

from afterburn_core.checkpoints import TensorIndex, open_tensor_index
from afterburn_core.errors import BadCheckpoint, BadInput, ShapeMismatch
from afterburn_core.types import ResolvedCheckpoint
from afterburn_core.weights.types import TensorDiff
from afterburn_core.weights.naming import classify
from afterburn_core.weights.spectrum import U64, Spectrum, summarize
from afterburn_core.weights.stream import LARGE_MATRIX_BYTES, row_blocks
from afterburn_core.weights.weight_pass import TensorDetail

_FACTOR = re.compile(r"^(?P<module>.+)\.lora_(?P<which>A|B|embedding_A|embedding_B)(?:\.[A-Za-z0-9_]+)??(?:\.weight)?$")


def _pattern_value(patterns: dict, module: str, default):
    """peft's ``get_pattern_key``: a key matches when the module name ends with it (as a regex)."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module) or re.match(rf"(.*\.)?({key})$", "model." + module):
            return value
    return default


def read_adapter_config(adapter: ResolvedCheckpoint) -> dict:
    """adapter_config.json, checked to be a plain LoRA peft can merge."""
    path = Path(adapter.config_path or Path(adapter.root) / "adapter_config.json")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BadCheckpoint(f"{path} cannot be read ({error}); re-save the adapter with peft.") from None
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise BadInput(f"{path} is a {config.get('peft_type')} adapter; only LoRA adapters can be compared.")
    if config.get("use_dora"):
        raise BadInput(f"{path} is a DoRA adapter (use_dora); merge it with peft and compare the merged model.")
    return config


def _factors(adapter_index, config: dict, base_entries: dict) -> tuple[dict, dict]:
    """``{target tensor: (L, R, scale)}`` in fp64 and ``{base tensor: adapter tensor}`` saved whole."""
    pieces: dict[str, dict[str, str]] = {}
    whole: dict[str, str] = {}
    for name in adapter_index.names():
        match = _FACTOR.match(name)
        if match:
            pieces.setdefault(match.group("module"), {})[match.group("which")] = name
        elif name.endswith(".bias") and ".lora_" in name:
            raise BadInput(f"adapter tensor {name!r} is a LoRA bias (lora_bias); it is not supported yet.")
        else:
            target = name.replace(".modules_to_save.default.", ".").replace(".modules_to_save.", ".")
            if target in base_entries:
                whole[target] = name
    factors = {}
    for module, parts in pieces.items():
        embedding = "embedding_A" in parts
        a_name, b_name = (parts.get("embedding_A"), parts.get("embedding_B")) if embedding else (parts.get("A"), parts.get("B"))
        if a_name is None or b_name is None:
            raise BadCheckpoint(f"adapter module {module!r} has only one of its two LoRA factors; re-save the adapter.")
        target = module + ".weight"
        if target not in base_entries:
            raise BadInput(f"adapter module {module!r} targets {target!r}, which the base model does not have.")
        a_factor = adapter_index.load(a_name).to(torch.float64)
        b_factor = adapter_index.load(b_name).to(torch.float64)
        rank = int(_pattern_value(config.get("rank_pattern"), module, config.get("r", a_factor.shape[0])))
        if rank != a_factor.shape[0]:
            rank = a_factor.shape[0]  # the stored factors are the truth; peft sizes them from the pattern
        alpha = float(_pattern_value(config.get("alpha_pattern"), module, config.get("lora_alpha", rank)))
        scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        if embedding:  # peft: ΔW = (B A)ᵀ · s with A (r × vocab), B (dim × r)
            left, right = a_factor.T, b_factor.T
        elif config.get("fan_in_fan_out"):  # Conv1D stores W transposed: ΔW = (B A)ᵀ
            left, right = a_factor.T, b_factor.T
        else:
            left, right = b_factor, a_factor
        shape = tuple(base_entries[target].shape)
        if len(shape) != 2 or (left.shape[0], right.shape[1]) != shape:
            raise ShapeMismatch(
                f"tensor {target!r} has shape {list(shape)} in the base but the adapter's factors make "
                f"{[left.shape[0], right.shape[1]]}; the adapter was trained on another model — "
                "check adapter_base."
            )
        factors[target] = (left, right, scale)
    return factors, whole


def compare_adapter(base: ResolvedCheckpoint, adapter: ResolvedCheckpoint, *, top_k: int, exact: bool, device, progress):
    """Records and details for base vs base + adapter (see the module docstring)."""
    from afterburn_core.weights.engine import _PairComparer, _Planned

    config = read_adapter_config(adapter)
    records: list[TensorDiff] = []
    details: dict[str, TensorDetail] = {}
    with open_tensor_index(base) as base_index, open_tensor_index(adapter) as adapter_index:
        base_entries = {entry.name: entry for entry in base_index.entries()}
        factors, whole = _factors(adapter_index, config, base_entries)
        comparer = _PairComparer(base_index, adapter_index, top_k, exact, device, seed=0)
        names = list(base_entries)
        for done, name in enumerate(names, start=1):
            if name in whole:
                record, detail = comparer.compare(_Planned(name, name, whole[name]))
            else:
                record, detail = _from_factors(base_index, name, base_entries[name], factors.get(name), top_k, exact)
            records.append(record)
            details[name] = detail
            if progress is not None:
                progress(done, len(names), name)
    return tuple(records), details


def _base_pass(index: TensorIndex, name: str, shape, right: torch.Tensor | None):
    """Per-row ‖W_i‖² (fp64) and, given R (r × n), W Rᵀ (m × r, fp64), reading W once."""
    rows = shape[0] if shape else 1
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else (shape[0] if shape else 1)
    if len(shape) <= 1:
        values = index.load(name).reshape(-1).to(torch.float64)
        return values, None
    spans = row_blocks(rows, cols) if rows * cols * 4 > LARGE_MATRIX_BYTES else [(0, rows)]
    row_sq, products = [], []
    for start, stop in spans:
        block = (index.load(name, rows=(start, stop)) if len(spans) > 1 else index.load(name))
        block = block.reshape(stop - start, cols).to(torch.float64)
        row_sq.append(block.square().sum(dim=1))
        if right is not None:
            products.append(block @ right.T)
        del block
    return torch.cat(row_sq), (torch.cat(products) if right is not None else None)


def _from_factors(index: TensorIndex, name, entry, factor, top_k: int, exact: bool) -> tuple[TensorDiff, TensorDetail]:
    layer, module = classify(name)
    shape = tuple(entry.shape)
    detail = TensorDetail(name=name)
    right = factor[1] if factor is not None else None
    base_rows, projected = _base_pass(index, name, shape, right)
    common = dict(name=name, shape=shape, module=module, layer=layer, dtype_base=entry.dtype, dtype_trained=entry.dtype)
    if len(shape) <= 1:
        values = base_rows.numpy()
        detail.base_values, detail.trained_values = values, values.copy()
        frob = float(np.sqrt((values**2).sum()))
        return _unchanged(common, frob), detail
    frob_base_sq = float(base_rows.sum())
    detail.row_base_sq = base_rows.numpy()
    if factor is None:
        detail.row_delta_sq = np.zeros(shape[0])
        detail.col_delta_sq = np.zeros(int(np.prod(shape[1:])))
        return _unchanged(common, math.sqrt(frob_base_sq)), detail
    left, right, scale = factor
    rows, cols = shape
    left_q, left_r = torch.linalg.qr(left)
    right_q, right_r = torch.linalg.qr(right.T)
    del left_q, right_q
    core = left_r @ right_r.T
    values = (scale * torch.linalg.svdvals(core)).numpy()
    frob_delta_sq = scale**2 * float(core.square().sum())
    inner = scale * float((projected * left).sum())  # ⟨W, ΔW⟩ = s·trace(Lᵀ W Rᵀ)
    frob_trained_sq = max(frob_base_sq + 2 * inner + frob_delta_sq, 0.0)
    detail.row_delta_sq = (scale**2 * ((left @ (right @ right.T)) * left).sum(dim=1)).numpy()
    detail.col_delta_sq = (scale**2 * (((left.T @ left) @ right) * right).sum(dim=0)).numpy()
    zero_rows = int((left == 0).all(dim=1).sum())
    zero_cols = int((right == 0).all(dim=0).sum())
    unchanged = (zero_rows * cols + rows * zero_cols - zero_rows * zero_cols) / (rows * cols)
    # Pad with exact zeros: the rest of ΔW's spectrum (min(m, n) values with exact, k without).
    length = min(rows, cols) if exact else min(top_k, rows, cols)
    if values.size < length:
        values = np.concatenate([values, np.zeros(length - values.size)])
    spectrum = Spectrum(values=values, method="lora_factors",
                        error_bound=U64 * (rows + cols) * math.sqrt(frob_delta_sq), full=True)
    summary = summarize(spectrum, frob_delta_sq, rows, cols, top_k, exact)
    frob_base, frob_delta, frob_trained = math.sqrt(frob_base_sq), math.sqrt(frob_delta_sq), math.sqrt(frob_trained_sq)
    changed = frob_delta_sq > 0
    record = TensorDiff(
        **common,
        status="changed" if changed else "unchanged",
        frob_norm_base=frob_base,
        frob_norm_delta=frob_delta,
        relative_change=frob_delta / frob_base if frob_base > 0 else (0.0 if not changed else None),
        cosine_similarity=((frob_base_sq + inner) / (frob_base * frob_trained)) if frob_base and frob_trained else None,
        fraction_unchanged=unchanged,
        singular_values=summary.singular_values[: length] if changed else None,
        spectrum_method="lora_factors" if changed else None,
        spectrum_error_bound=spectrum.error_bound if changed else None,
        effective_rank=summary.effective_rank if changed else None,
        stable_rank=summary.stable_rank if changed else None,
        rank_90=summary.rank_90 if changed else None,
        low_rank=summary.low_rank if changed else None,
        frob_norm_trained=frob_trained,
        rank_99=summary.rank_99 if changed else None,
        energy_top_k=summary.energy_top_k if changed else None,
    )
    return record, detail


def _unchanged(common: dict, frob_base: float) -> TensorDiff:
    return TensorDiff(
        **common, status="unchanged", frob_norm_base=frob_base, frob_norm_delta=0.0, relative_change=0.0,
        cosine_similarity=1.0 if frob_base > 0 else None, fraction_unchanged=1.0, frob_norm_trained=frob_base,
        max_abs_delta=0.0, fraction_unchanged_within_resolution=1.0,
    )
