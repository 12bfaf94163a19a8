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
    """Both sides' answers; the base's come from the store when a run with the same base, suites and
    settings stored them (a trajectory's later checkpoints), and are stored for the next run otherwise."""
    from afterburn_core.generation.pipeline import generate_pair
    from afterburn_core.generation.results import BaseAnswers
    from afterburn_core.serde import to_jsonable
    from afterburn_core.store import stored_result

    key = base_answers_key(context)
    stored = stored_result(context.store, key, BaseAnswers)
    result = generate_pair(*context.pair(), context.config, progress.update, device=context.device,
                           base_answers=stored)
    if stored is None:
        # Linked to no run: no run shows them, and deleting any run clears them with the store's other
        # unused results (the next run then generates them once more).
        context.store.put_result(None, key, BaseAnswers.KIND, BaseAnswers.SCHEMA_VERSION,
                                 to_jsonable(BaseAnswers(result.base, result.chat_template)))
    return result


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

    from afterburn_core.generation.backends import backend_key, chosen_backend

    config = context.config
    # Numerics differ by device kind (CUDA runs bf16); sampled outputs are seeded per batch.
    key = {
        "suites": suites_key(config),
        "device": context.device.type,
        "batch_size": config.batch_size if config.temperature > 0 else None,
    }
    engine = backend_key(chosen_backend(config.backend, context.device, context.pair()), config)
    return key if engine is None else {**key, "backend": engine}


def base_answers_key(context: RunContext) -> str:
    """The key of the base's answers: the generations key's inputs over the base's fingerprint alone.

    For a LoRA adapter the base answers with the adapter switched off, through the adapter folder's tokenizer
    and chat template when it has its own, so the key holds those files' fingerprint too.
    """
    from afterburn_core.analyses import analysis
    from afterburn_core.generation.results import BaseAnswers, GenerationsResult
    from afterburn_core.store import cache_key

    base, trained = context.pair()
    inputs = {**context.config.subset(analysis("generations").config_fields), "extra": generation_key(context),
              "generations_schema": GenerationsResult.SCHEMA_VERSION}
    if trained.kind == "adapter":
        inputs["adapter_files"] = _adapter_tokenizer_fingerprint(trained)
    return cache_key(BaseAnswers.KIND, BaseAnswers.SCHEMA_VERSION, (base.fingerprint,), inputs)


def _adapter_tokenizer_fingerprint(adapter) -> str:
    """The fingerprint of an adapter folder's tokenizer, template and generation files (its own config aside)."""
    from pathlib import Path

    from afterburn_core.checkpoints.fingerprint import fingerprint_files, is_model_file

    root = Path(adapter.root)
    files = [path for path in root.iterdir()
             if path.is_file() and is_model_file(path.name) and str(path) != adapter.config_path]
    return fingerprint_files(root, files)


def device_key(context: RunContext) -> dict[str, Any]:
    return {"device": context.device.type}


def internals_key(context: RunContext) -> dict[str, Any]:
    from afterburn_core.internals.corpus import neutral_corpus

    corpus = neutral_corpus()
    return {"device": context.device.type, "corpus": [corpus.name, corpus.version, corpus.sha256]}
