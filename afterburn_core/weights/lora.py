"""A LoRA adapter compared with its base from the factors, never forming B·A.

Contract: ``compare_adapter(base, adapter, *, top_k, exact, device, seed, progress)``
returns the same records as a full diff of base vs base + adapter: one
``TensorDiff`` per base tensor — targeted ones ``changed`` with
``spectrum_method = "lora_factors"``, the others ``unchanged`` — plus a
``TensorDetail`` each. A ``modules_to_save`` tensor stored whole in the
adapter is compared like a full pair (``comparer``, with ``seed``). Every
record's ``stored_name`` is the base's own tensor name (the module the
adapter's ``….lora_A`` / ``….lora_B`` factors target), as the base stores it.

Reading the factors (peft's conventions): ΔW = s·L·R with L = B (m × r),
R = A (r × n); s = α/r, or α/√r with ``use_rslora``; r is the stored factors'
rank and α comes from ``alpha_pattern`` where a pattern matches the module
(as peft's ``get_pattern_key``), else ``lora_alpha``, else r; ``fan_in_fan_out``
and embedding LoRA store the transpose. The adapter's config is the
``AdapterDescription`` resolution parsed; nothing here reads JSON.
The math on the factors is ``lora_delta.LoraDelta``'s; ⟨W, ΔW⟩ needs W Rᵀ,
taken in the one read of W (in row blocks when large). ``max_abs_delta`` and
the within-resolution count need the entries and are None.
Cost: one read of the base; O((m + n)·r²) per targeted tensor plus m·n·r for ⟨W, ΔW⟩.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from afterburn_core.checkpoints import TensorIndex, open_tensor_index
from afterburn_core.checkpoints.tensors import NAME_PREFIXES
from afterburn_core.errors import BadCheckpoint, BadInput, ShapeMismatch
from afterburn_core.limits import quoted
from afterburn_core.types import AdapterDescription, PlannedPair, ResolvedCheckpoint, TensorEntry
from afterburn_core.weights.comparer import PairComparer
from afterburn_core.weights.lora_delta import LoraDelta
from afterburn_core.weights.records import DeltaMetrics, tensor_diff
from afterburn_core.weights.spectrum import summarize
from afterburn_core.weights.stream import LARGE_MATRIX_BYTES, row_blocks
from afterburn_core.weights.types import TensorDiff
from afterburn_core.weights.weight_pass import TensorDetail

#: The prefix peft saves an adapter's keys under (``base_model.model.``, the first prefix the index strips).
PEFT_PREFIX = NAME_PREFIXES[0]

_FACTOR = re.compile(r"^(?P<module>.+)\.lora_(?P<which>A|B|embedding_A|embedding_B)(?:\.[A-Za-z0-9_]+)??(?:\.weight)?$")


def _pattern_value(patterns: tuple[tuple[str, float], ...], module: str, default):
    """peft's ``get_pattern_key``: a key matches when the module name ends with it (as a regex)."""
    for key, value in patterns:
        if re.match(rf"(.*\.)?({key})$", module) or re.match(rf"(.*\.)?({key})$", "model." + module):
            return value
    return default


def check_lora(adapter: ResolvedCheckpoint) -> AdapterDescription:
    """The adapter's description, checked to be a plain LoRA peft can merge."""
    described = adapter.description.adapter
    path = adapter.config_path or str(Path(adapter.root) / "adapter_config.json")
    if described is None:
        raise BadCheckpoint(f"{adapter.reference} was resolved without its adapter_config.json; resolve it again.")
    if described.peft_type.upper() != "LORA":
        raise BadInput(f"{path} is a {described.peft_type} adapter; only LoRA adapters can be compared.")
    if described.use_dora:
        raise BadInput(f"{path} is a DoRA adapter (use_dora); merge it with peft and compare the merged model.")
    return described


def _adapter_module(factor: TensorEntry) -> str:
    """The module a factor belongs to as the adapter stores it (``base_model.model.model.layers.0.self_attn.q_proj``)."""
    match = _FACTOR.match(factor.display_name)
    return match.group("module") if match else factor.display_name


def _factors(
    adapter_index: TensorIndex, described: AdapterDescription, base_entries: dict[str, TensorEntry]
) -> tuple[dict[str, LoraDelta], dict[str, str]]:
    """``{target tensor: LoraDelta}`` (fp64) and ``{base tensor: adapter tensor}`` saved whole.

    Errors name tensors as the files store them: the adapter's own key, and the base's name for
    the target (peft's module path without ``base_model.model.`` where the base has none).
    """
    pieces: dict[str, dict[str, TensorEntry]] = {}
    whole: dict[str, str] = {}
    for entry in adapter_index.entries():
        name = entry.name
        match = _FACTOR.match(name)
        if name.endswith(".bias") and ".lora_" in name:  # before the factors: _FACTOR's adapter-name part takes .bias
            raise BadInput(f"adapter tensor {quoted(entry.display_name)} is a LoRA bias (lora_bias); "
                           "it is not supported yet.")
        if match:
            pieces.setdefault(match.group("module"), {})[match.group("which")] = entry
        else:
            target = name.replace(".modules_to_save.default.", ".").replace(".modules_to_save.", ".")
            if target in base_entries:
                whole[target] = name
    deltas = {}
    for module, parts in pieces.items():
        embedding = "embedding_A" in parts or "embedding_B" in parts
        a_part, b_part = ("embedding_A", "embedding_B") if embedding else ("A", "B")
        a_entry, b_entry = parts.get(a_part), parts.get(b_part)
        if a_entry is None or b_entry is None:
            present, missing = (b_entry, a_part) if a_entry is None else (a_entry, b_part)
            raise BadCheckpoint(f"adapter tensor {quoted(present.display_name)} has no lora_{missing} partner; "
                                "re-save the adapter.")
        target = module + ".weight"
        if target not in base_entries:
            expected = _adapter_module(a_entry).removeprefix(PEFT_PREFIX) + ".weight"
            raise BadInput(f"adapter tensor {quoted(a_entry.display_name)} targets {quoted(expected)}, which the "
                           "base model does not have; the adapter was trained on another model — check adapter_base.")
        a_factor = adapter_index.load(a_entry.name).to(torch.float64)
        b_factor = adapter_index.load(b_entry.name).to(torch.float64)
        rank = a_factor.shape[0]  # the stored factors are the truth; peft sizes them from r / rank_pattern
        alpha = float(_pattern_value(described.alpha_pattern, module, described.alpha if described.alpha is not None else rank))
        scale = alpha / math.sqrt(rank) if described.use_rslora else alpha / rank
        if embedding:  # peft: ΔW = (B A)ᵀ · s with A (r × vocab), B (dim × r)
            left, right = a_factor.T, b_factor.T
        elif described.fan_in_fan_out:  # Conv1D stores W transposed: ΔW = (B A)ᵀ
            left, right = a_factor.T, b_factor.T
        else:
            left, right = b_factor, a_factor
        base_entry = base_entries[target]
        shape = tuple(base_entry.shape)
        if len(shape) != 2 or (left.shape[0], right.shape[1]) != shape:
            raise ShapeMismatch(
                f"base tensor {quoted(base_entry.display_name)} has shape {list(shape)} but the adapter's factors "
                f"of {quoted(_adapter_module(a_entry))} make {[left.shape[0], right.shape[1]]}; the adapter was "
                "trained on another model — check adapter_base."
            )
        deltas[target] = LoraDelta(left, right, scale)
    return deltas, whole


def compare_adapter(
    base: ResolvedCheckpoint,
    adapter: ResolvedCheckpoint,
    *,
    top_k: int,
    exact: bool,
    device: torch.device,
    seed: int,
    progress: Callable[[int, int, str], None] | None,
) -> tuple[tuple[TensorDiff, ...], dict[str, TensorDetail]]:
    """Records and details for base vs base + adapter (see the module docstring)."""
    described = check_lora(adapter)
    records: list[TensorDiff] = []
    details: dict[str, TensorDetail] = {}
    with open_tensor_index(base) as base_index, open_tensor_index(adapter) as adapter_index:
        base_entries = {entry.name: entry for entry in base_index.entries()}
        deltas, whole = _factors(adapter_index, described, base_entries)
        comparer = PairComparer(base_index, adapter_index, top_k=top_k, exact=exact, device=device, seed=seed)
        names = list(base_entries)
        for done, name in enumerate(names, start=1):
            if name in whole:
                stored = base_entries[name].stored_name
                record, detail = comparer.compare(PlannedPair(name, name, whole[name], stored_name=stored))
            else:
                record, detail = _from_factors(base_index, name, base_entries[name], deltas.get(name), top_k, exact)
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


def _from_factors(
    index: TensorIndex, name: str, entry: TensorEntry, delta: LoraDelta | None, top_k: int, exact: bool
) -> tuple[TensorDiff, TensorDetail]:
    shape = tuple(entry.shape)
    detail = TensorDetail(name=name)
    base_rows, projected = _base_pass(index, name, shape, delta.right if delta is not None else None)
    if len(shape) <= 1:
        values = base_rows.numpy()
        detail.base_values, detail.trained_values = values, values.copy()
        unchanged = DeltaMetrics.unchanged(float(np.sqrt((values**2).sum())))
        return tensor_diff(name, shape, "unchanged", entry.dtype, entry.dtype, change=unchanged,
                           stored_name=entry.stored_name), detail
    frob_base_sq = float(base_rows.sum())
    detail.row_base_sq = base_rows.numpy()
    if delta is None:
        detail.row_delta_sq = np.zeros(shape[0])
        detail.col_delta_sq = np.zeros(int(np.prod(shape[1:])))
        unchanged = DeltaMetrics.unchanged(math.sqrt(frob_base_sq))
        return tensor_diff(name, shape, "unchanged", entry.dtype, entry.dtype, change=unchanged,
                           stored_name=entry.stored_name), detail
    rows, cols = shape
    frob_delta_sq = delta.energy()
    inner = delta.inner(projected)
    frob_trained_sq = max(frob_base_sq + 2 * inner + frob_delta_sq, 0.0)
    detail.row_delta_sq = delta.row_energy()
    detail.col_delta_sq = delta.column_energy()
    # The rest of ΔW's spectrum is exact zeros: min(m, n) values with exact, k without.
    length = min(rows, cols) if exact else min(top_k, rows, cols)
    spectrum = delta.spectrum(length)
    summary = summarize(spectrum, frob_delta_sq, rows, cols, top_k, exact)
    frob_base, frob_delta, frob_trained = math.sqrt(frob_base_sq), math.sqrt(frob_delta_sq), math.sqrt(frob_trained_sq)
    changed = frob_delta_sq > 0
    change = DeltaMetrics(
        frob_norm_base=frob_base,
        frob_norm_delta=frob_delta,
        frob_norm_trained=frob_trained,
        relative_change=frob_delta / frob_base if frob_base > 0 else (0.0 if not changed else None),
        cosine_similarity=((frob_base_sq + inner) / (frob_base * frob_trained)) if frob_base and frob_trained else None,
        fraction_unchanged=delta.fraction_unchanged(),
    )
    return tensor_diff(
        name, shape, "changed" if changed else "unchanged", entry.dtype, entry.dtype, change=change,
        stored_name=entry.stored_name,
        spectrum=spectrum if changed else None,
        summary=dataclasses.replace(summary, singular_values=summary.singular_values[:length]) if changed else None,
    ), detail
