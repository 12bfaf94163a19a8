"""The bounds a checkpoint's tensors keep, checked from headers before any tensor value is read.

Contract: ``TensorBudget(root, files)`` refuses more than ``limits.MAX_WEIGHT_FILES``
weight files; then ``add(weight_file, shapes)``, called once per file with
``(raw name, shape)`` pairs, refuses a running tensor count over
``limits.MAX_TENSORS`` and any tensor the weight diff could not hold in this
machine's available memory (``limits.available_memory_bytes``). Each refusal is
a ``BadCheckpoint`` with its numbers: the count against the limit, the tensor's
name, shape, bytes needed and bytes available. ``local.py`` runs it at
resolution and ``tensors.py`` again when it builds an index (the files may have
changed since), so a hostile checkpoint is refused in seconds, not after
minutes of work or an out-of-memory kill.

The memory rule is a floor, not an estimate: the weight diff
(``weights.comparer``) reads a 0-D / 1-D tensor whole and a matrix at least one
row at a time, in fp32 for both sides, and keeps fp64 statistics per row, so
it holds at least ``DIFF_FLOOR_BYTES_PER_ELEMENT`` bytes per element of a
vector, or per element of one row plus per row of a matrix. A checkpoint that
streams (any real model, whose rows and columns are ≤ ~10⁸) is never refused;
one whose single row or vector cannot fit is, before the diff starts.

It leaves to others: reading headers (``headers.py``, ``pickles.py``), which
files make a checkpoint (``local.py``). Cost: one read of /proc/meminfo per budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from afterburn_core import limits
from afterburn_core.errors import BadCheckpoint
from afterburn_core.limits import MAX_TENSORS, MAX_WEIGHT_FILES, quoted

#: fp32 bytes of both sides (2 × 4) per element the weight diff must hold at once; the same
#: 8 bytes cover one fp64 statistic per row of a matrix.
DIFF_FLOOR_BYTES_PER_ELEMENT = 8


def diff_floor_bytes(shape: tuple[int, ...]) -> int:
    """The least memory the weight diff needs for one tensor pair of ``shape`` (module docstring)."""
    if len(shape) <= 1:
        elements = shape[0] if shape else 1
    else:
        rows, cols = shape[0], 1
        for size in shape[1:]:
            cols *= size
        elements = rows + cols
    return DIFF_FLOOR_BYTES_PER_ELEMENT * elements


def _gib(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB"


class TensorBudget:
    """Tensor count and per-tensor memory over the weight files of one checkpoint (module docstring)."""

    def __init__(self, root: Path, files: int):
        if files > MAX_WEIGHT_FILES:
            raise BadCheckpoint(
                f"{root} has {files:,} weight files, over the limit of {MAX_WEIGHT_FILES:,} "
                "(limits.MAX_WEIGHT_FILES); no real checkpoint has that many: re-save it in fewer shards."
            )
        self.files = files
        self.tensors = 0
        self.available = limits.available_memory_bytes()

    def add(self, weight_file: Path, shapes: Iterable[tuple[str, tuple[int, ...]]]) -> None:
        """Count the tensors of one weight file and check that each fits in memory."""
        shapes = list(shapes)
        self.tensors += len(shapes)
        if self.tensors > MAX_TENSORS:
            where = f"{weight_file} holds" if self.files == 1 else f"the weight files up to {weight_file} hold"
            raise BadCheckpoint(
                f"{where} {self.tensors:,} tensors, over the limit of {MAX_TENSORS:,} (limits.MAX_TENSORS); "
                "no real checkpoint holds that many: re-download or re-save it."
            )
        if self.available is None:
            return
        for raw_name, shape in shapes:
            needed = diff_floor_bytes(shape)
            if needed > self.available:
                raise BadCheckpoint(
                    f"tensor {quoted(raw_name)} in {weight_file} has shape {quoted(list(shape))}: the weight diff "
                    f"needs at least {_gib(needed)} for it (both sides of a vector or of one row, in fp32) but "
                    f"{_gib(self.available)} of memory is available; free memory or use a larger machine "
                    "if the checkpoint is genuine."
                )
