"""How large matrices are split into row blocks, so their fp32 copies never sit in memory whole.

``row_blocks(rows, cols)`` splits a matrix into blocks whose fp32 copy stays
under ``BLOCK_BYTES``; the engine reads each block with
``TensorIndex.load(name, rows=(start, stop))`` (safetensors ``get_slice``: only
those bytes; pickle checkpoints have no sliced reads, so their rows come from
the whole tensor). It leaves to others: which tensors pair up (``engine``),
what is computed (``metrics``, ``spectrum``).
"""

from __future__ import annotations

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
