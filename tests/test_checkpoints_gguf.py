"""GGUF checkpoints in the weight diff, and quantized safetensors refused, on real files.

GGUF files are written with gguf's own writer from the demo models (``gguf_factories``);
quantized with ``gguf.quants.quantize`` (Q8_0). gguf-py dequantizes the K-quants but
cannot write them, so Q4_K / Q5_K / Q6_K tensors are built as raw blocks of the
format (random codes, a sane fp16 scale) and read back against ``gguf.quants.dequantize``.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from cli_helpers import afterburn
from gguf_factories import TINY_GPT2, write_gpt2_gguf, write_llama_gguf
from safetensors.numpy import save_file
from safetensors.torch import load_file

from afterburn_core.checkpoints import open_tensor_index, resolve
from afterburn_core.checkpoints.gguf import GgufTensors
from afterburn_core.errors import BadCheckpoint
from afterburn_core.weights.engine import compare_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO = REPO_ROOT / "afterburn_core" / "demo"
#: Q8_0 keeps 8 bits per value with one fp16 scale per 32: the relative error of a Gaussian-ish
#: matrix is ~0.5 % (measured 0.2-0.6 % on the demo tensors); 2 % leaves room and still fails
#: a tensor read with the wrong permutation or scale (relative error ~1.4).
Q8_0_MAX_RELATIVE_ERROR = 0.02
#: Byte offsets of the fp16 super-block scale(s) in each K-quant block (ggml-common.h block_q*_K).
K_QUANT_SCALE_OFFSETS = {"Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    built = {}
    for side in ("base", "trained"):
        for quant in ("F32", "Q8_0"):
            folder = root / f"{side}-{quant}"
            folder.mkdir()
            built[side, quant] = write_llama_gguf(DEMO / side, folder / f"{side}-{quant}.gguf", quant)
    return built


def _records(base, trained):
    return {record.name: record for record in compare_weights(resolve(str(base)), resolve(str(trained)), device="cpu").tensors}


@pytest.fixture(scope="module")
def hf_pair():
    return _records(DEMO / "base", DEMO / "trained")


def test_gguf_f32_copy_diffs_identical_to_its_safetensors_source_under_the_same_names(files, hf_pair):
    records = _records(DEMO / "base", files["base", "F32"])
    assert set(records) == set(hf_pair)
    assert all(record.frob_norm_delta == 0.0 and record.status == "unchanged" for record in records.values())
    q_proj = records["layers.0.self_attn.q_proj.weight"]
    assert (q_proj.stored_name, q_proj.base_stored_name) == ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight")


def test_gguf_q8_0_copy_shows_small_nonzero_error_on_every_quantized_tensor(files):
    records = _records(DEMO / "base", files["base", "Q8_0"])
    matrices = [record for record in records.values() if len(record.shape) == 2]
    assert len(matrices) == 4 * 7 + 2
    for record in matrices:
        assert record.dtype_trained == "Q8_0"
        assert 0.0 < record.relative_change < Q8_0_MAX_RELATIVE_ERROR, record.name
    assert all(record.frob_norm_delta == 0.0 for record in records.values() if len(record.shape) == 1)


def test_a_gguf_pair_diffs_like_the_safetensors_pair(files, hf_pair):
    records = _records(files["base", "F32"], files["trained", "Q8_0"])
    assert set(records) == set(hf_pair)
    for name, record in records.items():
        expected = hf_pair[name].relative_change
        assert record.relative_change == pytest.approx(expected, abs=Q8_0_MAX_RELATIVE_ERROR), name
    assert records["layers.0.self_attn.q_proj.weight"].stored_name == "blk.0.attn_q.weight"


def test_tensors_read_in_hf_layout_and_row_slices_equal_the_whole(files):
    source = load_file(str(DEMO / "base" / "model.safetensors"))
    with open_tensor_index(resolve(str(files["base", "F32"]))) as index:
        assert index.parameters_by_dtype == {"float32": sum(tensor.numel() for tensor in source.values())}
        for entry in index.entries():
            whole = index.load(entry.name)
            assert torch.equal(whole, source[f"model.{entry.name}" if entry.name != "lm_head.weight" else entry.name])
            if whole.ndim == 2:  # q: 4 heads of 32 rows; 5..47 crosses a head boundary
                assert torch.equal(index.load(entry.name, rows=(5, 47)), whole[5:47])


def _k_quant_blocks(quant: str, rows: int, cols: int, seed: int) -> np.ndarray:
    block_size, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[quant]]
    blocks = np.random.default_rng(seed).integers(0, 256, size=(rows, cols // block_size, type_size), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
    for offset in K_QUANT_SCALE_OFFSETS[quant]:
        blocks[:, :, offset : offset + 2] = scale
    return blocks.reshape(rows, -1)


def test_k_quant_tensors_dequantize_block_by_block(tmp_path):
    """A 256-wide Llama whose MLP is stored as Q4_K / Q5_K / Q6_K raw blocks."""
    from transformers import LlamaConfig, LlamaForCausalLM

    source = tmp_path / "wide"
    config = LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=1024, max_position_embeddings=64)
    LlamaForCausalLM(config).save_pretrained(source)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(DEMO / "base" / name, source / name)
    raw = {
        "model.layers.0.mlp.gate_proj.weight": (_k_quant_blocks("Q4_K", 512, 256, 0), "Q4_K"),
        "model.layers.0.mlp.up_proj.weight": (_k_quant_blocks("Q5_K", 512, 256, 1), "Q5_K"),
        "model.layers.0.mlp.down_proj.weight": (_k_quant_blocks("Q6_K", 256, 512, 2), "Q6_K"),
    }
    path = write_llama_gguf(source, tmp_path / "wide.gguf", "F16", raw=raw)
    tensors = GgufTensors(path)
    by_hf = {hf: (name, dtype) for name, hf, _, dtype, _ in tensors.entries()}
    for hf_name, (blocks, quant) in raw.items():
        name, dtype = by_hf[hf_name]
        expected = torch.from_numpy(gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType[quant]))
        whole = tensors.load(name)
        assert dtype == quant and torch.isfinite(whole).all() and whole.abs().max() > 0
        assert torch.equal(whole, expected)
        assert torch.equal(tensors.load(name, rows=(3, 200)), expected[3:200])
    assert by_hf["model.layers.0.self_attn.v_proj.weight"][1] == "float16"


# -- hostile and unreadable files: one line each ---------------------------------------------------
def _patched(source: Path, target: Path, offset: int, value: int) -> Path:
    data = bytearray(source.read_bytes())
    data[offset : offset + 8] = struct.pack("<Q", value)
    target.write_bytes(bytes(data))
    return target


def test_an_absurd_tensor_count_is_one_line(files, tmp_path):
    path = _patched(files["base", "F32"], tmp_path / "count.gguf", 8, 10**12)
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(path))
    assert str(caught.value) == (
        f"{path} is not a GGUF file afterburn reads (it declares 1,000,000,000,000 tensors, over the limit of "
        "500,000 (limits.MAX_TENSORS)); re-download or re-convert it."
    )


def test_an_absurd_metadata_count_is_one_line(files, tmp_path):
    path = _patched(files["base", "F32"], tmp_path / "keys.gguf", 16, 2**40)
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(path))
    assert str(caught.value) == (
        f"{path} is not a GGUF file afterburn reads (it declares 1,099,511,627,776 metadata keys, over the limit "
        "of 100,000 (checkpoints.gguf.MAX_GGUF_METADATA_KEYS)); re-download or re-convert it."
    )


@pytest.mark.parametrize("keep", [0.1, 0.6, 0.999])
def test_a_truncated_file_is_one_line(files, tmp_path, keep):
    data = files["base", "Q8_0"].read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path} is not a GGUF file afterburn reads (")
    assert message.endswith("); re-download or re-convert it.") and "\n" not in message


def test_not_gguf_at_all_is_one_line(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(path))
    assert str(caught.value) == (
        f"{path} is not a GGUF file afterburn reads (no GGUF magic and version at its start); "
        "re-download or re-convert it."
    )


def test_a_folder_holding_one_gguf_is_that_checkpoint_and_two_are_refused(files, tmp_path):
    folder = files["base", "Q8_0"].parent
    checkpoint = resolve(str(folder))
    assert (checkpoint.kind, checkpoint.weight_format, checkpoint.config_path) == ("local_dir", "gguf", None)
    assert checkpoint.description.architecture == "LlamaForCausalLM" and checkpoint.description.num_kv_heads == 2
    both = tmp_path / "both"
    both.mkdir()
    shutil.copy(files["base", "Q8_0"], both / "a-Q8_0.gguf")
    shutil.copy(files["base", "F32"], both / "a-F32.gguf")
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(both))
    assert str(caught.value) == (
        f"{both} holds 2 GGUF files (a-F32.gguf, a-Q8_0.gguf); point at the one to compare "
        "(split GGUFs: merge them first with llama-gguf-split --merge)."
    )


# -- architectures whose tensors transformers rearranges on load ---------------------------------------
@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A tiny GPT-2 saved by transformers and the GGUF llama.cpp would convert it to, and its state dict."""
    from transformers import GPT2Config, GPT2LMHeadModel

    root = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**TINY_GPT2))
    model.save_pretrained(root / "hf")
    (root / "gguf").mkdir()
    return root / "hf", write_gpt2_gguf(root / "gguf" / "gpt2.gguf", model), model.state_dict()


def _rearranged(path: Path) -> str:
    return (f"{path}: transformers rearranges the tensors of GGUF architecture 'gpt2' on load (GPT2TensorProcessor), "
            "which the weight diff does not undo yet; generation and token KL read it, or diff the safetensors it "
            "was converted from.")


def test_a_gguf_transformers_rearranges_loads_for_generation_and_is_refused_by_the_weight_diff(gpt2_pair):
    from transformers import AutoModelForCausalLM

    source, path, state = gpt2_pair
    # transformers reads the file back as the model it came from (Conv1D transposed back): the file is sound.
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items())
    # The weight diff would read c_attn transposed and name no error: it refuses instead.
    with pytest.raises(BadCheckpoint) as caught:
        compare_weights(resolve(str(source)), resolve(str(path)), device="cpu")
    assert str(caught.value) == _rearranged(path)


def test_a_gguf_transformers_rearranges_is_one_line_exit_2_in_the_cli(gpt2_pair, afterburn_home):
    source, path, _ = gpt2_pair
    result = afterburn("weight-diff", "--base", str(source), "--trained", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # Above it: the run's id and the progress of the stages that finished.
    assert result.stderr.strip().splitlines()[-1] == f"Error: {_rearranged(path)}"


# -- quantized safetensors ----------------------------------------------------------------------------
def _packed_folder(folder: Path, tensor_names, quantization_config=None) -> Path:
    folder.mkdir()
    config = json.loads((DEMO / "base" / "config.json").read_text())
    if quantization_config is not None:
        config["quantization_config"] = quantization_config
    (folder / "config.json").write_text(json.dumps(config))
    save_file({name: np.zeros((4, 4), dtype=np.int32) for name in tensor_names}, str(folder / "model.safetensors"))
    return folder


GPTQ_TENSORS = ("model.layers.0.self_attn.q_proj.qweight", "model.layers.0.self_attn.q_proj.qzeros",
                "model.layers.0.self_attn.q_proj.scales")


def test_gptq_safetensors_are_one_line_naming_gptq(tmp_path):
    folder = _packed_folder(tmp_path / "gptq", GPTQ_TENSORS, {"quant_method": "gptq", "bits": 4, "group_size": 128})
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(folder))
    assert str(caught.value) == (
        f"{folder} holds GPTQ-quantized weights (config.json quantization_config.quant_method 'gptq'): packed "
        "integers that cannot be diffed as weights; compare the unquantized model, or a GGUF of it."
    )


def test_packed_tensor_names_without_a_config_are_refused_too(tmp_path):
    folder = _packed_folder(tmp_path / "gptq", GPTQ_TENSORS)
    with pytest.raises(BadCheckpoint) as caught:
        resolve(str(folder))
    assert str(caught.value) == (
        f"{folder / 'model.safetensors'} holds GPTQ or AWQ-quantized weights (tensor "
        "'model.layers.0.self_attn.q_proj.qweight'): packed integers that cannot be diffed as weights; "
        "compare the unquantized model, or a GGUF of it."
    )
    bnb = _packed_folder(tmp_path / "bnb", ("model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight.absmax"))
    with pytest.raises(BadCheckpoint, match=r"holds bitsandbytes-quantized weights \(tensor 'model.layers.0.mlp.up_proj.weight.absmax'\)"):
        resolve(str(bnb))
