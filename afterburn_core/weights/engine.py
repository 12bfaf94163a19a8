"""The streamed weight diff: every tensor pair read once, compared in fp32, summarized, freed.

Contract: ``compare_weights(base, trained, *, top_k=32, exact=False, device="auto",
seed=0, progress=None) -> WeightPass`` — one ``TensorDiff`` (and one
``TensorDetail`` where values were read) per record of the tie-aware plan
(``checkpoints.pairing.plan_pairs``: every tensor name of either side, in the
base's on-disk order then the trained side's extras, a tied head paired with
its embedding). Tensors pair by normalized name
(``checkpoints.normalize_tensor_name``), so shard layouts and a ``model.``
prefix do not matter. Each pair is compared by ``comparer.PairComparer``; a
trained-side LoRA adapter is compared from its factors (``lora.compare_adapter``).
The same seed gives the same result.

Cost: one read of each tensor pair (see ``comparer``); metrics: ``metrics``;
spectra and their error bounds: ``spectrum``. It leaves aggregation, heads,
norms and the diagnosis to ``structure`` / ``diagnosis``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from afterburn_core.checkpoints import open_tensor_index
from afterburn_core.checkpoints.pairing import plan_pairs
from afterburn_core.device import choose_device, pin_malloc_mmap_threshold
from afterburn_core.errors import BadInput, ConfigError
from afterburn_core.types import ResolvedCheckpoint
from afterburn_core.weights.comparer import PairComparer
from afterburn_core.weights.lora import compare_adapter
from afterburn_core.weights.types import TensorDiff
from afterburn_core.weights.weight_pass import TensorDetail, WeightPass

Progress = Callable[[int, int, str], None]


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
        tensors, details = compare_adapter(
            base, trained, top_k=top_k, exact=exact, device=compute_device, seed=seed, progress=progress
        )
        return WeightPass(tensors, details, str(compute_device), time.perf_counter() - started, is_adapter=True)

    with open_tensor_index(base) as base_index, open_tensor_index(trained) as trained_index:
        plan = plan_pairs(base, trained, base_index, trained_index)
        comparer = PairComparer(base_index, trained_index, top_k=top_k, exact=exact, device=compute_device, seed=seed)
        records: list[TensorDiff] = []
        details: dict[str, TensorDetail] = {}
        for done, pair in enumerate(plan, start=1):
            record, detail = comparer.compare(pair)
            records.append(record)
            if detail is not None:
                details[record.name] = detail
            if progress is not None:
                progress(done, len(plan), record.name)
    return WeightPass(tuple(records), details, str(compute_device), time.perf_counter() - started)
