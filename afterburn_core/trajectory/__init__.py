"""Trajectories: a sequence of checkpoints of one training run against its base, and when things emerged.

``discover`` turns what the user listed (checkpoint folders, a training output folder, hub revisions,
LoRA adapters) into ``CheckpointSpec``s in training order; ``run_trajectory`` checks and runs each as a
normal run through the caller's ``PairRunner`` and assembles the ``TrajectoryResult`` (contract:
docs/trajectory-schema.md) from the runs' stored results; ``metrics`` reads one checkpoint's numbers,
``emergence`` finds emergence points and the checkpoint to ship. ``afterburn_core.views.trajectory`` words it.
"""

from afterburn_core.trajectory.discovery import discover
from afterburn_core.trajectory.emergence import BANDS, DEFAULT_RECOMMEND_BELOW
from afterburn_core.trajectory.runs import PREVIOUS_ANALYSES, TRAJECTORY_ANALYSES, PairRunner, run_trajectory
from afterburn_core.trajectory.types import CheckpointSpec, TrajectoryResult

__all__ = [
    "BANDS", "DEFAULT_RECOMMEND_BELOW", "PREVIOUS_ANALYSES", "TRAJECTORY_ANALYSES", "CheckpointSpec", "PairRunner",
    "TrajectoryResult", "discover", "run_trajectory",
]
