"""Generate both models' answers to the run's suites, and score them token by token.

Cost: ``generate_pair`` loads one model at a time (base, released, then
trained; for a LoRA adapter one base with the adapter toggled) in the engine ``config.backend`` names
(``backends``: transformers or vLLM) and runs every
prompt once per model, batched; given the base's stored answers
(``BaseAnswers``), it generates the trained side only. ``score_pair`` teacher-forces both models on
(prompt + trained output): two forward passes per prompt, one model in memory
at a time (``scorer``'s two-pass method; the adapter toggle for LoRA). Both
report progress per batch and can be cancelled from the progress callback.
It leaves the statistics to ``afterburn_core.behaviour``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.results import BaseAnswers, GenerationsResult, SuiteRef, TokenKLResult
from afterburn_core.generation.suites import load_suites
from afterburn_core.types import ResolvedCheckpoint

Progress = Callable[[int, int, str], None]


def _settings(config: AnalysisConfig):
    from afterburn_core.generation.generator import GenerationSettings

    return GenerationSettings(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p,
        seed=config.seed, batch_size=config.batch_size,
    )


def suites_key(config: AnalysisConfig) -> list[dict]:
    """What of the suites enters a cache key: name, version and content hash of each."""
    from afterburn_core.generation.suites import suites_cache_key

    return suites_cache_key(load_suites(config.suites))


def generate_pair(
    base: ResolvedCheckpoint, trained: ResolvedCheckpoint, config: AnalysisConfig, progress: Progress | None = None,
    *, device=None, base_answers: BaseAnswers | None = None,
) -> GenerationsResult:
    """Every prompt of ``config.suites`` answered by both models, one model in memory at a time.

    ``device``: the ``torch.device`` the run chose (None: chosen here from ``config.device``).
    ``base_answers``: the base's completions of these suites under these settings, stored by an earlier
    run (the caller keys them); the base is then not loaded and its time here is 0.
    The engine is ``config.backend``'s (``backends.chosen_backend``); both sides go through the same one.
    """
    from afterburn_core.device import choose_device
    from afterburn_core.generation.backends import backend_label, chosen_backend, held_engine

    suites = load_suites(config.suites)
    prompts = [prompt for suite in suites for prompt in suite.prompts]
    settings = _settings(config)
    device = device if device is not None else choose_device(config.device)
    backend = chosen_backend(config.backend, device, (base, trained))
    total = 2 * len(prompts)

    def report(offset: int, label: str) -> Progress:
        def update(done: int, _total: int, message: str) -> None:
            if progress is not None:
                progress(offset + done, total, f"{label}: {message}")
        return update

    def answer(engine, side: str, *, adapter: bool):
        """(completions, seconds, chat template used) of one side from ``engine``."""
        started = time.perf_counter()
        outputs = engine.generate(prompts, settings, report(0 if side == "base" else len(prompts), side),
                                  adapter=adapter)
        return outputs, time.perf_counter() - started, engine.chat_template

    if base_answers is not None:
        base_outputs, seconds_base, chat_template = base_answers.completions, 0.0, base_answers.chat_template
        report(0, "base")(len(prompts), len(prompts), "answers reused from the store")
    if trained.kind == "adapter":
        # One engine for both sides: the adapter's base with the adapter switched off, then on.
        with held_engine(backend, trained, device, config) as engine:
            if base_answers is None:
                base_outputs, seconds_base, chat_template = answer(engine, "base", adapter=False)
            trained_outputs, seconds_trained, chat_template = answer(engine, "trained", adapter=True)
    else:
        if base_answers is None:
            with held_engine(backend, base, device, config) as engine:
                base_outputs, seconds_base, chat_template = answer(engine, "base", adapter=False)
        if trained.fingerprint == base.fingerprint:
            # The same files: decoding is deterministic (greedy, or sampling seeded per batch), so a second
            # pass would reproduce these answers token for token. Reuse them instead of paying twice.
            trained_outputs, seconds_trained = base_outputs, 0.0
            report(len(prompts), "trained")(len(prompts), len(prompts), "same files as the base: answers reused")
        else:
            with held_engine(backend, trained, device, config) as engine:
                trained_outputs, seconds_trained, _ = answer(engine, "trained", adapter=True)
    return GenerationsResult(
        suites=tuple(
            SuiteRef(suite.name, suite.version, suite.content_hash, suite.source, len(suite.prompts)) for suite in suites
        ),
        prompts=tuple(prompts),
        base=tuple(base_outputs),
        trained=tuple(trained_outputs),
        max_new_tokens=settings.max_new_tokens,
        temperature=float(settings.temperature),
        top_p=float(settings.top_p),
        seed=settings.seed,
        batch_size=settings.batch_size,
        chat_template=chat_template,
        device=str(device),
        seconds_base=seconds_base,
        seconds_trained=seconds_trained,
        backend=backend_label(backend),
    )


def score_pair(
    base: ResolvedCheckpoint,
    trained: ResolvedCheckpoint,
    generations: GenerationsResult,
    config: AnalysisConfig,
    progress: Progress | None = None,
    *,
    device=None,
) -> TokenKLResult:
    """KL(trained ‖ base) per output token of the trained model, and the tokens carrying it per suite.

    ``device``: the ``torch.device`` the run chose (None: chosen here from ``config.device``).
    """
    from afterburn_core.device import choose_device
    from afterburn_core.generation.loading import load_model
    from afterburn_core.generation.scorer import aggregate_suite, score_divergence

    device = device if device is not None else choose_device(config.device)
    prompt_ids = [f"{prompt.suite}/{prompt.prompt_id}" for prompt in generations.prompts]
    inputs = dict(
        prompt_token_ids=[c.prompt_token_ids for c in generations.trained],
        output_token_ids=[c.output_token_ids for c in generations.trained],
        prompt_ids=prompt_ids,
        progress=progress,
    )
    if trained.kind == "adapter":
        loaded = load_model(trained, device, trust_remote_code=config.trust_remote_code, max_memory=config.max_memory)
        try:
            scores = score_divergence(loaded, loaded, **inputs)
        finally:
            loaded.release()
    else:
        scores = score_divergence(
            lambda: load_model(base, device, trust_remote_code=config.trust_remote_code, max_memory=config.max_memory),
            lambda: load_model(trained, device, trust_remote_code=config.trust_remote_code, max_memory=config.max_memory),
            **inputs,
        )
    by_suite: dict[str, list] = {}
    for prompt, divergence in zip(generations.prompts, scores.prompts):
        by_suite.setdefault(prompt.suite, []).append(divergence)
    return TokenKLResult(scores=scores, suites={suite: aggregate_suite(items) for suite, items in by_suite.items()})
