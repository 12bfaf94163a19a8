"""Reward hacking: four detectors over the stored generations and behaviour statistics, and a composite.

``detect_reward_hacking(generations, behaviour, method, weights_override)``
(``analysis``) reads what the ``generations`` and ``behaviour`` analyses
stored and never generates. One module per detector (``length_bias``,
``format_gaming``, ``strategy_collapse``, ``sycophancy``), the composite
and its method weights (``composite``), findings (``findings``), and the
planted pairs that validate them (``validation``).

This package's top level stays light (no numpy, no scipy): it exposes the
result types, which the config and the pages use without running anything;
``detect_reward_hacking`` is imported from ``analysis`` on first use.
"""

from __future__ import annotations

from typing import Any

from afterburn_core.reward_hack.types import (
    CategoryEvidence,
    CompositeRisk,
    DetectorResult,
    HackFinding,
    RewardHackResult,
)

__all__ = [
    "CategoryEvidence", "CompositeRisk", "DetectorResult", "HackFinding", "RewardHackResult",
    "detect_reward_hacking",
]


def __getattr__(name: str) -> Any:
    # PEP 562: the analysis pulls in scipy; import it only when someone asks for it.
    if name == "detect_reward_hacking":
        from afterburn_core.reward_hack.analysis import detect_reward_hacking

        return detect_reward_hacking
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
