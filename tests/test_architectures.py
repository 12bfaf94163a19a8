"""The weight diff on real transformers architectures: fused projections, Conv1D, offset norms, Falcon heads.

Each architecture of ``architecture_factories`` is built from its own config
class, saved by ``save_pretrained`` and run through the real engine
(``analyze_weights``: resolve, streamed pass, structure, diagnosis) against an
identical copy and a copy with planted edits. Per architecture: the planted q
head ranks first in the head view (q grid and combined grid), the planted o
head's input slice ranks first in its layer, the norm reads ×1.5 at its
effective scale, the moved rows are the top drifted tokens, no tensor is
module "other", fused tensors appear in the cells as their roles, and the
identical copy is clean; generation, token KL and behaviour run on the planted
pair (``architecture_criteria.evaluate``), and the README's table of
architectures holds the rows these very results give. The models are built and
run once per module (about 2 s per architecture on 2 CPU cores).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from architecture_criteria import (
    MAX_NEW_TOKENS,
    SUITE_PROMPTS,
    Evaluation,
    evaluate,
    head_argmax,
    packed_refusal_row,
    table_row,
)
from architecture_factories import (
    LAYERS,
    MOVED_ROWS,
    NORM_FACTOR,
    O_HEAD,
    O_LAYER,
    Q_HEAD,
    Q_LAYER,
    SPEC_NAMES,
    spec,
)
from safetensors.torch import save_file

from afterburn_core.checkpoints import normalize_tensor_name, resolve
from afterburn_core.checkpoints.architecture import architecture_map
from afterburn_core.checkpoints.description import describe_model
from afterburn_core.config import AnalysisConfig
from afterburn_core.types import ModelDescription
from afterburn_core.views.weights import weights_view
from afterburn_core.weights.analysis import analyze_weights
from afterburn_core.weights.types import WeightDiffResult


def analyze(base: Path, trained: Path) -> WeightDiffResult:
    return analyze_weights(resolve(str(base)), resolve(str(trained)), AnalysisConfig(device="cpu"))


REPO_ROOT = Path(__file__).resolve().parent.parent
#: The README table's GGUF row (scripts/architecture_table.py): the Llama pair converted to Q8_0.
GGUF_ROW = ("llama", "Q8_0")


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> dict[str, Evaluation]:
    """Every architecture built and run through every stage, once."""
    return {name: evaluate(spec(name), tmp_path_factory.mktemp(name)) for name in SPEC_NAMES}


@pytest.fixture(scope="module")
def gguf_evaluation(tmp_path_factory) -> Evaluation:
    name, quant = GGUF_ROW
    return evaluate(spec(name), tmp_path_factory.mktemp("gguf"), quant)


@pytest.fixture(scope="module")
def results(evaluations) -> dict[str, tuple[WeightDiffResult, WeightDiffResult]]:
    """(planted, identical) weight diffs of every architecture."""
    return {name: (found.planted, found.identical) for name, found in evaluations.items()}


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_planted_q_head_ranks_first_in_the_head_view(results, name: str) -> None:
    result = results[name][0]
    assert result.heads is not None and result.heads_reason is None
    assert result.heads.layers == (0, 1) and result.heads.num_heads == 4
    assert head_argmax(result.heads.per_projection["q"]) == (Q_LAYER, Q_HEAD)
    assert head_argmax(result.heads.scores) == (Q_LAYER, Q_HEAD)
    view = weights_view(result)
    assert view.heads["q"].reading.startswith(f"Head change (q) peaks at layer {Q_LAYER} head {Q_HEAD}:")
    q_row = np.array(result.heads.per_projection["q"][Q_LAYER])
    # The plant moved the head's query features by half their norm; the rest only by the 1e-3 noise.
    assert q_row[Q_HEAD] == pytest.approx(0.5, rel=0.05)
    assert np.delete(q_row, Q_HEAD).max() < 0.01


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_planted_output_head_is_sliced_on_the_input_axis(results, name: str) -> None:
    row = np.array(results[name][0].heads.per_projection["o"][O_LAYER])
    assert int(np.argmax(row)) == O_HEAD
    assert np.delete(row, O_HEAD).max() < 0.05 * row[O_HEAD]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_norm_reads_the_rescale_of_its_effective_scale(results, name: str) -> None:
    result = results[name][0]
    key = normalize_tensor_name(spec(name).norm)
    shift = next(shift for shift in result.norms if shift.name == key)
    assert shift.mean_ratio == pytest.approx(NORM_FACTOR, rel=1e-5)
    assert shift.relative_change == pytest.approx(NORM_FACTOR - 1, rel=1e-5)
    assert shift.offset == spec(name).offset_norm
    # The finding names the norm as its checkpoint stores it, as the tensor rows do.
    stored = next(t.display_name for t in result.tensors if t.name == key)
    finding = next(f for f in result.diagnosis.findings if f.title == f"Norm rescaled: {stored}")
    assert f"scaled ×{NORM_FACTOR:.3g} (entries agree within ±" in finding.detail
    assert finding.value == pytest.approx(NORM_FACTOR, rel=1e-5)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_moved_rows_are_the_top_drifted_tokens(results, name: str) -> None:
    drift = results[name][0].embeddings
    assert drift is not None and drift.tensor == normalize_tensor_name(spec(name).embed)
    assert [token.token_id for token in drift.top_tokens[:3]] == sorted(MOVED_ROWS, reverse=True)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_tensor_has_a_module_and_fused_ones_fill_their_roles_cells(results, name: str) -> None:
    result = results[name][0]
    assert [t.name for t in result.tensors if t.module == "other"] == []
    cells = {(cell.layer, cell.module) for cell in result.layers}
    for layer in range(2):
        assert {(layer, module) for module in ("q", "k", "v", "o", "up", "down", "norm")} <= cells
    assert not {module for _, module in cells} & {"qkv", "gate_up", "other"}
    fused = [t for t in result.tensors if t.module in ("qkv", "gate_up")]
    # The tensor row keeps the whole stored tensor, with its own spectrum.
    assert all(t.singular_values for t in fused if t.shape and len(t.shape) == 2)
    q_cells = {cell.layer: cell.relative_change for cell in result.layers if cell.module == "q"}
    assert q_cells[Q_LAYER] > 10 * q_cells[1 - Q_LAYER]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_identical_copy_is_clean(results, name: str) -> None:
    result = results[name][1]
    assert result.diagnosis.profile == "identical"
    assert all(score == 0 for row in result.heads.scores for score in row)
    assert all(shift.relative_change == 0 for shift in result.norms)
    assert result.embeddings.top_tokens == ()


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_generation_token_kl_and_behaviour_run_on_each(evaluations, name: str) -> None:
    found = evaluations[name]
    generations = found.generations
    assert len(generations.prompts) == SUITE_PROMPTS and generations.chat_template
    for completion in generations.base + generations.trained:
        assert completion.prompt_token_ids and 1 <= len(completion.output_token_ids) <= MAX_NEW_TOKENS
        assert len(completion.token_logprobs) == len(completion.output_token_ids)
    scores = found.token_kl.scores
    assert [len(prompt.kl_per_token) for prompt in scores.prompts] == [
        len(completion.output_token_ids) for completion in generations.trained]
    kl = np.concatenate([prompt.kl_per_token for prompt in scores.prompts])
    assert scores.n_positions == len(kl) and np.isfinite(kl).all() and (kl >= 0).all()
    # The planted edits (moved embedding rows, a rescaled norm, noise everywhere) move the distributions.
    assert scores.mean_kl > 0
    assert found.behaviour.n_prompts == SUITE_PROMPTS and set(found.behaviour.suites) == {"architectures"}


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_internals_reads_every_block_and_exactly_zero_from_the_identical_copy(evaluations, name: str) -> None:
    found = evaluations[name]
    planted, identical = found.internals, found.internals_identical
    assert [layer.layer for layer in planted.layers] == list(range(LAYERS)) and planted.method == "two_pass"
    assert {entry.input_set for entry in planted.input_sets} == {"neutral", "architectures"}
    assert all(layer.relative_norm > 0 and layer.logit_lens_kl > 0 for layer in planted.layers)
    assert planted.adl and planted.adl[-1].promoted and planted.adl[-1].patchscope
    for entry in identical.input_sets:
        assert all(stats.relative_norm == 0.0 and stats.logit_lens_kl == 0.0 for stats in entry.layers)
    assert all(not reading.promoted and not reading.demoted and reading.norm == 0.0 for reading in identical.adl)
    # The causal half runs on every architecture too: steering, a share per swapped block, every α.
    assert planted.skipped == {} and planted.steering is not None
    assert [block.layer for block in planted.localization] == list(range(LAYERS))
    assert [level.alpha for level in planted.amplification] == [0.0, 1.0, 2.0]
    assert all(block.kl_recovered == block.reverse_kl_recovered == 0.0 for block in identical.localization)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_lens_of_the_last_block_is_the_models_own_output(name: str) -> None:
    """The logit lens reads each layer through the parts the architecture map finds (final norm, Gemma's soft
    cap, OPT's projection, the unembedding): applied to the last block's output it must give the model's logits."""
    from transformers import AutoModelForCausalLM

    from afterburn_core.internals.model_parts import block_output, model_parts

    torch.manual_seed(0)
    config = spec(name).config()
    model = AutoModelForCausalLM.from_config(config).eval()
    parts = model_parts(model, architecture_map(describe_model(config.to_dict())))
    assert len(parts.blocks) == LAYERS
    captured = []
    hook = parts.blocks[-1].register_forward_hook(lambda module, inputs, output: captured.append(block_output(output)))
    ids = torch.randint(3, 120, (2, 9))
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
        lens = parts.head.logits(captured[0])
    hook.remove()
    assert torch.allclose(lens, logits, atol=1e-5)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_decoder_block_path_holds_every_block(name: str) -> None:
    item = spec(name)
    path = architecture_map(describe_model(item.config().to_dict())).decoder_path
    assert path is not None and item.q_weight.format(0).startswith(f"{path}.0.")


def test_a_gguf_q8_0_pair_passes_every_check_through_every_stage(gguf_evaluation) -> None:
    from architecture_criteria import COLUMNS, criteria

    assert [criterion.passed for criterion in criteria(gguf_evaluation)] == [True] * len(COLUMNS)
    assert gguf_evaluation.planted.tensors[0].stored_name.startswith(("blk.", "token_embd", "output"))


def test_the_readme_table_is_current(evaluations, gguf_evaluation, tmp_path: Path) -> None:
    from architecture_criteria import MOE_ARCHITECTURES, evaluate_moe, moe_table_row
    from moe_factories import moe_spec

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    rerun = "stale: run scripts/architecture_table.py --write docs/architectures.md --readme README.md"
    for name, found in {**evaluations, "gguf": gguf_evaluation}.items():
        assert table_row(found) in readme, f"{rerun} (the row of {name} differs)"
    assert packed_refusal_row(spec(GGUF_ROW[0]), tmp_path) in readme, f"{rerun} (the GPTQ row differs)"
    for name in MOE_ARCHITECTURES:
        for found in evaluate_moe(moe_spec(name), tmp_path / f"moe-{name}"):
            assert moe_table_row(found) in readme, f"{rerun} (the {found.layout} row of {name} differs)"


def test_the_map_reads_conv1d_offset_norms_and_block_paths_from_the_model_code() -> None:
    gpt2 = architecture_map(ModelDescription(model_type="gpt2"))
    assert gpt2.decoder_path == "transformer.h" and gpt2.reasons == ()
    assert gpt2.is_conv1d("transformer.h.0.attn.c_attn.weight") and gpt2.is_conv1d("transformer.h.0.mlp.c_proj.weight")
    assert not gpt2.is_conv1d("transformer.wte.weight")
    llama = architecture_map(ModelDescription(model_type="llama"))
    assert llama.decoder_path == "model.layers" and not llama.is_conv1d("layers.0.self_attn.q_proj.weight")
    assert not llama.is_offset_norm("layers.0.input_layernorm.weight")
    assert architecture_map(ModelDescription(model_type="gpt_neox")).decoder_path == "gpt_neox.layers"
    for model_type in ("gemma", "gemma2", "gemma3_text"):
        gemma = architecture_map(ModelDescription(model_type=model_type))
        assert gemma.is_offset_norm("layers.0.input_layernorm.weight") and gemma.is_offset_norm("norm.weight")
    # Qwen3-Next: its RMSNorm is offset, the gated norm inside linear attention multiplies by w.
    qwen = architecture_map(ModelDescription(model_type="qwen3_next"))
    assert qwen.is_offset_norm("layers.0.input_layernorm.weight") and qwen.is_offset_norm("norm.weight")
    assert qwen.is_offset_norm("layers.3.self_attn.q_norm.weight")
    assert not qwen.is_offset_norm("layers.0.linear_attn.norm.weight")


def test_head_geometry_under_each_configs_own_names() -> None:
    import transformers as tf

    def geometry(config) -> tuple:
        heads = architecture_map(describe_model(config.to_dict())).heads
        return heads.num_heads, heads.num_kv_heads, heads.head_dim

    assert geometry(tf.GPT2Config(n_embd=64, n_head=4)) == (4, 4, 16)
    assert geometry(tf.FalconConfig(hidden_size=64, num_attention_heads=4, multi_query=True)) == (4, 1, 16)
    assert geometry(tf.FalconConfig(hidden_size=64, num_attention_heads=4, multi_query=False)) == (4, 4, 16)
    assert geometry(tf.FalconConfig(hidden_size=64, num_attention_heads=4, new_decoder_architecture=True,
                                    num_kv_heads=2)) == (4, 2, 16)
    assert geometry(tf.Gemma2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                    head_dim=32)) == (4, 2, 32)


def test_fused_layouts_split_as_the_modeling_code_slices() -> None:
    neox = architecture_map(ModelDescription(model_type="gpt_neox", num_heads=2, num_kv_heads=2, head_dim=2))
    split = neox.split("layers.0.attention.query_key_value.weight", 12)
    assert {role: list(indices) for role, indices in split.items()} == {
        "q": [0, 1, 6, 7], "k": [2, 3, 8, 9], "v": [4, 5, 10, 11]}
    falcon = architecture_map(ModelDescription(model_type="falcon", num_heads=4, num_kv_heads=2, head_dim=1))
    split = falcon.split("h.0.self_attention.query_key_value.weight", 8)
    assert {role: list(indices) for role, indices in split.items()} == {"q": [0, 1, 4, 5], "k": [2, 6], "v": [3, 7]}
    phi = architecture_map(ModelDescription(model_type="phi3", num_heads=4, num_kv_heads=2, head_dim=1))
    split = phi.split("layers.0.self_attn.qkv_proj.weight", 8)
    assert {role: list(indices) for role, indices in split.items()} == {"q": [0, 1, 2, 3], "k": [4, 5], "v": [6, 7]}
    assert list(phi.split("layers.0.mlp.gate_up_proj.weight", 6)["up"]) == [3, 4, 5]
    assert phi.split("layers.0.self_attn.qkv_proj.weight", 9) is None


def test_unknown_architecture_gives_per_tensor_metrics_and_says_why(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    tensors = {f"blocks.{layer}.mixer.in_proj.weight": torch.randn(32, 16, generator=generator) for layer in range(2)}
    tensors["blocks.0.mixer.in_proj.weight"] = tensors["blocks.0.mixer.in_proj.weight"].contiguous()
    folders = []
    for side, scale in (("base", 0.0), ("trained", 0.1)):
        folder = tmp_path / side
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "mystery_ssm", "num_attention_heads": 4, '
                                            '"hidden_size": 16}')
        save_file({name: t + scale for name, t in tensors.items()}, str(folder / "model.safetensors"))
        folders.append(folder)
    result = analyze(*folders)
    assert [t.status for t in result.tensors] == ["changed", "changed"]
    assert all(t.singular_values for t in result.tensors)
    assert result.heads is None
    assert result.heads_reason == (
        "no tensor in the decoder stack is named as an attention projection "
        "(q / k / v / o, or a fused query_key_value / c_attn / qkv_proj)")
    assert weights_view(result).heads_note == f"No per-head scores: {result.heads_reason}."
    mystery = architecture_map(ModelDescription(model_type="mystery_ssm"))
    assert mystery.reasons == ("model_type 'mystery_ssm' is not an architecture this transformers knows",
                               "weights are read as stored (out × in) and norms as multiplicative")
