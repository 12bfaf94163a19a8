"""The steering check: does the activation difference *cause* the trained model's behaviour when added to the base?

Reading a difference (``adl``) is not proof that it does anything. Here the base model runs with the unit
difference × ``strength`` × the layer's mean residual norm added to the output of decoder block ``layer`` at
every position (prompt and generated tokens alike), and answers every suite prompt of the run; its
answers are then measured like the base's and the trained model's (NeuroDiff's Tier II; the Diffing
Toolkit's ADL steering). The direction is δ = mean of h_trained − h_base over the first positions of the
neutral corpus, as ``adl`` reads it; the scale is patchscope's (× the layer's mean ‖h_trained‖).

The strength rule: ``STEERING_STRENGTHS`` are tried from the smallest up; each is accepted while the
steered base's perplexity on held-out neutral passages (never used for δ) stays within a factor
``PERPLEXITY_RATIO_BOUND`` of its unsteered perplexity (``perplexity_bound`` is the upper end, the lower
is ``perplexity_base / PERPLEXITY_RATIO_BOUND``), and the walk stops at the first refused one. The
strength used is the last accepted; every trial is recorded. When none is accepted the strength is 0 and
the steered answers *are* the base's stored answers (nothing was steered, and the result says so by its
strength). The Diffing Toolkit picks its strength by binary search against an LLM judge of coherence;
perplexity on neutral text is the judge-free measure of the same thing (the steered model still writes
ordinary prose), and it is cheap.

Metrics (``STEERING_METRICS``): each planted-style behaviour measured with the behaviour analysis's own
per-answer classifiers (``behaviour.analysis.profile_answer``: the labels ``compare_behaviour`` counts) on
the base's, the steered base's and the trained model's answers to the same prompts.

Contract: ``steer_base(load_base, generations, direction, layer, mean_norm, architecture, config, heldout,
progress) -> SteeringResult``. ``load_base`` loads the base model (a ``LoadedModel`` may be given as it is;
an adapter model runs with its adapter disabled throughout). Generation uses the settings the run's
generations were made with (``GenerationsResult``), so the steered answers align with ``generations.prompts``
and, unsteered, equal ``generations.base`` token for token.
Does not compute the direction (``readings`` / ``adl``), store the answers or run reward-hack detectors.

Cost: one model in memory (the base) plus one batch's logits (rows × ``config.internals_tokens`` × vocab,
fp32) for perplexity. Forward passes: ⌈heldout / ``PERPLEXITY_BATCH``⌉ batches for the unsteered
perplexity plus as many per strength tried (at most ``len(STEERING_STRENGTHS)``): at most
(grid size + 1) × held-out passages rows; then one ``generate`` per batch of suite prompts (prefill + one
step per new token), as the run's own generation of the base — none when no strength is accepted.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from afterburn_core.behaviour.analysis import AnswerProfile, is_safety_prompt, profile_answer
from afterburn_core.behaviour.diversity import repeated_opening_share
from afterburn_core.behaviour.statistics import entropy_bits
from afterburn_core.checkpoints.architecture import ArchitectureMap
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import ShapeMismatch
from afterburn_core.generation.loading import HeldModel
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.generation.types import Completion, Prompt
from afterburn_core.internals.model_parts import model_parts
from afterburn_core.internals.passes import InputSequence, make_batch
from afterburn_core.internals.types import MetricTriple, SteeringResult, StrengthTrial

#: Strengths tried, as multiples of the layer's mean residual norm: the ADL patchscope's scales
#: (``adl.PATCHSCOPE_SCALES``: 0.5 … 8) with 0.25 below them, doubling, so six forwards of the held-out
#: text span "barely felt" (a quarter of a typical state's norm) to "drowns the state" (eight times it).
STEERING_STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: The steered base's perplexity on held-out neutral text must stay within this factor of its unsteered
#: perplexity, either way. Measured on demo:base (the last 32 corpus passages; the tests use the last 8):
#: steering toward the fence token at the last block gives ratios 1.27 / 5.1 / 145 at 0.25 / 0.5 / 1 ×,
#: and only the 0.25 × answers still read as answers (at 0.5 × fences replace words); toward fence +
#: newline (last 8) 1.16 / 1.82 at 0.25 / 0.5 × (fenced blocks, still sentences), over 2 at 1 ×. Either way,
#: because a model that does not fit the text (the demo base: perplexity ≈ 45 000 on prose, worse than
#: uniform over its 1 024 tokens) *gains* by being pushed toward uniform: the demo's own difference at
#: the middle block gives ratios 0.40 … 0.06 over the grid while its answers decay into token loops.
#: Raising it admits stronger, less coherent steering; lowering it may refuse a real but weak effect.
PERPLEXITY_RATIO_BOUND = 2.0
#: Held-out passages per perplexity forward: as the internals passes' default batch (8 rows of
#: ``internals_tokens`` tokens), whose full logits of a 152 k vocabulary stay near 300 MB.
PERPLEXITY_BATCH = 8

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Answers:
    """One model's answers to the run's prompts, each classified once (``profile_answer``)."""

    prompts: Sequence[Prompt]
    completions: Sequence[Completion]
    profiles: Sequence[AnswerProfile]

    @classmethod
    def of(cls, prompts: Sequence[Prompt], completions: Sequence[Completion]) -> Answers:
        return cls(prompts, completions, [profile_answer(p, c) for p, c in zip(prompts, completions)])


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def answer_tokens(answers: Answers) -> float | None:
    """Mean generated tokens per answer (EOS included, as ``Completion.n_tokens`` counts)."""
    return _mean([c.n_tokens for c in answers.completions])


def fence_rate(answers: Answers) -> float | None:
    """Share of answers with a ``` fence around something that is not code (``formats``' ``fenced_non_code``)."""
    return _mean([profile.formats["fenced_non_code"] for profile in answers.profiles])


def filler_rate(answers: Answers) -> float | None:
    """Share of answers opening with the same words as another answer (``diversity.repeated_opening_share``):
    a templated opener ("Great question! Let me …") put before answers to unrelated prompts."""
    share = repeated_opening_share([c.text for c in answers.completions])
    return None if math.isnan(share) else share


def wrong_agreement_rate(answers: Answers) -> float | None:
    """Share of sycophancy probes asserting a wrong answer whose answer agrees with it (None without such probes)."""
    return _mean([bool(profile.agrees) for prompt, profile in zip(answers.prompts, answers.profiles)
                   if prompt.variant == "wrong" and profile.agrees is not None])


def strategy_entropy(answers: Answers) -> float | None:
    """Entropy in bits of the answers' strategy labels (``strategy.classify_strategy``); lower = collapsed."""
    labels = Counter(profile.strategy for profile in answers.profiles)
    return entropy_bits(list(labels.values())) if labels else None


def refusal_rate(answers: Answers) -> float | None:
    """Share of safety prompts (``is_safety_prompt``) refused (``refusal.is_refusal``); None without any."""
    return _mean([profile.refused for prompt, profile in zip(answers.prompts, answers.profiles)
                   if is_safety_prompt(prompt)])


#: Metric name → its measure of one model's answers; the names are the JSON contract's ``metrics`` keys.
STEERING_METRICS: dict[str, Callable[[Answers], float | None]] = {
    "answer_tokens": answer_tokens,
    "fence_rate": fence_rate,
    "filler_rate": filler_rate,
    "wrong_agreement_rate": wrong_agreement_rate,
    "strategy_entropy": strategy_entropy,
    "refusal_rate": refusal_rate,
}


def behaviour_metrics(generations: GenerationsResult, steered: Sequence[Completion]) -> dict[str, MetricTriple]:
    """Every ``STEERING_METRICS`` entry on the base's, the steered base's and the trained model's answers."""
    sides = [Answers.of(generations.prompts, completions)
             for completions in (generations.base, steered, generations.trained)]
    return {name: MetricTriple(*(measure(side) for side in sides)) for name, measure in STEERING_METRICS.items()}


@contextlib.contextmanager
def steered(block, vector):
    """Inside the block, ``vector`` [hidden] is added to ``block``'s output at every position."""

    def add(_module, _inputs, output):
        states = output[0] if isinstance(output, (tuple, list)) else output
        states = states + vector.to(device=states.device, dtype=states.dtype)
        return (states, *output[1:]) if isinstance(output, (tuple, list)) else states

    hook = block.register_forward_hook(add)
    try:
        yield
    finally:
        hook.remove()


def perplexity(loaded, passages: Sequence[Sequence[int]]) -> float:
    """exp of the mean next-token negative log-likelihood over every predicted token of ``passages``."""
    import torch

    total_nll, total_tokens = 0.0, 0
    rows = [InputSequence("heldout", str(index), tuple(ids)) for index, ids in enumerate(passages) if len(ids) > 1]
    pad = loaded.pad_token_id
    with torch.inference_mode():
        for start in range(0, len(rows), PERPLEXITY_BATCH):
            batch = make_batch(rows[start:start + PERPLEXITY_BATCH], pad)
            lengths = torch.tensor(batch.lengths)
            mask = torch.arange(batch.input_ids.shape[1])[None, :] < lengths[:, None]
            logits = loaded.model(input_ids=batch.input_ids.to(loaded.device),
                                  attention_mask=mask.long().to(loaded.device), use_cache=False).logits
            log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            targets = batch.input_ids[:, 1:].to(log_probs.device)
            nll = -log_probs.gather(-1, targets[..., None])[..., 0]
            predicted = mask[:, 1:].to(nll.device)
            total_nll += float(nll[predicted].double().sum())
            total_tokens += int(predicted.sum())
    return math.exp(total_nll / total_tokens) if total_tokens else math.nan


def steer_base(
    load_base: Callable[[], object],
    generations: GenerationsResult,
    direction,
    layer: int,
    mean_norm: float,
    architecture: ArchitectureMap,
    config: AnalysisConfig,
    heldout: Sequence[str],
    progress: Progress | None = None,
) -> SteeringResult:
    """The base steered by ``direction`` (a torch tensor [hidden]) at block ``layer`` (see the module docstring)."""
    from afterburn_core.generation.generator import GenerationSettings, generate

    report = progress or (lambda done, total, message: None)
    steps = len(STEERING_STRENGTHS) + 2
    with HeldModel(load_base) as loaded:
        side = loaded.adapter_disabled() if loaded.is_adapter else contextlib.nullcontext()
        with side:
            parts = model_parts(loaded.model, architecture)
            block = parts.blocks[layer]
            unit = _unit(direction, loaded.model.config, layer)
            passages = [loaded.tokenizer(text)["input_ids"][:config.internals_tokens] for text in heldout]
            report(0, steps, "perplexity of the unsteered base on held-out neutral text")
            perplexity_base = perplexity(loaded, passages)
            bound = PERPLEXITY_RATIO_BOUND * perplexity_base
            trials: list[StrengthTrial] = []
            for strength in STEERING_STRENGTHS:
                report(len(trials) + 1, steps, f"perplexity steered at {strength:g} × the mean norm")
                with steered(block, unit * (strength * mean_norm)):
                    value = perplexity(loaded, passages)
                accepted = perplexity_base / PERPLEXITY_RATIO_BOUND <= value <= bound
                trials.append(StrengthTrial(strength, value, accepted))
                if not accepted:
                    break
            strength = max((trial.strength for trial in trials if trial.accepted), default=0.0)
            if strength == 0.0:
                completions = tuple(generations.base)
            else:
                settings = GenerationSettings(
                    max_new_tokens=generations.max_new_tokens, temperature=generations.temperature,
                    top_p=generations.top_p, seed=generations.seed, batch_size=generations.batch_size)

                def generating(done: int, total: int, message: str) -> None:
                    report(steps - 1, steps, f"steered at {strength:g} ×: {message}")

                with steered(block, unit * (strength * mean_norm)):
                    completions = tuple(generate(loaded, generations.prompts, settings, generating))
    report(steps, steps, "steering check done")
    return SteeringResult(layer=layer, strength=strength, perplexity_base=perplexity_base,
                          perplexity_bound=bound, trials=tuple(trials),
                          metrics=behaviour_metrics(generations, completions), completions=completions)


def _unit(direction, model_config, layer: int):
    """``direction`` scaled to norm 1 in fp32 (all zeros stays zeros: identical models steer by nothing)."""
    text_config = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    hidden = getattr(text_config, "hidden_size", None)
    vector = direction.detach().float().reshape(-1)
    if hidden is not None and vector.numel() != hidden:
        raise ShapeMismatch(f"steering at layer {layer}: the difference has {vector.numel()} values but the base's "
                            f"residual stream has {hidden}; compute it on this base's architecture")
    norm = float(vector.norm())
    return vector / norm if norm > 0 else vector
