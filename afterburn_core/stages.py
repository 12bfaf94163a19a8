"""The stage functions of the built-in analysis kinds: each reads a run's context and calls its package.

One thin adapter per kind declared in ``afterburn_core.analyses``: it takes the
resolved pair, the config, the run's device and the results of the kinds it
depends on from the ``RunContext``, reports progress, and returns the typed
result; the runner stores it. The work itself lives in each package, imported
here only when the stage runs (so a run that reads only the weights never
imports the generator). Also the parts of cache keys that are not config
fields.
"""

from __future__ import annotations

from typing import Any

from afterburn_core.analyses import RunContext
from afterburn_core.errors import AnalysisSkipped
from afterburn_core.progress import StageReporter


def inventory(context: RunContext, progress: StageReporter):
    from afterburn_core.checkpoints.pairing import build_inventory

    progress.update(0, 1, "reading tensor headers")
    return build_inventory(*context.pair())


def weights(context: RunContext, progress: StageReporter):
    from afterburn_core.weights.analysis import analyze_weights

    return analyze_weights(*context.pair(), context.config, progress.update)


def generations(context: RunContext, progress: StageReporter):
    from afterburn_core.generation.pipeline import generate_pair

    return generate_pair(*context.pair(), context.config, progress.update, device=context.device)


def _require_one_vocabulary(base, trained, subject: str) -> None:
    from afterburn_core.checkpoints import summarize

    base_vocab, trained_vocab = summarize(base).vocab_size, summarize(trained).vocab_size
    if base_vocab != trained_vocab:
        raise AnalysisSkipped(
            f"{subject} needs one vocabulary; the base has {base_vocab} tokens, the trained model {trained_vocab}"
        )


def token_kl(context: RunContext, progress: StageReporter):
    from afterburn_core.generation.pipeline import score_pair

    base, trained = context.pair()
    _require_one_vocabulary(base, trained, "token-level KL")
    return score_pair(base, trained, context.result("generations"), context.config, progress.update,
                      device=context.device)


def behaviour(context: RunContext, progress: StageReporter):
    from afterburn_core.behaviour.analysis import compare_behaviour

    generated = context.result("generations")
    progress.update(0, 1, "classifying outputs and testing shifts")
    return compare_behaviour(generated.prompts, generated.base, generated.trained, seed=context.config.seed)


def internals(context: RunContext, progress: StageReporter):
    from afterburn_core.internals.analysis import analyze_internals

    base, trained = context.pair()
    _require_one_vocabulary(base, trained, "the internals analysis (both models' lenses)")
    return analyze_internals(base, trained, context.config, context.result("generations"), progress.update,
                             device=context.device)


def reward_hack(context: RunContext, progress: StageReporter):
    from afterburn_core.reward_hack import detect_reward_hacking

    progress.update(0, 1, "scoring the reward-hack detectors")
    return detect_reward_hacking(context.result("generations"), context.result("behaviour"), context.config.method,
                                 context.config.reward_hack_weights or None)


def generation_key(context: RunContext) -> dict[str, Any]:
    from afterburn_core.generation.pipeline import suites_key

    config = context.config
    # Numerics differ by device kind (CUDA runs bf16); sampled outputs are seeded per batch.
    return {
        "suites": suites_key(config),
        "device": context.device.type,
        "batch_size": config.batch_size if config.temperature > 0 else None,
    }


def device_key(context: RunContext) -> dict[str, Any]:
    return {"device": context.device.type}


def internals_key(context: RunContext) -> dict[str, Any]:
    from afterburn_core.internals.corpus import neutral_corpus

    corpus = neutral_corpus()
    return {"device": context.device.type, "corpus": [corpus.name, corpus.version, corpus.sha256]}
