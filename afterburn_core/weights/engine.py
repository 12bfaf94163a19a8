"""The streamed weight diff: every tensor pair read once, compared in fp32, summarized, freed.

Contract: ``compare_weights(base, trained, *, top_k=32, exact=False, device="auto",
seed=0, progress=None) -> WeightPass`` — one ``TensorDiff`` (and one
``TensorDetail``) per tensor name of either side, in the base's on-disk order
then the trained side's extra tensors. Tensors pair by normalized name
(``checkpoints.normalize_tensor_name``), so shard layouts and a ``model.``
prefix do not matter. A trained-side LoRA adapter is compared from its factors
(``lora.compare_adapter``). The same seed gives the same result.

Shapes: equal shapes compare entry by entry; an embedding or head whose row
count differs (a resized vocabulary) compares the shared rows, status
``resized`` with ``added_rows`` (negative when rows were removed); any other
mismatch raises ``ShapeMismatch`` naming the tensor. A head missing from a
side whose config ties it (or that has no head but an embedding) is that
side's embedding: both sides tied → one ``tied`` record; one side tied → the
head is compared against that side's embedding and ``tied_to`` says so.
Tensors on one side only are ``base_only`` / ``trained_only`` records.

Cost: one read of each tensor pair (matrices above ``stream.LARGE_MATRIX_BYTES``
in fp32 are read in row blocks, and re-read from the page cache for each
later pass of the spectrum: 5 more for randomized, 0 for exact Gram); peak
memory ≈ the largest in-memory pair (≤ 64 MB fp32 each, plus ΔW) or one block
set. Metrics: ``metrics``; spectra and their error bounds: ``spectrum``.
It leaves aggregation, heads, norms and the diagnosis to ``structure`` /
``diagnosis``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from afterburn_core.checkpoints import TensorIndex, open_tensor_index
from afterburn_core.device import choose_device, pin_malloc_mmap_threshold
from afterburn_core.errors import BadInput, ConfigError, ShapeMismatch
from afterburn_core.types import ResolvedCheckpoint, TensorEntry
from afterburn_core.weights.types import TensorDiff
from afterburn_core.weights.metrics import DeltaStats, resolution_eps
from afterburn_core.weights.naming import classify
from afterburn_core.weights.spectrum import (
    OVERSAMPLE,
    ExactSpectrum,
    RandomizedSpectrum,
    summarize,
    tensor_seed,
)
from afterburn_core.weights.stream import LARGE_MATRIX_BYTES, row_blocks
from afterburn_core.weights.weight_pass import TensorDetail, WeightPass

Progress = Callable[[int, int, str], None]

#: Module types whose row count may differ between the sides (a resized vocabulary).
RESIZABLE_MODULES = ("embed", "head")
#: The head's name when neither side stores one (a tied head); what transformers' Llama / Qwen use.
DEFAULT_HEAD_NAME = "lm_head.weight"


@dataclass(frozen=True)
class _Planned:
    """One record to produce: which tensor each side reads (None = absent)."""

    name: str
    base_name: str | None
    trained_name: str | None
    tied_to: str | None = None
    both_tied: bool = False


def compare_weights(
    base: ResolvedCheckpoint,
    trained: ResolvedCheckpoint,
    *,
    top_k: int = 32,
    exact: bool = False,
    device: str = "auto",
    seed: int = 0,
    progress: Progress | None = None,
) -> WeightPass:
    """Compare two checkpoints tensor by tensor (see the module docstring)."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"spectrum_top_k: {top_k!r} must be a positive integer.")
    compute_device = choose_device(device)
    pin_malloc_mmap_threshold()
    started = time.perf_counter()
    if base.kind == "adapter":
        raise BadInput(
            f"the base side {base.reference!r} is a LoRA adapter; give its full model as base "
            "and the adapter as trained."
        )
    if trained.kind == "adapter":
        from afterburn_core.weights.lora import compare_adapter

        tensors, details = compare_adapter(
            base, trained, top_k=top_k, exact=exact, device=compute_device, progress=progress
        )
        return WeightPass(tensors, details, str(compute_device), time.perf_counter() - started, is_adapter=True)

    with open_tensor_index(base) as base_index, open_tensor_index(trained) as trained_index:
        plan = plan_pairs(base_index, trained_index, tied_config(base), tied_config(trained))
        comparer = _PairComparer(
            base_index, trained_index, top_k, exact, compute_device, seed
        )
        records: list[TensorDiff] = []
        details: dict[str, TensorDetail] = {}
        for done, planned in enumerate(plan, start=1):
            record, detail = comparer.compare(planned)
            records.append(record)
            if detail is not None:
                details[record.name] = detail
            if progress is not None:
                progress(done, len(plan), record.name)
    return WeightPass(tuple(records), details, str(compute_device), time.perf_counter() - started)


# -- pairing -----------------------------------------------------------------------------------


def tied_config(checkpoint: ResolvedCheckpoint) -> bool | None:
    """``tie_word_embeddings`` from the checkpoint's config.json (None when not stated)."""
    path = checkpoint.config_path
    if path is None or Path(path).name != "config.json":
        return None
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    value = config.get("tie_word_embeddings")
    if value is None and isinstance(config.get("text_config"), dict):
        value = config["text_config"].get("tie_word_embeddings")
    return value if isinstance(value, bool) else None


def token_embedding(entries: dict[str, TensorEntry]) -> str | None:
    """The input token embedding among ``entries``: the 2-D ``embed`` tensor with the most rows."""
    candidates = [
        entry for name, entry in entries.items()
        if classify(name)[1] == "embed" and len(entry.shape) == 2 and "pos" not in name and "wpe" not in name
    ]
    return max(candidates, key=lambda entry: entry.shape[0]).name if candidates else None


def plan_pairs(
    base_index: TensorIndex, trained_index: TensorIndex, base_tied: bool | None, trained_tied: bool | None
) -> list[_Planned]:
    """Every record to produce, in the base's on-disk order then the trained side's extras."""
    base_entries = {entry.name: entry for entry in base_index.entries()}
    trained_entries = {entry.name: entry for entry in trained_index.entries()}
    order = list(base_entries) + [name for name in trained_entries if name not in base_entries]
    heads = [name for name in order if classify(name)[1] == "head" and name.endswith("weight")]
    base_embed, trained_embed = token_embedding(base_entries), token_embedding(trained_entries)
    special: dict[str, _Planned] = {}
    tied_record: _Planned | None = None
    if not heads and base_embed and trained_embed and base_tied is not False and trained_tied is not False:
        tied_record = _Planned(DEFAULT_HEAD_NAME, None, None, tied_to=base_embed, both_tied=True)
    for head in heads:
        in_base, in_trained = head in base_entries, head in trained_entries
        if in_base and in_trained and base_tied is True and trained_tied is True:
            special[head] = _Planned(head, head, head, tied_to=base_embed, both_tied=True)
        elif in_base and not in_trained and trained_embed and trained_tied is not False:
            special[head] = _Planned(head, head, trained_embed, tied_to=trained_embed)
        elif in_trained and not in_base and base_embed and base_tied is not False:
            special[head] = _Planned(head, base_embed, head, tied_to=base_embed)
    plan = []
    for name in order:
        if name in special:
            plan.append(special[name])
        else:
            plan.append(
                _Planned(name, name if name in base_entries else None, name if name in trained_entries else None)
            )
    if tied_record is not None:
        plan.append(tied_record)
    return plan


# -- one pair ------------------------------------------------------------------------------------


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) a tensor is viewed as: 0-D and 1-D are one row; ≥ 3-D flatten trailing dims."""
    if len(shape) <= 1:
        return 1, (shape[0] if shape else 1)
    cols = 1
    for size in shape[1:]:
        cols *= size
    return shape[0], cols


class _PairComparer:
    def __init__(self, base: TensorIndex, trained: TensorIndex, top_k: int, exact: bool, device, seed: int):
        self.base, self.trained = base, trained
        self.top_k, self.exact, self.device, self.seed = top_k, exact, device, seed

    def compare(self, planned: _Planned) -> tuple[TensorDiff, TensorDetail | None]:
        layer, module = classify(planned.name)
        base_entry = self.base.entry(planned.base_name) if planned.base_name else None
        trained_entry = self.trained.entry(planned.trained_name) if planned.trained_name else None
        if planned.both_tied:
            entry = self.base.entry(planned.tied_to) if planned.tied_to else base_entry
            return _bare(planned.name, entry.shape, "tied", module, layer, entry.dtype, entry.dtype,
                         tied_to=planned.tied_to), None
        if trained_entry is None:
            return _bare(planned.name, base_entry.shape, "base_only", module, layer, base_entry.dtype, None), None
        if base_entry is None:
            return _bare(planned.name, trained_entry.shape, "trained_only", module, layer, None,
                         trained_entry.dtype), None
        return self._compare_values(planned, base_entry, trained_entry, module, layer)

    def _compare_values(self, planned, base_entry: TensorEntry, trained_entry: TensorEntry, module, layer):
        shape_b, shape_t = base_entry.shape, trained_entry.shape
        resized = shape_b != shape_t
        if resized and not (
            module in RESIZABLE_MODULES and len(shape_b) == len(shape_t) and shape_b[1:] == shape_t[1:] and shape_b
        ):
            raise ShapeMismatch(
                f"tensor {planned.name!r} has shape {list(shape_b)} in the base but {list(shape_t)} in the trained "
                "checkpoint; only the rows of an embedding or head (a resized vocabulary) may differ — "
                "check that both checkpoints are the same architecture."
            )
        shared_shape = (min(shape_b[0], shape_t[0]),) + tuple(shape_b[1:]) if shape_b else ()
        vector = len(shared_shape) <= 1
        rows, cols = _matrix_shape(shared_shape)
        matrix = len(shared_shape) == 2 and rows > 0 and cols > 0
        stats = DeltaStats(resolution_eps(base_entry.dtype, trained_entry.dtype), keep_rows=not vector,
                           keep_cols=module == "o" and not vector)
        worker = None
        if matrix:
            if self.exact or min(rows, cols) <= self.top_k + OVERSAMPLE:
                worker = ExactSpectrum(rows, cols, self.device)
            else:
                worker = RandomizedSpectrum(rows, cols, self.top_k, tensor_seed(self.seed, planned.name), self.device)
        detail = TensorDetail(name=planned.name)
        blocked = not vector and rows * cols * 4 > LARGE_MATRIX_BYTES

        if blocked:
            def blocks():
                for start, stop in row_blocks(rows, cols):
                    base_block, trained_block = self._read_rows(planned, start, stop, cols)
                    yield start, stop, trained_block - base_block
            for start, stop in row_blocks(rows, cols):
                base_block, trained_block = self._read_rows(planned, start, stop, cols)
                delta = trained_block - base_block
                stats.update(base_block, trained_block, delta)
                del base_block, trained_block
                if worker is not None:
                    worker.consume(start, stop, delta)
                del delta
        else:
            base_values = self._read_whole(self.base, planned.base_name, shared_shape, rows, cols)
            trained_values = self._read_whole(self.trained, planned.trained_name, shared_shape, rows, cols)
            delta = trained_values - base_values
            stats.update(base_values, trained_values, delta)
            if vector:
                detail.base_values = base_values.reshape(-1).to("cpu", torch.float64).numpy()
                detail.trained_values = trained_values.reshape(-1).to("cpu", torch.float64).numpy()
            del base_values, trained_values
            if worker is not None:
                worker.consume(0, rows, delta)

            def blocks():
                yield 0, rows, delta

        summary, spectrum = None, None
        if worker is not None and stats.changed:
            spectrum = worker.finish(blocks, stats.frob_delta_sq)
            summary = summarize(spectrum, stats.frob_delta_sq, rows, cols, self.top_k, self.exact)
        del worker, blocks
        if not vector:
            detail.row_delta_sq = stats.row_delta_sq()
            detail.col_delta_sq = stats.col_delta_sq()
            detail.row_base_sq = stats.row_base_sq()
        status = "resized" if resized else ("changed" if stats.changed else "unchanged")
        record = TensorDiff(
            name=planned.name,
            shape=tuple(shape_b),
            status=status,
            module=module,
            layer=layer,
            dtype_base=base_entry.dtype,
            dtype_trained=trained_entry.dtype,
            frob_norm_base=stats.frob_norm_base,
            frob_norm_delta=stats.frob_norm_delta,
            relative_change=stats.relative_change,
            cosine_similarity=stats.cosine_similarity,
            fraction_unchanged=stats.fraction_unchanged,
            singular_values=summary.singular_values if summary else None,
            spectrum_method=spectrum.method if spectrum else None,
            spectrum_error_bound=spectrum.error_bound if spectrum else None,
            effective_rank=summary.effective_rank if summary else None,
            stable_rank=summary.stable_rank if summary else None,
            rank_90=summary.rank_90 if summary else None,
            low_rank=summary.low_rank if summary else None,
            trained_shape=tuple(shape_t) if resized else None,
            frob_norm_trained=stats.frob_norm_trained,
            max_abs_delta=stats.max_abs_delta,
            fraction_unchanged_within_resolution=stats.fraction_unchanged_within_resolution,
            rank_99=summary.rank_99 if summary else None,
            energy_top_k=summary.energy_top_k if summary else None,
            added_rows=(shape_t[0] - shape_b[0]) if resized else 0,
            tied_to=planned.tied_to,
        )
        return record, detail

    def _read_whole(self, index: TensorIndex, name: str, shared_shape, rows: int, cols: int) -> torch.Tensor:
        tensor = index.load(name)
        if shared_shape and tensor.shape[0] != shared_shape[0]:
            tensor = tensor[: shared_shape[0]]
        return tensor.reshape(rows, cols).to(self.device, torch.float32)

    def _read_rows(self, planned: _Planned, start: int, stop: int, cols: int):
        base_block = self.base.load(planned.base_name, rows=(start, stop)).reshape(stop - start, cols)
        trained_block = self.trained.load(planned.trained_name, rows=(start, stop)).reshape(stop - start, cols)
        return base_block.to(self.device, torch.float32), trained_block.to(self.device, torch.float32)


def _bare(name, shape, status, module, layer, dtype_base, dtype_trained, tied_to=None) -> TensorDiff:
    """A record without values: one side only, or a tied head."""
    return TensorDiff(
        name=name, shape=tuple(shape), status=status, module=module, layer=layer,
        dtype_base=dtype_base, dtype_trained=dtype_trained, frob_norm_base=None, frob_norm_delta=None,
        relative_change=None, cosine_similarity=None, fraction_unchanged=None, tied_to=tied_to,
    )
