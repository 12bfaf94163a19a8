"""Layer localization on pairs whose answer is known.

A pair made by copying demo:base and overwriting ONE decoder block with demo:trained's differs from the
base in that block only, so the base with that block swapped in IS the trained model (share 1.0, exactly)
and the trained model with the base's block IS the base (reverse share 1.0); every other swap changes
nothing (0.0). Identical models have no gap: every share 0.0. A LoRA adapter toggled block by block must
give what the same adapter merged into a full checkpoint gives by streaming. The loaded models' weights
must be restored bitwise after every swap. All on the tiny demo models (CPU, seconds).
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pytest
import torch
from checkpoint_factories import edited_demo
from generation_helpers import CPU, prompts_of

from afterburn_core.checkpoints import resolve
from afterburn_core.checkpoints.architecture import architecture_map
from afterburn_core.checkpoints.tensors import TensorIndex
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AnalysisSkipped
from afterburn_core.generation.generator import GenerationSettings, generate
from afterburn_core.generation.loading import load_model
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.internals import localization
from afterburn_core.internals.localization import localize_blocks
from afterburn_core.internals.types import LayerLocalization, Localization
from afterburn_core.serde import from_jsonable, to_jsonable

DEMO = Path(__file__).resolve().parent.parent / "afterburn_core" / "demo"
TEXTS = ("What is 7 + 5?", "Name a primary colour.", "Write a haiku about rain.",
         "The capital of France is Berlin, right?", "Write a Python function that adds two numbers.")
#: Batches of 2 over 5 answers: the last batch is short, so batching and pooling are exercised.
CONFIG = AnalysisConfig(device="cpu", batch_size=2)
PLANTED_BLOCK = 2


def answers(trained) -> GenerationsResult:
    """The trained model's greedy answers to ``TEXTS`` as a run stores them (the base side is not read)."""
    prompts = prompts_of(TEXTS)
    loaded = load_model(trained, CPU)
    try:
        outputs = tuple(generate(loaded, prompts, GenerationSettings(max_new_tokens=24, batch_size=5), None))
    finally:
        loaded.release()
    return GenerationsResult((), tuple(prompts), outputs, outputs, 24, 0.0, 1.0, 0, 5, True, "cpu", 0.0, 0.0)


def localize(base, trained, generations=None, config=CONFIG) -> Localization:
    return localize_blocks(base, trained, generations or answers(trained), architecture_map(trained.description),
                           config, CPU)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """demo:base with block ``PLANTED_BLOCK`` overwritten by demo:trained's, as a real safetensors folder."""
    prefix = f"model.layers.{PLANTED_BLOCK}."

    def swap_block(base, trained):
        replaced = [name for name in base if name.startswith(prefix)]
        assert len(replaced) == 9
        return {**base, **{name: trained[name] for name in replaced}}

    return edited_demo(tmp_path_factory.mktemp("planted") / "model", swap_block)


def test_the_planted_block_closes_the_whole_gap_and_no_other_block_moves(planted, monkeypatch) -> None:
    loaded_models = []

    def keep(checkpoint, device, **options):
        loaded = load_model(checkpoint, device, **options)
        loaded_models.append((checkpoint, loaded.model))
        return loaded

    monkeypatch.setattr(localization, "load_model", keep)
    base_file = DEMO / "base" / "model.safetensors"
    before = sha256(base_file)
    result = localize(resolve("demo:base"), resolve(str(planted)))
    assert result.gap > 0
    assert [entry.layer for entry in result.blocks] == [0, 1, 2, 3]
    ranked = sorted(result.blocks, key=lambda entry: -entry.kl_recovered)
    assert ranked[0].layer == PLANTED_BLOCK
    # Swapping the planted block in makes the base the trained model itself, and out makes it the base.
    assert (ranked[0].kl_recovered, ranked[0].reverse_kl_recovered) == (1.0, 1.0)
    assert all((entry.kl_recovered, entry.reverse_kl_recovered) == (0.0, 0.0) for entry in ranked[1:])
    # Both models were restored bitwise after every swap, and the files were never written.
    assert [checkpoint.root for checkpoint, _ in loaded_models] == [str(planted), str(DEMO / "base")]
    for checkpoint, model in loaded_models:
        fresh = load_model(checkpoint, CPU).model.state_dict()
        assert all(torch.equal(tensor, fresh[name]) for name, tensor in model.state_dict().items())
    assert sha256(base_file) == before


def test_identical_models_give_every_share_zero() -> None:
    base = resolve("demo:base")
    assert localize(base, base) == Localization(0.0, tuple(LayerLocalization(layer, 0.0, 0.0) for layer in range(4)))


def test_a_change_outside_every_block_keeps_its_gap_while_every_share_is_zero(tmp_path) -> None:
    """Only the input embeddings moved: the models differ, yet no block swap closes or opens any of it."""
    name = "model.embed_tokens.weight"
    moved = edited_demo(tmp_path / "model", lambda base, _trained: {**base, name: base[name] * 1.5})
    result = localize(resolve("demo:base"), resolve(str(moved)))
    assert result.gap > 0
    assert result.blocks == tuple(LayerLocalization(layer, 0.0, 0.0) for layer in range(4))


def test_the_demo_pair_gives_a_finite_share_for_every_block_and_round_trips() -> None:
    result = localize(resolve("demo:base"), resolve("demo:trained"))
    assert [entry.layer for entry in result.blocks] == [0, 1, 2, 3]
    for entry in result.blocks:
        assert math.isfinite(entry.kl_recovered) and entry.kl_recovered <= 1.0
        assert math.isfinite(entry.reverse_kl_recovered) and entry.reverse_kl_recovered >= 0.0
    assert any(entry.kl_recovered != 0.0 for entry in result.blocks)
    assert from_jsonable(Localization, to_jsonable(result)) == result


def test_the_adapter_toggled_per_block_equals_the_adapter_merged_and_streamed(tmp_path) -> None:
    """Switching on block i's LoRA layers alone is the base with block i of the merged model."""
    adapter = resolve("demo:lora")
    merged_folder = tmp_path / "merged"
    merged = load_model(adapter, CPU).model.merge_and_unload()
    merged.save_pretrained(str(merged_folder))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        shutil.copy(DEMO / "base" / name, merged_folder / name)
    generations = answers(adapter)
    toggled = localize(resolve("demo:base"), adapter, generations)
    streamed = localize(resolve("demo:base"), resolve(str(merged_folder)), generations)
    assert [entry.layer for entry in toggled.blocks] == [0, 1, 2, 3]
    assert any(entry.kl_recovered > 0.1 for entry in toggled.blocks)
    assert toggled.gap == pytest.approx(streamed.gap, rel=1e-4)
    for by_toggle, by_stream in zip(toggled.blocks, streamed.blocks):
        assert by_toggle.kl_recovered == pytest.approx(by_stream.kl_recovered, abs=1e-4)
        assert by_toggle.reverse_kl_recovered == pytest.approx(by_stream.reverse_kl_recovered, abs=1e-4)


def test_a_reader_that_disagrees_with_the_loaded_model_skips_instead_of_swapping(planted, monkeypatch) -> None:
    read = TensorIndex.load
    bad = "layers.1.mlp.up_proj.weight"

    def off_by_one(index, name, rows=None):
        tensor = read(index, name, rows)
        return tensor + 1 if name == bad and index.checkpoint.root == str(planted) else tensor

    monkeypatch.setattr(TensorIndex, "load", off_by_one)
    with pytest.raises(AnalysisSkipped) as raised:
        localize(resolve("demo:base"), resolve(str(planted)))
    assert str(raised.value) == (
        f"layer localization reads {bad} from {planted} with other values than the loaded model holds, "
        "so a swapped block would not be that checkpoint's"
    )


def test_a_run_without_answers_is_skipped_with_its_reason() -> None:
    base = resolve("demo:base")
    empty = GenerationsResult((), (), (), (), 24, 0.0, 1.0, 0, 5, True, "cpu", 0.0, 0.0)
    with pytest.raises(AnalysisSkipped) as raised:
        localize(base, base, empty)
    assert str(raised.value) == (
        "layer localization teacher-forces the trained model's answers, and the run has none"
    )
