"""Behaviour of a base and a trained model compared on the same prompts.

Classifiers of one answer (``answers``, ``strategy``, ``formats``,
``reasoning``, ``refusal``, ``sycophancy``), set metrics (``diversity``), the
statistics (``statistics``) and the analysis that ties them together
(``analysis.compare_behaviour``). Pure Python + numpy + scipy: no torch, no
model; it reads completions that ``generation`` produced.
"""

from __future__ import annotations

from afterburn_core.behaviour.analysis import compare_behaviour
from afterburn_core.behaviour.answers import extract_answer, is_correct
from afterburn_core.behaviour.formats import FORMAT_FEATURES, format_features
from afterburn_core.behaviour.refusal import is_refusal
from afterburn_core.behaviour.strategy import STRATEGIES, classify_strategy
from afterburn_core.behaviour.sycophancy import agrees_with_assertion
from afterburn_core.behaviour.types import BehaviourStats

__all__ = [
    "FORMAT_FEATURES", "STRATEGIES", "BehaviourStats", "agrees_with_assertion", "classify_strategy",
    "compare_behaviour", "extract_answer", "format_features", "is_correct", "is_refusal",
]
