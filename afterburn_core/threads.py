"""How many CPU threads torch computes with: the CPUs this process may use, and one where more are slower.

torch starts one intra-op thread per core, and its OpenMP threads wait for
each other at the end of every parallel region. Where anything else computes
(a notebook, a training job, a second Afterburn worker), one of them is
descheduled and every region waits a scheduler time slice for it, so a run
slows far beyond its share of the machine. A run therefore computes with
``thread_count(config.threads, base, trained)`` threads:

- ``threads > 0``: that many (the user knows better);
- ``0`` (automatic): one thread when the pair's weights are small
  (``PARALLEL_MIN_WEIGHT_BYTES``: below it a second thread saves nothing even
  on an idle machine), else ``usable_cpus()``: the CPUs of this process's
  affinity mask, capped by its cgroup CPU quota (v2 ``cpu.max``; v1
  ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), which ``os.cpu_count()`` and
  torch's default both ignore.

``computing_with(count)`` sets torch's intra-op threads for a block and puts
the previous count back after it, so a script calling the API keeps its own
setting. OpenMP's wait policy is left as it is: ``OMP_WAIT_POLICY=PASSIVE``
(idle threads sleep instead of spinning) did not help two threads beside other
work here (a 750 MB pair's weight diff 22.8 s passive vs 20.9-24.5 s by default,
10.5 s with one thread), and one thread has nothing to spin. Inter-op threads
are left alone too: inference forks no inter-op work, and that pool sleeps when idle.

It chooses no device (``afterburn_core.device``) and computes nothing. Cost:
a few small reads under /proc and /sys, once per run; torch imported by
``computing_with``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from afterburn_core.types import ResolvedCheckpoint

#: Below this many bytes of weights in the larger checkpoint of a pair, a run computes with one thread.
#: Measured on this 2-core machine, best of 2-3 alternating runs (the least disturbed) each, 1 thread vs 2:
#: the demo pair (4 MB) weight diff 0.12 s vs 0.13 s, its generation 1.13 s vs 1.13 s; a 23 M-parameter
#: Llama (94 MB fp32) generating the math suite 2.66 s vs 2.93 s. Beside other work, 2 threads were 2-6×
#: slower than 1 on every size tried (up to a 750 MB pair: weight diff 10.5 s vs 20.9 s).
PARALLEL_MIN_WEIGHT_BYTES = 256 * 2**20
#: Where the cgroup hierarchies are mounted (v2 alone, v2 beside v1, and v1's cpu controller).
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: This process's cgroup per hierarchy (``N:controllers:/path`` lines, ``0::/path`` for v2).
SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int:
    """The CPUs this process may run on (affinity mask), capped by its cgroup CPU quota; at least 1.

    A fractional quota rounds down (1.5 CPUs → 1 thread), as Go's automaxprocs does: a thread
    beyond the quota is throttled for the rest of each period, the very stall this module avoids.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, self_cgroup)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """CPUs' worth of time this process's cgroups allow per period (the tightest on the path to the
    root), or None when no quota is set or the platform has no cgroups."""
    try:
        lines = self_cgroup.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    quotas = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: one unified hierarchy, mounted alone or under unified/ beside v1
            for mount in (cgroup_root, cgroup_root / "unified"):
                quotas += _walk(mount, path, _v2_quota)
        elif "cpu" in controllers.split(","):
            for mount in {cgroup_root / controllers, cgroup_root / "cpu"}:
                quotas += _walk(mount, path, _v1_quota)
    return min(quotas, default=None)


def _walk(mount: Path, path: str, read_quota) -> list[float]:
    """The quotas set on ``path`` and each folder above it, up to the mount (a parent's limit binds too)."""
    folder = mount / path.strip("/")
    found = []
    while True:
        quota = read_quota(folder)
        if quota is not None:
            found.append(quota)
        if folder == mount or mount not in folder.parents:
            return found
        folder = folder.parent


def _v2_quota(folder: Path) -> float | None:
    """``cpu.max`` holds "QUOTA PERIOD" in µs, or "max PERIOD" for no limit."""
    try:
        quota, period = (folder / "cpu.max").read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, UnicodeDecodeError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(folder: Path) -> float | None:
    """``cpu.cfs_quota_us`` is -1 for no limit; ``cpu.cfs_period_us`` beside it."""
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
        return None if quota <= 0 else quota / period
    except (OSError, UnicodeDecodeError, ValueError, ZeroDivisionError):
        return None


def weight_bytes(checkpoint: ResolvedCheckpoint) -> int:
    """Bytes of weight files a run loads for ``checkpoint`` (an adapter's base included)."""
    total = 0
    for name in checkpoint.weight_files:
        with contextlib.suppress(OSError):
            total += os.path.getsize(name)
    return total + (0 if checkpoint.adapter_base is None else weight_bytes(checkpoint.adapter_base))


def thread_count(requested: int, base: ResolvedCheckpoint, trained: ResolvedCheckpoint) -> int:
    """The threads a run of this pair computes with: ``requested`` when > 0, else the automatic choice."""
    if requested > 0:
        return requested
    if max(weight_bytes(base), weight_bytes(trained)) < PARALLEL_MIN_WEIGHT_BYTES:
        return 1
    return usable_cpus()


@contextlib.contextmanager
def computing_with(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block, the previous count after it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

