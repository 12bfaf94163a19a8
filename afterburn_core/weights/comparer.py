"""One planned tensor pair read, compared in fp32 and summarized: the engine's unit of work.

Contract: ``PairComparer(base_index, trained_index, top_k=, exact=, device=, seed=)``
then ``compare(pair) -> (TensorDiff, TensorDetail | None)`` for one
``PlannedPair`` of the tie-aware plan (``checkpoints.pairing``). Equal shapes
compare entry by entry; an embedding or head whose row count differs (a
resized vocabulary) compares the shared rows, status ``resized`` with
``added_rows`` (negative when rows were removed); any other mismatch raises
``ShapeMismatch`` naming the tensor. A pair with one side absent is a
``base_only`` / ``trained_only`` record, a head both sides tie is ``tied``;
neither reads values (no detail). Every record carries the plan's names as
stored beside its key, and a shape error names the tensor as stored.

A stacked expert tensor (``naming.is_expert_stack``: ``mlp.experts.gate_up_proj``
[E, a, b]) is E separate matrices: it is read expert by expert (row blocks of
whole experts), its own metrics cover the whole tensor, and each slice
``W[e]`` gets its own metrics and, where 2-D and changed, its own spectrum
(``TensorDiff.expert_slices``); the stacked tensor gets none of its own. The
detail keeps each slice's row and column energies for the structure's
gate / up split.

It leaves the order of pairs and progress to ``engine``, LoRA factors to
``lora``, the metrics to ``metrics`` and the spectra to ``spectrum``.
Cost: one read of the pair (matrices above ``stream.LARGE_MATRIX_BYTES`` in
fp32 in row blocks, re-read from the page cache for each later pass of the
spectrum: 5 more for randomized, 0 for exact Gram); peak memory ≈ the pair
(≤ 64 MB fp32 each, plus ΔW) or one block set.
"""

from __future__ import annotations

import numpy as np
import torch

from afterburn_core.checkpoints import TensorIndex
from afterburn_core.errors import ShapeMismatch
from afterburn_core.limits import quoted
from afterburn_core.types import PlannedPair, TensorEntry
from afterburn_core.weights.metrics import DeltaStats, resolution_eps
from afterburn_core.checkpoints.naming import classify, is_expert_stack
from afterburn_core.weights.records import expert_slice, tensor_diff
from afterburn_core.weights.spectrum import OVERSAMPLE, ExactSpectrum, RandomizedSpectrum, summarize, tensor_seed
from afterburn_core.weights.stream import LARGE_MATRIX_BYTES, row_blocks
from afterburn_core.weights.types import ExpertSlice, TensorDiff
from afterburn_core.weights.weight_pass import TensorDetail

#: Module types whose row count may differ between the sides (a resized vocabulary).
RESIZABLE_MODULES = ("embed", "head")
#: Module types whose column energies the structure reads: an output projection's heads are input
#: columns, and a fused projection stored as Conv1D (in × out) has its q|k|v features as columns.
COLUMN_MODULES = ("o", "qkv", "gate_up")


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) a tensor is viewed as: 0-D and 1-D are one row; ≥ 3-D flatten trailing dims."""
    if len(shape) <= 1:
        return 1, (shape[0] if shape else 1)
    cols = 1
    for size in shape[1:]:
        cols *= size
    return shape[0], cols


class PairComparer:
    """Compares planned pairs of two open tensor indexes (see the module docstring)."""

    def __init__(
        self, base: TensorIndex, trained: TensorIndex, *, top_k: int, exact: bool, device: torch.device, seed: int
    ):
        self.base, self.trained = base, trained
        self.top_k, self.exact, self.device, self.seed = top_k, exact, device, seed

    def compare(self, pair: PlannedPair) -> tuple[TensorDiff, TensorDetail | None]:
        """The record of ``pair``, and its detail vectors when values were read."""
        base_entry = self.base.entry(pair.base_name) if pair.base_name else None
        trained_entry = self.trained.entry(pair.trained_name) if pair.trained_name else None
        names = {"stored_name": pair.stored_name, "base_stored_name": pair.base_stored_name}
        if pair.both_tied:
            entry = self.base.entry(pair.tied_to) if pair.tied_to else base_entry
            return tensor_diff(pair.name, entry.shape, "tied", entry.dtype, entry.dtype, tied_to=pair.tied_to,
                               **names), None
        if trained_entry is None:
            return tensor_diff(pair.name, base_entry.shape, "base_only", base_entry.dtype, None, **names), None
        if base_entry is None:
            return tensor_diff(pair.name, trained_entry.shape, "trained_only", None, trained_entry.dtype, **names), None
        return self._compare_values(pair, base_entry, trained_entry)

    def _compare_values(self, pair: PlannedPair, base_entry: TensorEntry, trained_entry: TensorEntry):
        module = classify(pair.name)[1]
        shape_b, shape_t = base_entry.shape, trained_entry.shape
        resized = shape_b != shape_t
        if resized and not (
            module in RESIZABLE_MODULES and len(shape_b) == len(shape_t) and shape_b[1:] == shape_t[1:] and shape_b
        ):
            raise ShapeMismatch(
                f"tensor {quoted(pair.stored_name or pair.name)} has shape {list(shape_b)} in the base but "
                f"{list(shape_t)} in the trained checkpoint; only the rows of an embedding or head "
                "(a resized vocabulary) may differ — check that both checkpoints are the same architecture."
            )
        shared_shape = (min(shape_b[0], shape_t[0]),) + tuple(shape_b[1:]) if shape_b else ()
        if is_expert_stack(pair.name) and len(shared_shape) >= 2 and not resized:
            return self._compare_stack(pair, base_entry, trained_entry)
        vector = len(shared_shape) <= 1
        rows, cols = matrix_shape(shared_shape)
        matrix = len(shared_shape) == 2 and rows > 0 and cols > 0
        stats = DeltaStats(resolution_eps(base_entry.dtype, trained_entry.dtype), keep_rows=not vector,
                           keep_cols=module in COLUMN_MODULES and not vector)
        worker = self._new_spectrum(rows, cols, pair.name) if matrix else None
        detail = TensorDetail(name=pair.name)
        blocked = not vector and rows * cols * 4 > LARGE_MATRIX_BYTES

        if blocked:
            def blocks():
                for start, stop in row_blocks(rows, cols):
                    base_block, trained_block = self._read_rows(pair, start, stop, cols)
                    yield start, stop, trained_block - base_block
            for start, stop in row_blocks(rows, cols):
                base_block, trained_block = self._read_rows(pair, start, stop, cols)
                delta = trained_block - base_block
                stats.update(base_block, trained_block, delta)
                del base_block, trained_block
                if worker is not None:
                    worker.consume(start, stop, delta)
                del delta
        else:
            base_values = self._read_whole(self.base, pair.base_name, shared_shape, rows, cols)
            trained_values = self._read_whole(self.trained, pair.trained_name, shared_shape, rows, cols)
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
            detail.col_base_sq = stats.col_base_sq()
            detail.row_base_sq = stats.row_base_sq()
        status = "resized" if resized else ("changed" if stats.changed else "unchanged")
        record = tensor_diff(
            pair.name, shape_b, status, base_entry.dtype, trained_entry.dtype,
            change=stats.metrics(), spectrum=spectrum, summary=summary,
            trained_shape=shape_t if resized else None,
            added_rows=(shape_t[0] - shape_b[0]) if resized else 0,
            tied_to=pair.tied_to, stored_name=pair.stored_name, base_stored_name=pair.base_stored_name,
        )
        return record, detail

    def _new_spectrum(self, rows: int, cols: int, name: str):
        """The spectrum worker of one (rows × cols) ΔW: exact when asked or when k + OVERSAMPLE covers it."""
        if self.exact or min(rows, cols) <= self.top_k + OVERSAMPLE:
            return ExactSpectrum(rows, cols, self.device)
        return RandomizedSpectrum(rows, cols, self.top_k, tensor_seed(self.seed, name), self.device)

    def _compare_slice(self, pair: PlannedPair, expert: int, slice_shape: tuple[int, ...], eps: float,
                       base: torch.Tensor, trained: torch.Tensor) -> tuple[ExpertSlice, DeltaStats]:
        """One expert's slice (``slice_shape``; base / trained fp32, viewed as rows × cols): metrics and spectrum."""
        rows, cols = matrix_shape(slice_shape)
        base, trained = base.reshape(rows, cols), trained.reshape(rows, cols)
        delta = trained - base
        stats = DeltaStats(eps, keep_rows=True, keep_cols=True)
        stats.update(base, trained, delta)
        spectrum = summary = None
        if len(slice_shape) == 2 and stats.changed:
            worker = self._new_spectrum(rows, cols, f"{pair.name}[{expert}]")
            worker.consume(0, rows, delta)

            def blocks():
                yield 0, rows, delta
            spectrum = worker.finish(blocks, stats.frob_delta_sq)
            summary = summarize(spectrum, stats.frob_delta_sq, rows, cols, self.top_k, self.exact)
        return expert_slice(expert, slice_shape, stats.metrics(), spectrum, summary), stats

    def _compare_stack(self, pair: PlannedPair, base_entry: TensorEntry, trained_entry: TensorEntry):
        """A stacked expert tensor [E, …], read a block of whole experts at a time (module docstring)."""
        shape = base_entry.shape
        experts, cols = matrix_shape(shape)
        slice_shape = tuple(shape[1:])
        eps = resolution_eps(base_entry.dtype, trained_entry.dtype)
        stats = DeltaStats(eps, keep_rows=True)
        slices: list[ExpertSlice] = []
        per_slice: list[DeltaStats] = []
        for start, stop in row_blocks(experts, cols):
            base_block, trained_block = self._read_rows(pair, start, stop, cols)
            stats.update(base_block, trained_block, trained_block - base_block)
            for offset in range(stop - start):
                record, slice_stats = self._compare_slice(pair, start + offset, slice_shape, eps,
                                                          base_block[offset], trained_block[offset])
                slices.append(record)
                per_slice.append(slice_stats)
            del base_block, trained_block
        detail = TensorDetail(name=pair.name, row_delta_sq=stats.row_delta_sq(), row_base_sq=stats.row_base_sq(),
                              slice_row_delta_sq=np.stack([s.row_delta_sq() for s in per_slice]),
                              slice_row_base_sq=np.stack([s.row_base_sq() for s in per_slice]),
                              slice_col_delta_sq=np.stack([s.col_delta_sq() for s in per_slice]),
                              slice_col_base_sq=np.stack([s.col_base_sq() for s in per_slice]))
        record = tensor_diff(
            pair.name, shape, "changed" if stats.changed else "unchanged", base_entry.dtype, trained_entry.dtype,
            change=stats.metrics(), tied_to=pair.tied_to, stored_name=pair.stored_name,
            base_stored_name=pair.base_stored_name, expert_slices=tuple(slices),
        )
        return record, detail

    def _read_whole(self, index: TensorIndex, name: str, shared_shape, rows: int, cols: int) -> torch.Tensor:
        tensor = index.load(name)
        if shared_shape and tensor.shape[0] != shared_shape[0]:
            tensor = tensor[: shared_shape[0]]
        return tensor.reshape(rows, cols).to(self.device, torch.float32)

    def _read_rows(self, pair: PlannedPair, start: int, stop: int, cols: int):
        base_block = self.base.load(pair.base_name, rows=(start, stop)).reshape(stop - start, cols)
        trained_block = self.trained.load(pair.trained_name, rows=(start, stop)).reshape(stop - start, cols)
        return base_block.to(self.device, torch.float32), trained_block.to(self.device, torch.float32)
