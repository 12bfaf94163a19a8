"""The ``afterburn behaviour -o out.json`` document: generations, statistics and token KL in one.

It assembles three stored results (``generations``, ``behaviour``,
``token_kl``) into the contract of docs/behaviour-schema.md; it computes
nothing. The full per-token arrays stay in the store (the dashboard's Prompts
page reads them); the document keeps each prompt's mean KL and top tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from afterburn_core.behaviour.types import BehaviourStats, SuiteStats
from afterburn_core.generation.results import GenerationsResult, SuiteRef, TokenKLResult
from afterburn_core.generation.results import SuiteTokenDivergence, TokenDivergence
from afterburn_core.types import CheckpointRef
from afterburn_core.generation.types import Completion, StopReason


@dataclass(frozen=True)
class OutputSummary:
    """One model's answer as the document reports it."""

    text: str
    n_tokens: int
    stop_reason: StopReason


@dataclass(frozen=True)
class GenerationRecord:
    """One prompt and both answers."""

    suite: str
    prompt_id: str
    category: str
    prompt: str
    base: OutputSummary
    trained: OutputSummary


@dataclass(frozen=True)
class PromptKL:
    """One prompt's divergence: mean KL(trained ‖ base) per output token and where it peaks."""

    suite: str
    prompt_id: str
    mean_kl: float
    top_tokens: tuple[TokenDivergence, ...]


@dataclass(frozen=True)
class BehaviourReport:
    """The document ``afterburn behaviour -o`` writes (contract: docs/behaviour-schema.md)."""

    SCHEMA_VERSION: ClassVar[int] = 1

    base: CheckpointRef
    trained: CheckpointRef
    suite_versions: tuple[SuiteRef, ...]
    generations: tuple[GenerationRecord, ...]
    suites: dict[str, SuiteStats]
    token_kl: tuple[PromptKL, ...]
    token_kl_by_suite: dict[str, tuple[SuiteTokenDivergence, ...]]
    token_kl_skipped: str | None
    correction: str
    alpha: float
    n_tests: int
    max_new_tokens: int
    temperature: float
    chat_template: bool
    schema_version: int = field(default=SCHEMA_VERSION)
    #: The engine that generated the answers, with its version (``transformers 5.25.0``, ``vllm 0.32.0``).
    backend: str = "transformers"


def _summary(completion: Completion) -> OutputSummary:
    return OutputSummary(completion.text, completion.n_tokens, completion.stop_reason)


def build_behaviour_report(
    base: CheckpointRef,
    trained: CheckpointRef,
    generations: GenerationsResult,
    behaviour: BehaviourStats,
    token_kl: TokenKLResult | None,
    token_kl_skipped: str | None = None,
) -> BehaviourReport:
    """Assemble the document from the run's stored results."""
    records = tuple(
        GenerationRecord(p.suite, p.prompt_id, p.category, p.text, _summary(b), _summary(t))
        for p, b, t in zip(generations.prompts, generations.base, generations.trained)
    )
    kl = ()
    if token_kl is not None:
        kl = tuple(
            PromptKL(p.suite, p.prompt_id, d.mean_kl, d.top_tokens)
            for p, d in zip(generations.prompts, token_kl.scores.prompts)
        )
    return BehaviourReport(
        base=base,
        trained=trained,
        suite_versions=generations.suites,
        generations=records,
        suites=behaviour.suites,
        token_kl=kl,
        token_kl_by_suite=token_kl.suites if token_kl is not None else {},
        token_kl_skipped=token_kl_skipped,
        correction=behaviour.correction,
        alpha=behaviour.alpha,
        n_tests=behaviour.n_tests,
        max_new_tokens=generations.max_new_tokens,
        temperature=generations.temperature,
        chat_template=generations.chat_template,
        backend=generations.backend,
    )
