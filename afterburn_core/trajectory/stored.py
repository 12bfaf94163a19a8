"""Finished trajectories read back from the store: the list a user picks from, and one by its key.

``run_trajectory`` stores each finished trajectory under its key, linked to no run; this module finds
them by kind, newest first, and reads one back typed. A key that names no trajectory (deleted, or one of
its runs deleted since) is ``BadInput`` with the way to get it back. It runs nothing and computes nothing;
cost: one store read per trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.errors import BadInput
from afterburn_core.store import RunStore, stored_result
from afterburn_core.trajectory.runs import runs_exist
from afterburn_core.trajectory.types import TrajectoryResult

#: Most trajectories listed: a picker of more is unusable, and each one listed is one store read.
MAX_LISTED = 100


@dataclass(frozen=True)
class StoredTrajectory:
    """A finished trajectory, the key it is stored under (``?trajectory=<key>`` opens it) and when it was stored."""

    key: str
    stored_at: float
    result: TrajectoryResult


def stored_trajectories(store: RunStore, limit: int = MAX_LISTED) -> tuple[StoredTrajectory, ...]:
    """The stored trajectories whose runs are all still in the store, newest first."""
    found = []
    for key, stored_at in store.result_keys(TrajectoryResult.KIND, limit):
        result = stored_result(store, key, TrajectoryResult)
        if result is not None and runs_exist(store, result):
            found.append(StoredTrajectory(key, stored_at, result))
    return tuple(found)


def load_trajectory(store: RunStore, key: str) -> TrajectoryResult:
    """The trajectory stored under ``key``; ``BadInput`` when there is none, or one of its runs is gone."""
    result = stored_result(store, key, TrajectoryResult)
    if result is None or not runs_exist(store, result):
        raise BadInput(f"no stored trajectory {key!r} in {store.path}; run afterburn trajectory again to store it")
    return result
