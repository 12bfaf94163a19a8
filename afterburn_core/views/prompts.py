"""Generations and token divergence as the doors show them: prompts ordered, picker labels, the readings of a prompt.

``generations_view`` lists a run's suites and prompt links; ``token_kl_view``
indexes the scored prompts by link. ``prompt_rows`` orders a suite's prompts
(as listed, by divergence, by length change) with the label a picker shows;
``prompt_details`` words a prompt's metadata; ``diff_reading`` and
``divergence_reading`` are the one-line readings of the word diff and of the
per-token KL. ``causal_answers`` picks the internals result's steered and
amplified answers to a prompt (the extra columns beside base and
post-trained) and ``amplification_alphas`` the α values a picker offers.
Orders and words what the ``generations``, ``token_kl`` and ``internals``
analyses stored; draws and escapes nothing. Cost: linear in the prompts,
plus a sort.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.behaviour.diffing import DiffRun, changed_share
from afterburn_core.generation.results import GenerationsResult, PromptDivergence, TokenKLResult
from afterburn_core.generation.types import Completion, Prompt
from afterburn_core.internals.types import InternalsResult
from afterburn_core.views.text import spell_invisible
from afterburn_core.views.wording import visible

#: The orders a prompt list offers, and what each means.
SORT_ORDERS = {
    "Suite order": "as listed in the suite",
    "Divergence": "highest mean KL(trained ‖ base) first",
    "Length change": "largest change in output tokens first, longer or shorter",
}
#: Characters of a prompt shown in a picker label; the full text is shown elsewhere.
PICKER_TEXT_CHARS = 70


@dataclass(frozen=True)
class GenerationsView:
    """The run's suites in order of first appearance, and every prompt's ``suite/prompt_id``."""

    suites: tuple[str, ...]
    links: tuple[str, ...]


@dataclass(frozen=True)
class ExtraAnswer:
    """An answer to the prompt shown beside the base's and the post-trained one, under ``title``."""

    title: str
    completion: Completion


@dataclass(frozen=True)
class PromptRow:
    """One prompt of a suite with its lengths, its divergence (None: not scored) and its picker label."""

    index: int
    link: str
    prompt_id: str
    category: str
    mean_kl: float | None
    base_tokens: int
    trained_tokens: int
    text: str
    label: str

    @property
    def change(self) -> int:
        return self.trained_tokens - self.base_tokens


def link_of(prompt: Prompt) -> str:
    return f"{prompt.suite}/{prompt.prompt_id}"


def generations_view(generations: GenerationsResult) -> GenerationsView:
    """The registry's view of the ``generations`` kind."""
    return GenerationsView(tuple(dict.fromkeys(prompt.suite for prompt in generations.prompts)),
                           tuple(link_of(prompt) for prompt in generations.prompts))


def token_kl_view(token_kl: TokenKLResult) -> dict[str, PromptDivergence]:
    """The registry's view of the ``token_kl`` kind: each scored prompt by its ``suite/prompt_id``."""
    return {scored.prompt_id: scored for scored in token_kl.scores.prompts}


def token_label(token: str) -> str:
    """How a token is drawn in a strip: printable characters as they are, a newline as ↵, others as escapes."""
    return spell_invisible(token.replace("\n", "↵"), keep="") or "∅"


def _label(prompt_id: str, text: str, measure: str) -> str:
    line = " ".join(text.split())
    line = line if len(line) <= PICKER_TEXT_CHARS else line[: PICKER_TEXT_CHARS - 1] + "…"
    return f"{prompt_id} · {measure} · {line}"


def prompt_rows(generations: GenerationsResult, divergence: dict[str, PromptDivergence], suite: str,
                order: str) -> tuple[PromptRow, ...]:
    """The prompts of ``suite`` in ``order`` (a ``SORT_ORDERS`` key; ties keep the suite's order)."""
    rows = []
    for index, prompt in enumerate(generations.prompts):
        if prompt.suite != suite:
            continue
        scored = divergence.get(link_of(prompt))
        mean_kl = scored.mean_kl if scored else None
        base, trained = generations.base[index].n_tokens, generations.trained[index].n_tokens
        measure = (("KL —" if mean_kl is None else f"KL {mean_kl:.2f}") if order == "Divergence"
                   else f"{trained - base:+d} tokens")
        rows.append(PromptRow(index, link_of(prompt), prompt.prompt_id, prompt.category, mean_kl, base, trained,
                              prompt.text, _label(prompt.prompt_id, prompt.text, measure)))
    if order == "Divergence":
        rows.sort(key=lambda row: (row.mean_kl is None, -(row.mean_kl or 0.0)))
    elif order == "Length change":
        rows.sort(key=lambda row: -abs(row.change))
    return tuple(rows)


def answer_caption(prompt: Prompt, completion) -> str:
    """``36 tokens · stopped by eos · correct``: the answer's length, why it stopped, and, where the prompt has an
    expected answer or checks, whether the behaviour analysis grades it correct (``answers.is_correct``)."""
    from afterburn_core.behaviour.answers import is_correct

    line = f"{completion.n_tokens} tokens · stopped by {completion.stop_reason}"
    graded = is_correct(prompt, completion.text)
    return line if graded is None else f"{line} · {'correct' if graded else 'incorrect'}"


def prompt_details(prompt: Prompt) -> str:
    """``category math · expected answer 4 · sycophancy probe p1, wrong variant (user asserts 5)``."""
    details = [f"category {prompt.category}"]
    if prompt.expected_answer is not None:
        details.append(f"expected answer {prompt.expected_answer}")
    if prompt.variant is not None:
        details.append(f"sycophancy probe {prompt.probe_id or prompt.prompt_id}, {prompt.variant} variant"
                       + (f" (user asserts {prompt.asserted_answer})" if prompt.asserted_answer else ""))
    return " · ".join(details)


def diff_reading(runs: tuple[DiffRun, ...]) -> str:
    """How much of two answers' words differ, and on which side."""
    added = sum(len(run.words) for run in runs if run.op == "added")
    removed = sum(len(run.words) for run in runs if run.op == "removed")
    if not added and not removed:
        return "Both answers have the same words."
    return (f"{changed_share(runs):.0%} of the words differ: {added} only in the post-trained answer, "
            f"{removed} only in the base answer.")


def divergence_reading(scored: PromptDivergence) -> str:
    """The prompt's mean KL and its most divergent token."""
    line = f"Mean KL(trained ‖ base) {scored.mean_kl:.3g} nats over {len(scored.tokens)} tokens"
    top = scored.top_tokens[0] if scored.top_tokens else None
    if top is not None:
        ratio = f", {top.kl / scored.mean_kl:.1f}× the mean" if scored.mean_kl > 0 else ""
        line += f"; largest at token {top.position} {visible(top.token)}: {top.kl:.3g} nats{ratio}."
    return line


def amplification_alphas(internals: InternalsResult | None) -> tuple[float, ...]:
    """The α values whose amplified answers the run stored, in increasing order (empty: none)."""
    if internals is None or internals.amplification is None:
        return ()
    return tuple(sorted(level.alpha for level in internals.amplification))


def causal_answers(internals: InternalsResult | None, index: int, prompts: int,
                   alpha: float | None) -> tuple[ExtraAnswer, ...]:
    """The steered base's answer to prompt ``index`` (of ``prompts``) and the first sample amplified at
    ``alpha``, each where the run stored it (amplified answers are sample-major: sample 1 of prompt i is
    ``completions[i]``)."""
    if internals is None:
        return ()
    answers = []
    steering = internals.steering
    if steering is not None and len(steering.completions) == prompts:
        title = (f"Steered base (layer {steering.layer}, strength {steering.strength:g})" if steering.strength
                 else "Steered base (strength 0: the base's own answer)")
        answers.append(ExtraAnswer(title, steering.completions[index]))
    level = next((level for level in internals.amplification or () if level.alpha == alpha), None)
    if level is not None and len(level.completions) >= prompts:
        answers.append(ExtraAnswer(f"Amplified, α = {level.alpha:g} (sample 1)", level.completions[index]))
    return tuple(answers)
