"""The causal half of the internals analysis: steering, layer localization, logit-difference amplification.

Reading a difference (``adl``) is not proof that it causes anything. This module runs, after the two
reading passes and each only when its setting is on and the run has generations to work on:

- ``steering.steer_base`` — the base steered by the middle layer's mean activation difference (the very δ
  the activation-difference lens reads there), measured with the behaviour classifiers and, here, the
  reward-hack detectors (``<detector>_score`` metrics: the detector's score of the steered base and of the
  trained model, each against the base's answers; the base's own is 0 by definition, so it is None);
- ``localization.localize_blocks`` — which decoder blocks carry the change, by swapping them;
- ``amplification.amplify`` — answers sampled from the amplified logit difference, read by the detectors.

A part that does not apply (an amplification budget above free memory, a checkpoint whose blocks cannot
be swapped) raises ``AnalysisSkipped``: that part is left null and its one-line reason kept in
``skipped``; the rest of the analysis stands. Contract: ``run_causal(...) -> CausalParts``. Cost: each
part's own, stated in its module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from afterburn_core.errors import AnalysisSkipped
from afterburn_core.internals.types import AmplificationLevel, Localization, MetricTriple, SteeringResult


@dataclass
class CausalParts:
    steering: SteeringResult | None = None
    localization: Localization | None = None
    amplification: tuple[AmplificationLevel, ...] | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def _with_detector_scores(steering: SteeringResult, generations, config) -> SteeringResult:
    """``steering`` with a ``<detector>_score`` metric per available detector (see the module docstring)."""
    from afterburn_core.internals.amplification import read_detectors

    steered = read_detectors(generations, steering.completions, 1, config)
    trained = read_detectors(generations, generations.trained, 1, config)
    scores = {f"{name}_score": MetricTriple(None, steered[name].score, trained[name].score)
              for name in steered if steered[name].available and trained[name].available}
    return replace(steering, metrics={**steering.metrics, **scores})


def run_causal(base, trained, generations, readings, layer: int, architecture, config, device,
               load: Callable, heldout, progress: Callable) -> CausalParts:
    """Every causal part the config asks for (``CausalParts``; nothing without generations)."""
    parts = CausalParts()
    if generations is None or not generations.prompts:
        return parts
    if config.steering:
        from afterburn_core.internals.steering import steer_base

        try:
            direction = readings.adl_means()[layer].mean(0).float()
            steering = steer_base(load(base), generations, direction, layer, float(readings.mean_norms()[layer]),
                                  architecture, config, heldout, progress)
            parts.steering = _with_detector_scores(steering, generations, config)
        except AnalysisSkipped as reason:
            parts.skipped["steering"] = str(reason)
    if config.localization:
        from afterburn_core.internals.localization import localize_blocks

        try:
            parts.localization = localize_blocks(base, trained, generations, architecture, config, device, progress)
        except AnalysisSkipped as reason:
            parts.skipped["localization"] = str(reason)
    if config.amplification:
        from afterburn_core.internals.amplification import amplify

        try:
            parts.amplification = amplify(base, trained, generations, config, device, progress)
        except AnalysisSkipped as reason:
            parts.skipped["amplification"] = str(reason)
    return parts
