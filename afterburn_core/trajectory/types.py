"""Records of a trajectory: which checkpoints in which order, and what was found across them.

``CheckpointSpec`` is what discovery hands the runner (a reference, its
training step, where the step came from, what the trainer logged there).
``TrajectoryResult`` is the stored, versioned result other tools read
(contract: docs/trajectory-schema.md); the field names the issue lists —
``schema_version``, ``base``, ``checkpoints`` (``reference``, ``step``,
``run_id``, ``weights`` {``relative_change_vs_base``,
``relative_change_vs_previous``}, ``behaviour``, ``reward_hack``
{``composite`` {``score``, ``band``}, ``detectors`` {name: {``score``,
``flagged``}}}), ``emergence`` and ``recommended_checkpoint`` — are stable;
the rest was added beside them. Data only: no computation, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from afterburn_core.reward_hack.types import Band
from afterburn_core.types import CheckpointRef

#: Where a checkpoint's step came from: its folder or revision name (``checkpoint-500``, ``step-500``), its
#: ``trainer_state.json`` (``global_step``), the caller (``steps=``), or its place in the list (1, 2, …).
StepSource = Literal["name", "trainer_state", "given", "position"]


@dataclass(frozen=True)
class CheckpointSpec:
    """One checkpoint of the sequence as discovered: ``logged`` holds what the trainer logged at or before
    ``step`` (its last value of each loss / reward key; empty without a ``trainer_state.json``)."""

    reference: str
    step: int
    step_source: StepSource
    logged: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightDrift:
    """How far the weights moved: ‖ΔW‖/‖W‖ over every compared tensor, against the base and the previous
    checkpoint, and the same per module type (``attention``, ``mlp``, …).

    The first checkpoint's previous is the base. ``previous_run_id`` is the weights-only run of the pair
    (previous, this), None for the first checkpoint and where it was not computed; then
    ``previous_reason`` says why (two LoRA adapters are not compared with each other).
    """

    relative_change_vs_base: float
    relative_change_vs_previous: float | None
    modules_vs_base: dict[str, float]
    modules_vs_previous: dict[str, float]
    previous_run_id: str | None = None
    previous_reason: str | None = None


@dataclass(frozen=True)
class CompositeStep:
    """The composite reward-hack risk of one checkpoint."""

    score: float
    band: Band


@dataclass(frozen=True)
class DetectorStep:
    """One detector at one checkpoint: its 0–100 score, whether it flagged, its band, whether it could read
    anything (an unavailable detector scores 0 and never flags)."""

    score: float
    flagged: bool
    band: Band
    available: bool


@dataclass(frozen=True)
class RewardHackStep:
    """The reward-hack verdict of one checkpoint, registry detectors by name."""

    composite: CompositeStep
    detectors: dict[str, DetectorStep]


@dataclass(frozen=True)
class TrajectoryCheckpoint:
    """One checkpoint of a finished trajectory: its run (which every page opens) and its numbers.

    ``behaviour`` holds the post-trained side's metrics pooled over the suites (names in
    ``trajectory.metrics.BEHAVIOUR_METRICS``; None where no suite measures one); ``logged`` what the
    trainer logged at that step.
    """

    reference: str
    step: int
    run_id: str
    fingerprint: str
    step_source: StepSource
    weights: WeightDrift
    behaviour: dict[str, float | None]
    reward_hack: RewardHackStep
    logged: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EmergenceInterval:
    """Where a detector started to stay flagged: after ``after_step`` (None: the base) and by ``at_step``."""

    after_step: int | None
    at_step: int


@dataclass(frozen=True)
class Recommendation:
    """Which checkpoint to ship: the best accuracy among the checkpoints whose composite band is below
    ``below_band``; ties go to the lower composite, then the later step.

    ``basis`` says what decided: ``accuracy``; ``composite`` (no checkpoint measured accuracy: the lowest
    composite below the band); or ``none`` (no checkpoint is below the band: ``step`` is None).
    """

    step: int | None
    below_band: Band
    basis: Literal["accuracy", "composite", "none"]
    accuracy: float | None
    composite: float | None
    candidates: int


@dataclass(frozen=True)
class TrajectoryResult:
    """A sequence of checkpoints against one base, in training order (contract: docs/trajectory-schema.md).

    ``emergence``: per detector the step from which it stays flagged to the last checkpoint, None when
    it is not flagged at the last one; ``emergence_intervals`` the same as an interval.
    ``base_behaviour``: the base's own behaviour metrics (from the first run), what step 0 would read.
    ``analyses``: the analyses each checkpoint's run computed; ``method`` the training method the
    composite weighed detectors for.
    """

    KIND: ClassVar[str] = "trajectory"
    SCHEMA_VERSION: ClassVar[int] = 1

    base: CheckpointRef
    checkpoints: tuple[TrajectoryCheckpoint, ...]
    emergence: dict[str, int | None]
    recommended_checkpoint: int | None
    emergence_intervals: dict[str, EmergenceInterval | None]
    recommendation: Recommendation
    base_behaviour: dict[str, float | None]
    method: str
    analyses: tuple[str, ...]
    schema_version: int = field(default=SCHEMA_VERSION)
