"""Run a trajectory: each checkpoint as a normal run against the base, each step's weight move as a
weights-only run of (previous, this), then the numbers across them, stored as one ``trajectory`` result.

Every input is checked before any run is recorded: each pair's references resolve, the suites load, and
each checkpoint has the base's architecture. How one pair is checked and run is the caller's
``PairRunner`` (the API's runs each through ``runner.execute_run``, in this process): this module knows
the sequence, not the worker. A finished trajectory is stored under a key made of the
base's and the checkpoints' fingerprints in order, their steps, the analyses and the settings they read,
and the recommendation's band: asked again, it is read back and nothing runs. Otherwise each run goes
through the runner like any other (so every page opens it) and hits the store for whatever was computed
before — the base's answers included (``stages.generations``) — so adding a checkpoint to a finished
trajectory computes only the new checkpoint and its step from the one before. Two LoRA adapters are not
compared with each other (the weight diff reads an adapter against its base): their step-to-step drift is
left out with that reason.

Cost: per checkpoint one run (one streamed weight pass against the base, one generation pass of the
checkpoint, the statistics and detectors) and one streamed weight pass against the previous checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from afterburn_core.analyses import config_fields_for
from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AnalysisFailed, BadInput, RunNotFound
from afterburn_core.limits import quoted
from afterburn_core.reward_hack.types import Band, RewardHackResult
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore, cache_key, load_result, stored_result
from afterburn_core.trajectory.emergence import DEFAULT_RECOMMEND_BELOW, emergence, recommend
from afterburn_core.trajectory.metrics import behaviour_metrics, module_changes, relative_change, reward_hack_step
from afterburn_core.trajectory.types import CheckpointSpec, TrajectoryCheckpoint, TrajectoryResult, WeightDrift
from afterburn_core.types import ModelDescription, ResolvedCheckpoint
from afterburn_core.weights.analysis import checkpoint_ref
from afterburn_core.weights.types import WeightDiffResult

if TYPE_CHECKING:
    from afterburn_core.runner import CheckedInputs

#: The analyses each checkpoint's run computes: what the trajectory reads (weights, behaviour, reward hack)
#: and the inventory every page opens a run with. Token KL and internals are left to a pair run of the
#: checkpoint a user picks: they cost two more passes each and no trajectory number reads them.
TRAJECTORY_ANALYSES: tuple[str, ...] = ("inventory", "weights", "behaviour", "reward_hack")
#: The run of each step against the one before: the weight diff alone.
PREVIOUS_ANALYSES: tuple[str, ...] = ("weights",)
#: The model fields two checkpoints of one training run share; any difference means another model.
ARCHITECTURE_FIELDS = ("architecture", "model_type", "num_layers", "hidden_size", "num_heads", "num_kv_heads",
                       "head_dim")
#: Why two adapters get no step-to-step weight diff.
ADAPTERS_NOT_COMPARED = ("LoRA adapters are each compared with their base; two adapters are not compared with "
                         "each other")


class PairRunner(Protocol):
    """How the caller checks and runs one pair of the trajectory."""

    def check(self, base: str, trained: str, analyses: tuple[str, ...]) -> CheckedInputs:
        """Every input a run of ``analyses`` on the pair reads, checked (``runner.check_inputs``); raises ``BadInput``."""

    def run(self, pair: CheckedInputs, analyses: tuple[str, ...], label: str) -> str:
        """Record and run the pair (stored results reused), its progress labelled ``label``; its run id."""


@dataclass(frozen=True)
class _Checked:
    """A checkpoint with its pair checked, and the pair (previous, this) when its weights are compared."""

    spec: CheckpointSpec
    pair: CheckedInputs
    previous: CheckedInputs | None
    previous_reason: str | None


def check_trajectory(base: str, specs: Sequence[CheckpointSpec], runner: PairRunner) -> list[_Checked]:
    """Every pair resolved and checked (suites, device, files), each checkpoint of the base's architecture."""
    checked: list[_Checked] = []
    for index, spec in enumerate(specs):
        pair = runner.check(base, spec.reference, TRAJECTORY_ANALYSES)
        _check_architecture(pair.base, pair.trained, spec.reference)
        previous, reason = None, None
        if index > 0:
            earlier = checked[-1]
            if "adapter" in (earlier.pair.trained.kind, pair.trained.kind):
                reason = ADAPTERS_NOT_COMPARED
            else:
                previous = runner.check(earlier.spec.reference, spec.reference, PREVIOUS_ANALYSES)
        checked.append(_Checked(spec, pair, previous, reason))
    return checked


def _check_architecture(base: ResolvedCheckpoint, checkpoint: ResolvedCheckpoint, reference: str) -> None:
    if _shape(base.description) != _shape(checkpoint.description):
        raise BadInput(f"{quoted(reference)} is {_describe(checkpoint.description)}, the base "
                       f"{_describe(base.description)}; a trajectory follows one model: give checkpoints of the "
                       "base's training run")


def _shape(description: ModelDescription) -> tuple:
    return tuple(getattr(description, name) for name in ARCHITECTURE_FIELDS)


def _describe(description: ModelDescription) -> str:
    return (f"{description.architecture or description.model_type or 'an unknown architecture'} with "
            f"{description.num_layers} layers, hidden size {description.hidden_size}, {description.num_heads} heads")


def trajectory_key(checked: Sequence[_Checked], config: AnalysisConfig, below_band: Band) -> str:
    """The key a finished trajectory is stored under (see the module docstring)."""
    from afterburn_core.generation.pipeline import suites_key

    settings = config.subset(config_fields_for(TRAJECTORY_ANALYSES))
    settings["suites"] = suites_key(config)  # what they resolve to, as the generations key holds them
    fingerprints = (checked[0].pair.base.fingerprint, *(item.pair.trained.fingerprint for item in checked))
    return cache_key(TrajectoryResult.KIND, TrajectoryResult.SCHEMA_VERSION, fingerprints, {
        "steps": [item.spec.step for item in checked], "analyses": list(TRAJECTORY_ANALYSES),
        "settings": settings, "recommend_below": below_band,
    })


def run_trajectory(base: str, specs: Sequence[CheckpointSpec], config: AnalysisConfig, store: RunStore,
                   runner: PairRunner, *, below_band: Band = DEFAULT_RECOMMEND_BELOW) -> TrajectoryResult:
    """The trajectory of ``specs`` against ``base`` (``config``: the runs' settings): read back when
    stored, else run through ``runner`` and stored."""
    checked = check_trajectory(base, specs, runner)
    key = trajectory_key(checked, config, below_band)
    stored = stored_result(store, key, TrajectoryResult)
    if stored is not None and runs_exist(store, stored):
        return stored
    checkpoints: list[TrajectoryCheckpoint] = []
    base_behaviour: dict[str, float | None] = {}
    for item in checked:
        label = f"step {item.spec.step}"
        run_id = runner.run(item.pair, TRAJECTORY_ANALYSES, label)
        weights = _result(store, run_id, WeightDiffResult)
        behaviour = _result(store, run_id, BehaviourStats)
        if not checkpoints:
            base_behaviour = behaviour_metrics(behaviour, "base")
        previous_run_id, previous_weights = None, weights if not checkpoints else None
        if item.previous is not None:
            previous_label = f"{label} vs {checkpoints[-1].step}"
            previous_run_id = runner.run(item.previous, PREVIOUS_ANALYSES, previous_label)
            previous_weights = _result(store, previous_run_id, WeightDiffResult)
        drift = WeightDrift(
            relative_change(weights), relative_change(previous_weights) if previous_weights else None,
            module_changes(weights), module_changes(previous_weights) if previous_weights else {},
            previous_run_id, item.previous_reason,
        )
        checkpoints.append(TrajectoryCheckpoint(
            item.spec.reference, item.spec.step, run_id, item.pair.trained.fingerprint, item.spec.step_source, drift,
            behaviour_metrics(behaviour), reward_hack_step(_result(store, run_id, RewardHackResult)),
            item.spec.logged,
        ))
    intervals = emergence(checkpoints)
    recommendation = recommend(checkpoints, below_band)
    result = TrajectoryResult(
        base=checkpoint_ref(checked[0].pair.base), checkpoints=tuple(checkpoints),
        emergence={name: (interval.at_step if interval else None) for name, interval in intervals.items()},
        recommended_checkpoint=recommendation.step, emergence_intervals=intervals, recommendation=recommendation,
        base_behaviour=base_behaviour, method=config.method, analyses=TRAJECTORY_ANALYSES,
    )
    # Linked to no run, like the base's answers: deleting a run clears it, and asking again rebuilds it
    # from the runs' stored results.
    store.put_result(None, key, TrajectoryResult.KIND, TrajectoryResult.SCHEMA_VERSION, to_jsonable(result))
    return result


def _result(store: RunStore, run_id: str, result_type: type):
    found = load_result(store, run_id, result_type)
    if found is None:
        raise AnalysisFailed(f"run {run_id} finished without its {result_type.KIND} result")
    return found


def runs_exist(store: RunStore, result: TrajectoryResult) -> bool:
    """Whether every run the stored trajectory opens is still in the store (one deleted: run it again)."""
    run_ids = [c.run_id for c in result.checkpoints] + [c.weights.previous_run_id for c in result.checkpoints
                                                        if c.weights.previous_run_id]
    try:
        for run_id in run_ids:
            store.get_run(run_id)
    except RunNotFound:
        return False
    return True
