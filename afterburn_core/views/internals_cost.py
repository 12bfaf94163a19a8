"""The internals analysis's causal parts' cost in words, as the New run page shows it before launch.

``causal_cost_lines(estimate) -> tuple[str, ...]``: one line per part of ``estimate.causal`` (``internals.cost``
computes them; a part whose setting is off has none), under the reading half's ``views.internals.cost_estimate_line``.
Generation-like parts state their steps per batch, not a total: the batch size is chosen from free memory at run
time. Cost: linear in the parts.
"""

from __future__ import annotations

from afterburn_core.internals.amplification import AMPLIFICATION_MEMORY_SHARE
from afterburn_core.internals.cost import CausalPartCost, InternalsCostEstimate
from afterburn_core.views.wording import plural, size


def _passes(count: int, kind: str) -> str:
    return f"{count} {kind} pass{'' if count == 1 else 'es'}"


def _steering(part: CausalPartCost) -> str:
    return (f"Steering: up to {_passes(part.forward_passes, 'perplexity forward')}, "
            f"then the steered base answers every prompt (up to {part.decode_steps_per_batch} decode steps per batch); "
            f"one model, peak memory ≈ {size(part.peak_bytes)}.")


def _localization(part: CausalPartCost) -> str:
    disk = (f"trained log-probs ≈ {size(part.disk_bytes)} on disk" if part.disk_bytes
            else "nothing on disk (the adapter is toggled)")
    return (f"Localization: {_passes(part.forward_passes, 'forward')} (2 + 2 × layers per batch of answers); "
            f"one model + one block, peak memory ≈ {size(part.peak_bytes)}; {disk}.")


def _amplification(part: CausalPartCost) -> str:
    steps = (f"Amplification: {plural(part.decodes, 'decode')} (α × samples), up to "
             f"{_passes(part.decode_steps_per_batch, 'forward')} per batch of prompts; ")
    if part.models == 1:
        return steps + f"one model (the adapter toggled) ≈ {size(part.peak_bytes)}."
    models = f"both models ≈ {size(part.peak_bytes)} in memory"
    if part.budget_bytes is None:
        return steps + f"{models}."
    budget = f"its budget of {size(part.budget_bytes)} ({AMPLIFICATION_MEMORY_SHARE:.0%} of the memory available)"
    if part.exceeds_budget:
        return steps + f"{models}, above {budget}: the run would skip it."
    return steps + f"{models}, within {budget}."


_WORDING = {"steering": _steering, "localization": _localization, "amplification": _amplification}


def causal_cost_lines(estimate: InternalsCostEstimate | None) -> tuple[str, ...]:
    """One sentence per causal part the estimate holds, in the order the analysis runs them."""
    if estimate is None:
        return ()
    return tuple(_WORDING[part.part](part) for part in estimate.causal)
