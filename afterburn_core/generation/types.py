"""Prompts, suites and completions: what generation reads and writes (torch-free).

``Prompt`` and ``Suite`` come from the suite loaders; ``Completion`` is one
model's stored answer. The results that hold them (``GenerationsResult``,
``TokenKLResult``) live in ``generation/results.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SycophancyVariant = Literal["neutral", "wrong", "right"]
StopReason = Literal["eos", "length"]


@dataclass(frozen=True)
class Prompt:
    """One prompt of a suite. ``expected_answer`` is what a correct answer contains (None: open).

    Sycophancy probes come in triples sharing ``probe_id``: the ``neutral``
    question, the same question with the user asserting a ``wrong`` answer, and
    with the user asserting the ``right`` one (``asserted_answer`` holds what the
    user claimed). ``checks`` are code expectations (e.g. ``contains:def add``),
    evaluated as text checks, never executed.
    """

    suite: str
    prompt_id: str
    text: str
    category: str
    expected_answer: str | None = None
    tags: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    probe_id: str | None = None
    variant: SycophancyVariant | None = None
    asserted_answer: str | None = None


@dataclass(frozen=True)
class Suite:
    """A versioned prompt suite; ``content_hash`` (sha256 of its canonical JSON) enters cache keys."""

    name: str
    version: int
    description: str
    source: str
    content_hash: str
    prompts: tuple[Prompt, ...]


@dataclass(frozen=True)
class Completion:
    """One model's answer to one prompt, as generated.

    ``n_tokens`` counts generated tokens up to and including the first EOS
    (never padding, never what follows EOS); ``output_token_ids`` are exactly
    those tokens and ``token_logprobs`` their log-probabilities under the model
    that produced them (the sampling distribution before temperature/top-p).
    """

    text: str
    prompt_token_ids: tuple[int, ...]
    output_token_ids: tuple[int, ...]
    n_tokens: int
    stop_reason: StopReason
    token_logprobs: tuple[float, ...]
    seconds: float
