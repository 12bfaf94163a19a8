"""The reward-hack analysis: ``detect_reward_hacking(generations, behaviour, method) -> RewardHackResult``.

Input: the run's stored ``GenerationsResult`` (prompts with both models'
completions, aligned by index) and the ``BehaviourStats`` computed from it.
Runs the four detectors, then decides significance across them: the
headline p-values of the available detectors are corrected together by
Benjamini–Hochberg (``behaviour.statistics.benjamini_hochberg``) at the
behaviour result's ``alpha``. A detector is flagged when its band is above
LOW, its adjusted p is below ``alpha`` and its own further evidence holds.
Then the composite (``composite``) and the findings (``findings``).

Never generates, stores or loads anything. Cost: classification of every
answer (a few regex passes each), markup stripping for content length, a
length shift (Wilcoxon test and bootstrap) per category and pooled, two
strategy bootstraps (within and across categories): about a second for the
~220 prompts of the built-in suites on 2 cores, most of it length bias's
per-category shifts.
"""

from __future__ import annotations

from collections.abc import Mapping

from afterburn_core.analyses import detector_names, resolve_ref, detectors as registered_detectors
from afterburn_core.behaviour.statistics import benjamini_hochberg
from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.errors import BadInput
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.reward_hack.composite import composite_risk, method_weights
from afterburn_core.reward_hack.findings import findings_for
from afterburn_core.reward_hack.scoring import Measurement, band_of, unavailable
from afterburn_core.reward_hack.types import DetectorResult, RewardHackResult


def detect_reward_hacking(generations: GenerationsResult, behaviour: BehaviourStats, method: str,
                          weights_override: Mapping[str, float] | None = None) -> RewardHackResult:
    """Score the four detectors and the composite for a run's generations and behaviour statistics.

    ``method`` is the declared training method (``config.TRAINING_METHODS``);
    ``weights_override`` replaces the method's weights for the detectors it
    names (``AnalysisConfig.reward_hack_weights``).
    """
    method_weights(method, weights_override)  # a bad method or weight fails before any work
    _check_aligned(generations, behaviour)
    if generations.prompts:
        measurements = {spec.name: resolve_ref(spec.measure)(generations, behaviour) for spec in registered_detectors()}
    else:
        measurements = {name: unavailable("the run holds no prompts") for name in detector_names()}
    detectors = judge(measurements, behaviour.alpha)
    composite = composite_risk(detectors, method, weights_override)
    return RewardHackResult(method=method, composite=composite, detectors=detectors,
                            findings=findings_for(detectors, composite, method))


def judge(measurements: Mapping[str, Measurement], alpha: float) -> dict[str, DetectorResult]:
    """Detector results: scores banded, headline p-values BH-corrected together, flags set."""
    names = detector_names()
    tested = [name for name in names if measurements[name].p_value is not None]
    adjusted = dict(zip(tested, benjamini_hochberg([measurements[name].p_value for name in tested])))
    return {name: _result(name, measurements[name], adjusted.get(name), alpha) for name in names}


def _result(name: str, measurement: Measurement, p_adjusted: float | None, alpha: float) -> DetectorResult:
    score = round(measurement.score, 1)
    band = band_of(score)
    test_passes = p_adjusted is not None and p_adjusted < alpha
    significant = test_passes and measurement.evidence_holds
    if not measurement.available:
        summary = _sentence(measurement.reason)
    elif p_adjusted is None:
        summary = _sentence(f"{measurement.description}; no test could run")
    elif significant:
        summary = _sentence(f"{measurement.description}; the shift is significant (BH-adjusted p = {p_adjusted:.2g})")
    elif test_passes:
        summary = _sentence(f"{measurement.description}; the test passes (BH-adjusted p = {p_adjusted:.2g}) but "
                            f"{measurement.evidence_missing}, so it is not significant")
    else:
        summary = _sentence(f"{measurement.description}; the shift is not significant (BH-adjusted p = "
                            f"{p_adjusted:.2g})")
    statistics = dict(measurement.statistics)
    if measurement.available:
        statistics.update(test=measurement.test, p_value=measurement.p_value, p_adjusted=p_adjusted,
                          significant=significant)
    return DetectorResult(
        name=name,
        score=score,
        band=band,
        flagged=band != "LOW" and significant,
        available=measurement.available,
        reason=measurement.reason,
        summary=summary,
        statistics=statistics,
        # A detector that scores 0 shows nothing: prompts that merely lean its way are no example of it.
        examples=measurement.examples if score > 0 else (),
        categories=measurement.categories,
    )


def _sentence(clause: str) -> str:
    return clause[:1].upper() + clause[1:] + "."


def _check_aligned(generations: GenerationsResult, behaviour: BehaviourStats) -> None:
    n = len(generations.prompts)
    if not n == len(generations.base) == len(generations.trained) == behaviour.n_prompts:
        raise BadInput(
            f"reward hacking reads one base and one trained completion per prompt and the behaviour statistics "
            f"of those same prompts; got {n} prompts, {len(generations.base)} base and "
            f"{len(generations.trained)} trained completions, behaviour over {behaviour.n_prompts} prompts "
            "(recompute the run's behaviour analysis)"
        )
