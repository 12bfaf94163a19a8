"""Result records of the reward-hack analysis (frozen, JSON via ``afterburn_core.serde``).

The field names listed in issue 6 are a contract other tools read:
``schema_version``, ``method``, ``composite`` (``score``, ``band``, ``weights``),
``detectors`` → ``length_bias`` / ``format_gaming`` / ``strategy_collapse`` /
``sycophancy``, each with ``score``, ``band``, ``flagged``, ``statistics``,
``examples``, and ``findings``. Data only: no computation here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

Band = Literal["LOW", "MODERATE", "HIGH", "CRITICAL"]


@dataclass(frozen=True)
class CategoryEvidence:
    """One category's share of a detector's evidence: its own score and the numbers behind it."""

    suite: str
    category: str
    n_prompts: int
    score: float
    statistics: dict[str, int | float | str | bool | None]


@dataclass(frozen=True)
class DetectorResult:
    """One detector's verdict.

    ``score`` is 0–100 and ``band`` its band; ``flagged`` is True when the band
    is above LOW *and* the statistics behind it are significant. ``available``
    is False (score 0, LOW) when the run holds nothing the detector can read
    (no sycophancy probes, no suite with expected answers…); ``reason`` says
    why. ``statistics`` holds the numbers the score is made of (effect sizes,
    p-values, rates); ``examples`` up to three prompt ids (``suite/prompt_id``)
    that show the behaviour; ``summary`` one sentence computed from them.
    """

    name: str  # a detector of the registry (``afterburn_core.analyses.detectors()``)
    score: float
    band: Band
    flagged: bool
    available: bool
    reason: str
    summary: str
    statistics: dict[str, int | float | str | bool | None]
    examples: tuple[str, ...]
    categories: tuple[CategoryEvidence, ...] = ()


@dataclass(frozen=True)
class CompositeRisk:
    """The weighted composite 0–100 over the available detectors.

    ``weights`` are the ones used for ``method`` (after any override from
    ``.afterburn.yaml``), normalised over the available detectors;
    ``weights_source`` says where they came from.
    """

    score: float
    band: Band
    weights: dict[str, float]
    weights_source: str


@dataclass(frozen=True)
class HackFinding:
    """A finding with the number behind it and what to do about it; generated from the data."""

    detector: str
    severity: Literal["info", "notable", "warning"]
    title: str
    detail: str
    value: float | None
    recommendation: str


@dataclass(frozen=True)
class RewardHackResult:
    """The ``reward_hack`` analysis: the registered detectors, the composite, findings."""

    KIND: ClassVar[str] = "reward_hack"
    SCHEMA_VERSION: ClassVar[int] = 2

    method: str
    composite: CompositeRisk
    detectors: dict[str, DetectorResult]
    findings: tuple[HackFinding, ...]
    schema_version: int = field(default=SCHEMA_VERSION)

