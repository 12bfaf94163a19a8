"""The internals analysis on planted pairs: what the activation-difference lens reads, and what it must not.

The demo's post-trained model was taught filler around every answer and to agree with a user's wrong
answer; its control was fine-tuned on the base's own clean answers; its LoRA adapter adds a sign-off.
Read on the bundled neutral corpus (prose that holds none of those words), the mean activation
difference on the first five tokens must name the planted words among its top-20 promoted tokens at some
layer, the control must read fewer of them, the adapter's sign-off must surface through the toggle, and
two identical models must read exactly nothing. One result per pair, computed once per module with the
lens at every layer (about 3 s each on 2 cores).
"""

from __future__ import annotations

import re

import pytest

from afterburn_core.checkpoints import resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.demo.corpus import FILLER_CLOSE, FILLER_OPEN, LORA_SIGN_OFF, SYCOPHANTIC_OPENER
from afterburn_core.internals.analysis import analyze_internals
from afterburn_core.internals.corpus import neutral_corpus
from afterburn_core.internals.types import InternalsResult

CONFIG = AnalysisConfig(device="cpu", adl_all_layers=True)


def words(text: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Za-z]+", text)}


FILLER_WORDS = words(FILLER_OPEN) | words(FILLER_CLOSE)
AGREEMENT_WORDS = words(SYCOPHANTIC_OPENER) - {"re"}  # "You're right": you, right


def promoted_words(reading) -> set[str]:
    return {token.token.strip().lower() for token in reading.promoted}


def most_planted(result: InternalsResult, planted: set[str]) -> int:
    """The most planted words any one reading (a layer, one position or the average) holds in its top 20."""
    return max(len(promoted_words(reading) & planted) for reading in result.adl)


@pytest.fixture(scope="module")
def results() -> dict[str, InternalsResult]:
    return {name: analyze_internals(resolve("demo:base"), resolve(f"demo:{name}"), CONFIG)
            for name in ("trained", "control", "lora", "base")}


def test_the_planted_filler_and_agreement_words_are_promoted(results) -> None:
    trained = results["trained"]
    assert trained.adl_layers == (0, 1, 2, 3) and trained.method == "two_pass"
    best = max(trained.adl, key=lambda reading: len(promoted_words(reading) & FILLER_WORDS))
    assert len(promoted_words(best) & FILLER_WORDS) >= 8, [t.token for t in best.promoted]
    assert any(AGREEMENT_WORDS <= promoted_words(reading) for reading in trained.adl)
    # The averaged readings carry patchscope, and its persistent tokens hold the filler too.
    averaged = [reading for reading in trained.adl if len(reading.positions) == 5]
    assert len(averaged) == 4 and all(len(reading.patchscope) == 5 for reading in averaged)
    assert any(len({t.strip().lower() for t in reading.persistent} & FILLER_WORDS) >= 3 for reading in averaged)


def test_the_control_fine_tune_reads_fewer_planted_words(results) -> None:
    planted = FILLER_WORDS | AGREEMENT_WORDS
    assert most_planted(results["control"], planted) < most_planted(results["trained"], planted)
    assert most_planted(results["control"], planted) <= 2
    # The control moved the residual stream less than the planted fine-tune did, at every layer.
    for control, trained in zip(results["control"].layers, results["trained"].layers, strict=True):
        assert control.relative_norm < trained.relative_norm
        assert control.logit_lens_kl < trained.logit_lens_kl


def test_the_lora_sign_off_surfaces_through_the_adapter_toggle(results) -> None:
    lora = results["lora"]
    assert lora.method == "adapter_toggle" and lora.cost.scratch_bytes == 0
    sign_off = words(LORA_SIGN_OFF) - {"demo", "assistant"}  # "afterburn": the adapter's own word
    assert any(sign_off <= promoted_words(reading) for reading in lora.adl)


def test_identical_models_read_exactly_nothing(results) -> None:
    identical = results["base"]
    for entry in identical.input_sets:
        for stats in entry.layers:
            assert stats.relative_norm == 0.0 and stats.logit_lens_kl == 0.0 and stats.sink_relative_norm == 0.0
    assert all(not layer.gained and not layer.lost for layer in identical.layers)
    assert all(reading.norm == 0.0 and not reading.promoted and not reading.demoted and not reading.patchscope
               for reading in identical.adl)
    assert all(value == 0.0 for lens in identical.lens_prompts for row in lens.kl for value in row)


def test_every_input_and_layer_is_accounted_for(results) -> None:
    trained = results["trained"]
    corpus = neutral_corpus()
    readable = len(corpus.passages) - len(corpus.heldout)
    assert trained.corpus.passages == readable >= 290 and trained.corpus.sha256 == corpus.sha256
    assert not set(corpus.sample(0)) & set(corpus.heldout) and len(corpus.heldout) == 32
    [neutral] = [entry for entry in trained.input_sets if entry.input_set == "neutral"]
    assert neutral.sequences == readable
    assert [(s.relative_norm, s.logit_lens_kl) for s in neutral.layers] == [
        (layer.relative_norm, layer.logit_lens_kl) for layer in trained.layers]
    assert trained.cost.forward_passes == 2 * -(-readable // 8)  # two models × batches of 8
    assert trained.cost.scratch_bytes > 0 and trained.lens_prompts[0].input_id == "neutral/0"
    lens = trained.lens_prompts[0]
    assert len(lens.kl) == len(lens.base_top) == len(lens.trained_top) == 4
    assert all(len(row) == len(lens.tokens) for row in lens.kl)


def test_one_model_is_in_memory_at_a_time(monkeypatch) -> None:
    """The two-pass method loads the base, releases it, and only then loads the trained model."""
    from afterburn_core.generation import loading

    events: list[str] = []
    load, release = loading.load_model, loading.LoadedModel.release

    def loading_model(checkpoint, *args, **kwargs):
        events.append(f"load {checkpoint.reference}")
        return load(checkpoint, *args, **kwargs)

    def releasing(self):
        events.append(f"release {self.checkpoint.reference}")
        release(self)

    monkeypatch.setattr(loading, "load_model", loading_model)
    monkeypatch.setattr(loading.LoadedModel, "release", releasing)
    analyze_internals(resolve("demo:base"), resolve("demo:trained"), CONFIG.replace(internals_passages=8))
    assert events == ["load demo:base", "release demo:base", "load demo:trained", "release demo:trained"]


def test_the_corpus_content_is_part_of_the_cache_key(monkeypatch, tmp_path) -> None:
    from afterburn_core.internals import corpus
    from afterburn_core.stages import internals_key

    class Context:
        device = type("Device", (), {"type": "cpu"})()

    before = internals_key(Context())
    edited = tmp_path / "neutral_corpus.jsonl"
    edited.write_bytes(corpus.CORPUS_FILE.read_bytes().replace(b"The ", b"A ", 1))
    monkeypatch.setattr(corpus, "CORPUS_FILE", edited)
    corpus.neutral_corpus.cache_clear()
    try:
        assert internals_key(Context()) != before
    finally:
        corpus.neutral_corpus.cache_clear()
