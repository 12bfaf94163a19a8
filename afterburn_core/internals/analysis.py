"""The ``internals`` analysis: activation differences, differential logit lens and activation-difference lens.

Contract: ``analyze_internals(base, trained, config, generations, progress, *, device) -> InternalsResult``.
Inputs: ``config.internals_passages`` passages of the bundled neutral corpus (``corpus``; 0 = all of it),
each cut to ``config.internals_tokens`` tokens, and every suite prompt of the run's generations as the
model saw it (chat template applied, the token ids the generations stored). Both models run on exactly
these tokens, one model in memory at a time (``passes``); ``readings`` reduces their block outputs on the
fly; with the trained model still loaded ``adl`` reads the mean difference on the neutral text's first
``config.adl_positions`` positions at the middle layer (every layer with ``config.adl_all_layers``).

The relevance column is the run's own data, no LLM judge: how much more often the trained model writes
a token than the base in the stored generations, per 1 000 generated tokens.

Cost (shown before launch by the New run page, ``cost.estimate_internals_cost``): one forward per batch of
``batch_size`` (default ``DEFAULT_BATCH``) inputs per model, 2 × ⌈(passages + prompts) / batch⌉ in all,
plus ``len(PATCHSCOPE_SCALES)`` forwards of a 20-token prompt per ADL layer; peak memory one
model + one lens head (vocab × hidden) + one batch's block outputs (layers × rows × positions × hidden)
and lens log-probs (rows × positions × vocab); a disk scratch of the base's block outputs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from afterburn_core.checkpoints.architecture import architecture_map
from afterburn_core.config import AnalysisConfig
from afterburn_core.internals.adl import IDENTITY_PROMPT, read_adl
from afterburn_core.internals.causal import run_causal
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.internals.passes import InputSequence, compare_pair, make_batch
from afterburn_core.internals.readings import NEUTRAL, Readings
from afterburn_core.internals.types import (
    CorpusRef,
    InputSetLayers,
    InternalsCost,
    InternalsResult,
    ModelRef,
    TokenScore,
)
from afterburn_core.types import ResolvedCheckpoint

#: Lens tokens kept per layer as gained and lost: a table a screen holds.
LENS_TOP = 10
#: Inputs per forward unless ``batch_size`` says: small enough that one batch's lens log-probs of a 152 k
#: vocabulary (rows × 64 positions × vocab × 4 bytes × 3 tensors) stay under ~1 GB.
DEFAULT_BATCH = 8
#: Suite prompts whose layer × position lens is kept: the first of each suite, up to this many suites.
LENS_SUITES = 6


def _relevance(generations) -> Callable[[int], float | None]:
    """Per 1 000 generated tokens: the trained model's rate of a token minus the base's (None without data)."""
    if generations is None:
        return lambda token_id: None
    trained = Counter(t for c in generations.trained for t in c.output_token_ids)
    base = Counter(t for c in generations.base for t in c.output_token_ids)
    trained_total, base_total = sum(trained.values()), sum(base.values())
    if not trained_total or not base_total:
        return lambda token_id: None
    return lambda token_id: 1000.0 * (trained[token_id] / trained_total - base[token_id] / base_total)


def _inputs(tokenizer, passages, max_tokens: int, generations) -> list[InputSequence]:
    sequences = []
    for index, passage in enumerate(passages):
        ids = tokenizer(passage)["input_ids"][:max_tokens]
        sequences.append(InputSequence(NEUTRAL, f"{NEUTRAL}/{index}", tuple(int(i) for i in ids)))
    if generations is not None:
        for prompt, completion in zip(generations.prompts, generations.trained):
            sequences.append(InputSequence(prompt.suite, f"{prompt.suite}/{prompt.prompt_id}",
                                           tuple(completion.prompt_token_ids)))
    return [sequence for sequence in sequences if sequence.token_ids]


def _lens_inputs(generations) -> dict[str, str]:
    """Input id → label of the inputs whose layer × position lens is kept: the first neutral passage and
    the first prompt of each suite."""
    chosen = {f"{NEUTRAL}/0": f"{NEUTRAL}/0"}
    if generations is not None:
        for prompt in generations.prompts:
            if prompt.suite not in {key.partition("/")[0] for key in chosen} and len(chosen) <= LENS_SUITES:
                key = f"{prompt.suite}/{prompt.prompt_id}"
                chosen[key] = key
    return chosen


def analyze_internals(
    base: ResolvedCheckpoint,
    trained: ResolvedCheckpoint,
    config: AnalysisConfig,
    generations=None,
    progress: Callable[[int, int, str], None] | None = None,
    *,
    device=None,
) -> InternalsResult:
    from afterburn_core.device import choose_device
    from afterburn_core.generation.loading import load_model

    started = time.perf_counter()
    device = device if device is not None else choose_device(config.device)
    report = progress or (lambda done, total, message: None)
    corpus = neutral_corpus()
    passages = corpus.sample(config.internals_passages)
    architecture = architecture_map(trained.description)
    readings = Readings(config.adl_positions, _lens_inputs(generations))
    relevance = _relevance(generations)
    found: dict = {}

    def make_batches(tokenizer):
        sequences = _inputs(tokenizer, passages, config.internals_tokens, generations)
        size = config.batch_size or DEFAULT_BATCH
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        found["tokenizer"] = tokenizer
        return [make_batch(sequences[start:start + size], pad) for start in range(0, len(sequences), size)]

    def token_text(token_id: int) -> str:
        return found["tokenizer"].decode([token_id])

    def token(token_id: int, score: float) -> TokenScore:
        return TokenScore(token_id, token_text(token_id), score, relevance(token_id))

    def finish(loaded, parts):
        report(1, 1, "reading the activation-difference lens and patchscope")
        layers = range(len(parts.blocks)) if config.adl_all_layers else (len(parts.blocks) // 2,)
        found["adl_layers"] = tuple(layers)
        found["adl"], found["patchscope_passes"] = read_adl(
            readings.adl_means(), readings.mean_norms(), layers, loaded, parts, token, token_text)

    def load(checkpoint):
        return lambda: load_model(checkpoint, device, trust_remote_code=config.trust_remote_code,
                                  max_memory=config.max_memory)

    if trained.kind == "adapter":
        adapter = load(trained)
        run = compare_pair(adapter, adapter, make_batches, readings, architecture, report, finish)
    else:
        run = compare_pair(load(base), load(trained), make_batches, readings, architecture, report, finish)
    causal = run_causal(base, trained, generations, readings, found["adl_layers"][len(found["adl_layers"]) // 2],
                        architecture, config, device, load, corpus.heldout, report)
    return InternalsResult(
        base=ModelRef(base.reference, base.fingerprint),
        trained=ModelRef(trained.reference, trained.fingerprint),
        method=run.method,
        num_layers=run.num_layers,
        layers=readings.layer_readings(token, LENS_TOP),
        input_sets=tuple(InputSetLayers(name, *readings.counts(name), readings.layer_stats(name))
                         for name in readings.input_sets()),
        adl=found["adl"],
        adl_layers=found["adl_layers"],
        patchscope_prompt=IDENTITY_PROMPT,
        lens_prompts=readings.prompt_lenses(token_text),
        corpus=CorpusRef(corpus.name, corpus.version, corpus.sha256, len(passages), config.internals_tokens),
        cost=InternalsCost(run.forward_passes, found["patchscope_passes"], run.scratch_bytes,
                           time.perf_counter() - started),
        steering=causal.steering,
        localization=None if causal.localization is None else causal.localization.blocks,
        localization_gap=None if causal.localization is None else causal.localization.gap,
        amplification=causal.amplification,
        skipped=causal.skipped,
    )
