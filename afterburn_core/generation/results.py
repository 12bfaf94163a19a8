"""The stored results of generation and token scoring (torch-free, so pages can load them).

``GenerationsResult`` holds every prompt of the run's suites with both
models' completions, generated once and read by every later analysis
(behaviour statistics, token KL, reward-hack detectors). ``TokenKLResult``
holds the teacher-forced divergence of the trained output under both models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from afterburn_core.generation.scorer import DivergenceScores, SuiteTokenDivergence
from afterburn_core.types import Completion, Prompt


@dataclass(frozen=True)
class SuiteRef:
    """Which version of a suite was run."""

    name: str
    version: int
    content_hash: str
    source: str
    n_prompts: int


@dataclass(frozen=True)
class GenerationsResult:
    """The ``generations`` analysis: ``prompts[i]`` answered by ``base[i]`` and ``trained[i]``."""

    KIND: ClassVar[str] = "generations"
    SCHEMA_VERSION: ClassVar[int] = 1

    suites: tuple[SuiteRef, ...]
    prompts: tuple[Prompt, ...]
    base: tuple[Completion, ...]
    trained: tuple[Completion, ...]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    batch_size: int  # the setting; 0 means each model picked its own by free memory
    chat_template: bool
    device: str
    seconds_base: float
    seconds_trained: float
    schema_version: int = field(default=SCHEMA_VERSION)


@dataclass(frozen=True)
class TokenKLResult:
    """The ``token_kl`` analysis: per prompt divergences, per suite the tokens that carry them."""

    KIND: ClassVar[str] = "token_kl"
    SCHEMA_VERSION: ClassVar[int] = 1

    scores: DivergenceScores
    suites: dict[str, tuple[SuiteTokenDivergence, ...]]
    schema_version: int = field(default=SCHEMA_VERSION)
