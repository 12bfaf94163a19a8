"""The stored results of generation and token scoring (torch-free, so pages can load them).

``GenerationsResult`` holds every prompt of the run's suites with both
models' completions, generated once and read by every later analysis
(behaviour statistics, token KL, reward-hack detectors). ``TokenKLResult``
holds the teacher-forced divergence of the trained output under both models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from afterburn_core.generation.types import Completion, Prompt


@dataclass(frozen=True)
class TokenDivergence:
    """One output token: where it sits, what it is, and how the two models see it."""

    position: int  # index in the output, 0 = the first generated token
    token_id: int
    token: str
    kl: float  # KL(trained ‖ base) of the next-token distributions at this position, nats
    logprob_base: float
    logprob_trained: float

    @property
    def logprob_shift(self) -> float:
        """log p_trained − log p_base of the chosen token (> 0: training made it likelier)."""
        return self.logprob_trained - self.logprob_base


@dataclass(frozen=True)
class PromptDivergence:
    """Per-token divergence of one prompt's trained output (all tuples have one entry per output token)."""

    prompt_id: str
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    kl_per_token: tuple[float, ...]
    logprob_base: tuple[float, ...]
    logprob_trained: tuple[float, ...]
    logprob_shift: tuple[float, ...]
    mean_kl: float
    top_tokens: tuple[TokenDivergence, ...]  # the TOP_N_TOKENS largest KLs, largest first
    kl_error_bound: float  # max over tokens of |stored-method KL − exact KL| (0.0 when exact)
    # Per output token: the two models' most likely next tokens differ (argmax of each fp32
    # distribution). Empty in results stored before it was recorded.
    top_token_differs: tuple[bool, ...] = ()


@dataclass(frozen=True)
class DivergenceScores:
    """All prompts' divergences and how they were computed.

    The summary over every scored output position of every prompt is what
    llama.cpp's ``llama-perplexity --kl-divergence`` prints for a quantized model
    against its base: mean, median and 99th-percentile KL (nats; numpy's linear
    percentile) and the share of positions whose top token differs (1 − its
    "Same top p"). None in results stored before they were recorded, and when
    no position was scored.
    """

    method: str
    prompts: tuple[PromptDivergence, ...]
    kl_error_bound: float  # max of the prompts' bounds
    n_positions: int | None = None
    mean_kl: float | None = None
    median_kl: float | None = None
    p99_kl: float | None = None
    top_token_disagreement: float | None = None


@dataclass(frozen=True)
class SuiteTokenDivergence:
    """A token that often carries high divergence across a suite."""

    token_id: int
    token: str
    n_prompts_in_top: int  # prompts whose top_tokens include it
    n_occurrences: int  # times it appears in all outputs
    mean_kl: float  # mean KL over all its occurrences
    max_kl: float


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
    #: The engine that made the answers and its version (``backends.backend_label``); results stored before
    #: engines were selectable were all made by transformers.
    backend: str = "transformers"


@dataclass(frozen=True)
class BaseAnswers:
    """The base model's completions of one set of suites under one set of generation settings.

    Stored apart from any pair (keyed by the base's fingerprint alone, ``stages.base_answers_key``), so a
    run comparing the same base with another checkpoint (the next step of a trajectory) reuses them
    instead of generating them again. Not an analysis kind: no run shows it.
    """

    KIND: ClassVar[str] = "base_answers"
    SCHEMA_VERSION: ClassVar[int] = 1

    completions: tuple[Completion, ...]
    chat_template: bool
    schema_version: int = field(default=SCHEMA_VERSION)


@dataclass(frozen=True)
class TokenKLResult:
    """The ``token_kl`` analysis: per prompt divergences, per suite the tokens that carry them."""

    KIND: ClassVar[str] = "token_kl"
    SCHEMA_VERSION: ClassVar[int] = 1

    scores: DivergenceScores
    suites: dict[str, tuple[SuiteTokenDivergence, ...]]
    schema_version: int = field(default=SCHEMA_VERSION)
