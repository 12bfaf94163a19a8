"""One checkpoint's numbers, read from its run's stored results: weight drift, behaviour, reward-hack verdict.

It reads what the weights, behaviour and reward-hack analyses stored and pools it; it derives nothing
from generations again. Weight drift is ‖ΔW‖/‖W‖ over every compared tensor, from the per (layer,
module) cells the weight diff stores (each cell holds √Σ‖ΔW‖² and √Σ‖W‖² of its tensors), so the whole
model's figure and each module type's are the same root-sum-square. Behaviour metrics are the
post-trained side's (or the base's) rates and means, pooled over the suites that measure them, each
suite weighted by its answers. Cost: arithmetic over the stored records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from afterburn_core.behaviour.formats import FORMAT_FEATURES
from afterburn_core.behaviour.types import BehaviourStats, NumericShift, ProportionShift, StrategyShift
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.trajectory.types import CompositeStep, DetectorStep, RewardHackStep
from afterburn_core.weights.types import LayerModuleCell, WeightDiffResult

#: The behaviour metrics a trajectory follows, in the order every view lists them: mean output tokens, the
#: rate of each format feature, the strategy entropy (bits), accuracy on prompts with an expected answer,
#: agreement with a user's wrong assertion (sycophancy probes), refusal rate on harmful prompts.
BEHAVIOUR_METRICS: tuple[str, ...] = (
    "output_tokens", *(f"format_{feature}" for feature in FORMAT_FEATURES), "strategy_entropy_bits",
    "accuracy", "wrong_agreement", "refusal_rate",
)


def relative_change(weights: WeightDiffResult) -> float:
    """‖ΔW‖/‖W‖ over every compared tensor of the pair (0 for identical weights)."""
    return _ratio(weights.layers)


def module_changes(weights: WeightDiffResult) -> dict[str, float]:
    """‖ΔW‖/‖W‖ per module type (``attention``, ``mlp``, ``embedding``, …) over every layer."""
    by_module: dict[str, list[LayerModuleCell]] = {}
    for cell in weights.layers:
        by_module.setdefault(cell.module, []).append(cell)
    return {module: _ratio(cells) for module, cells in sorted(by_module.items())}


def _ratio(cells: Iterable[LayerModuleCell]) -> float:
    cells = list(cells)
    base = math.sqrt(sum(cell.frob_norm_base**2 for cell in cells))
    delta = math.sqrt(sum(cell.frob_norm_delta**2 for cell in cells))
    return delta / base if base > 0 else 0.0


def behaviour_metrics(stats: BehaviourStats, side: str = "trained") -> dict[str, float | None]:
    """Every metric of ``BEHAVIOUR_METRICS`` for one side (``base`` / ``trained``), pooled over the suites;
    None where no suite measures it."""
    groups = [suite.overall for suite in stats.suites.values()]
    metrics: dict[str, float | None] = {"output_tokens": _pooled_mean([group.length for group in groups], side)}
    for feature in FORMAT_FEATURES:
        metrics[f"format_{feature}"] = _pooled_rate([group.format.get(feature) for group in groups], side)
    metrics["strategy_entropy_bits"] = _pooled_entropy([group.strategy for group in groups], side)
    metrics["accuracy"] = _pooled_rate([group.accuracy for group in groups], side)
    metrics["wrong_agreement"] = _pooled_rate(
        [group.sycophancy.wrong_agreement if group.sycophancy else None for group in groups], side)
    metrics["refusal_rate"] = _pooled_rate([group.refusal_rate for group in groups], side)
    return metrics


def _weighted(pairs: list[tuple[float, int]]) -> float | None:
    n = sum(weight for _, weight in pairs)
    return sum(value * weight for value, weight in pairs) / n if n else None


def _pooled_rate(shifts: list[ProportionShift | None], side: str) -> float | None:
    return _weighted([(getattr(shift, side), shift.n) for shift in shifts if shift is not None and shift.n])


def _pooled_mean(shifts: list[NumericShift], side: str) -> float | None:
    return _weighted([(getattr(shift, f"{side}_mean"), shift.n) for shift in shifts if shift.n])


def _pooled_entropy(shifts: list[StrategyShift], side: str) -> float | None:
    return _weighted([(getattr(shift, f"entropy_{side}"), shift.n) for shift in shifts if shift.n])


def reward_hack_step(result: RewardHackResult) -> RewardHackStep:
    """The composite and each detector's score, flag, band and availability."""
    return RewardHackStep(
        CompositeStep(result.composite.score, result.composite.band),
        {name: DetectorStep(detector.score, detector.flagged, detector.band, detector.available)
         for name, detector in result.detectors.items()},
    )
