"""The streamed weight diff: every tensor pair read once, compared in fp32, summarized, freed.

Contract: ``compare_weights(base, trained, *, top_k=32, exact=False, device="auto",
seed=0, progress=None, devices=None) -> WeightPass`` — one ``TensorDiff`` (and one
``TensorDetail`` where values were read) per record of the tie-aware plan
(``checkpoints.pairing.plan_pairs``: every tensor name of either side, in the
base's on-disk order then the trained side's extras, a tied head paired with
its embedding). Tensors pair by normalized name
(``checkpoints.normalize_tensor_name``), so shard layouts and a ``model.``
prefix do not matter. Each pair is compared by ``comparer.PairComparer``; a
trained-side LoRA adapter is compared from its factors (``lora.compare_adapter``).
The same seed gives the same result.

Cost: one read of each tensor pair (see ``comparer``), on a CUDA run spread over every visible GPU (one
worker thread per device, at most one pair per device in memory); metrics: ``metrics``;
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
    devices: list | None = None,
) -> WeightPass:
    """Compare two checkpoints tensor by tensor (see the module docstring).

    ``devices``: the devices the pairs are spread over, one worker thread each (None: every visible GPU on a
    CUDA run, ``compute_devices``; else the one device)."""
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
        workers = devices or compute_devices(compute_device)
        if len(workers) == 1:
            comparer = PairComparer(base_index, trained_index, top_k=top_k, exact=exact, device=workers[0], seed=seed)
            compared = (comparer.compare(pair) for pair in plan)
        else:
            compared = _compare_spread(base, trained, plan, workers, top_k=top_k, exact=exact, seed=seed)
        records: list[TensorDiff] = []
        details: dict[str, TensorDetail] = {}
        for done, (record, detail) in enumerate(compared, start=1):
            records.append(record)
            if detail is not None:
                details[record.name] = detail
            if progress is not None:
                progress(done, len(plan), record.name)
    return WeightPass(tuple(records), details, str(compute_device), time.perf_counter() - started)


def compute_devices(compute_device) -> list:
    """Every visible GPU when the run is on CUDA (one worker each), else the one device."""
    import torch

    if compute_device.type == "cuda" and compute_device.index is None and torch.cuda.device_count() > 1:
        return [torch.device("cuda", index) for index in range(torch.cuda.device_count())]
    return [compute_device]


def _compare_spread(base, trained, plan, devices, *, top_k: int, exact: bool, seed: int):
    """The plan's pairs compared by one worker thread per device, yielded in plan order.

    Each worker opens its own tensor indexes (one reader per thread) and takes the next pair when it finishes
    one, so at most one pair per device is in memory and peak memory still does not grow with the model. Each
    pair's spectrum is seeded by the pair's name (``spectrum.tensor_seed``), so which device took it does not
    change a number. The GIL is released in the reads and the kernels, so threads keep every device busy.
    """
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    pending: queue.SimpleQueue = queue.SimpleQueue()
    for position, pair in enumerate(plan):
        pending.put((position, pair))
    finished: dict[int, tuple] = {}
    ready = threading.Condition()
    failure: list[BaseException] = []
    stop = threading.Event()  # set when the caller stops reading (a cancel, an error): workers take no more

    def work(device) -> None:
        try:
            with open_tensor_index(base) as base_index, open_tensor_index(trained) as trained_index:
                comparer = PairComparer(base_index, trained_index, top_k=top_k, exact=exact, device=device, seed=seed)
                while not stop.is_set():
                    try:
                        position, pair = pending.get_nowait()
                    except queue.Empty:
                        return
                    result = comparer.compare(pair)
                    with ready:
                        finished[position] = result
                        ready.notify_all()
        except BaseException as error:  # handed to the caller's thread, which raises it
            stop.set()
            with ready:
                failure.append(error)
                ready.notify_all()

    with ThreadPoolExecutor(len(devices), thread_name_prefix="afterburn-weights") as pool:
        for device in devices:
            pool.submit(work, device)
        try:
            for position in range(len(plan)):
                with ready:
                    while position not in finished and not failure:
                        ready.wait()
                    if failure:
                        raise failure[0]
                    result = finished.pop(position)
                yield result
        finally:
            stop.set()
