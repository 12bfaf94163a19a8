"""Read one side's tensors whole or by row blocks, as fp32 on the compute device.

``TensorReader`` wraps a ``TensorIndex``: ``read(name)`` gives the whole
tensor, ``read_rows(name, start, stop)`` a slice of its leading dimension read
through ``TensorIndex.load(rows=…)`` (safetensors ``get_slice``) so a large
embedding is never copied whole. ``row_blocks(rows, cols)`` splits a matrix into blocks whose fp32 copy
stays under ``BLOCK_BYTES``.

It leaves to others: which tensors pair up (``engine``), what is computed
(``metrics``, ``spectrum``). Cost: each call reads only the bytes asked for;
pickle checkpoints have no sliced reads, so their rows come from the whole
tensor (already mapped by the index).
"""

from __future__ import annotations

from afterburn_core.checkpoints import TensorIndex

#: Matrices whose fp32 copy exceeds this are processed in row blocks (the issue's 64 MB:
#: above it sit only embeddings and heads, e.g. Qwen2.5-0.5B's 151936 × 896 = 545 MB).
LARGE_MATRIX_BYTES = 64 * 2**20
#: fp32 bytes per row block of a large matrix: ~5 such buffers live at once (two sides,
#: their fp32 copies, ΔW), so a block costs ~160 MB of peak memory at most.
BLOCK_BYTES = 32 * 2**20


def row_blocks(rows: int, cols: int, block_bytes: int | None = None) -> list[tuple[int, int]]:
    """``[(start, stop), …]`` covering ``range(rows)`` with ≤ ``block_bytes`` (default ``BLOCK_BYTES``) of fp32 each."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    per_block = max(1, block_bytes // max(1, 4 * cols))
    return [(start, min(rows, start + per_block)) for start in range(0, rows, per_block)]


class TensorReader:
    """Whole and row-sliced reads of one checkpoint's tensors (see the module docstring)."""

    def __init__(self, index: TensorIndex):
        self.index = index

    def read(self, name: str):
        """The tensor as stored (CPU, its own dtype)."""
        return self.index.load(name)

    def read_rows(self, name: str, start: int, stop: int):
        """Rows ``start:stop`` of the tensor's leading dimension (CPU, its own dtype)."""
        return self.index.load(name, rows=(start, stop))
