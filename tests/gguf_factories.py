"""GGUF files built the way llama.cpp's convert_hf_to_gguf.py builds them, with gguf's own writer.

``write_llama_gguf(source, path, quant)`` converts a Hugging Face Llama folder
(the demo models: byte-level BPE tokenizer) into one ``.gguf`` file: the
hyperparameters and the tokenizer (tokens, types, merges, special ids, chat
template: what transformers' GGUF loader reads) as metadata; tensors renamed
through gguf's ``TensorNameMap``; q/k rows permuted as llama.cpp's
``LlamaModel.permute`` does; matrices stored as ``quant`` (``F32``, ``F16``,
``Q8_0``, … what ``gguf.quants.quantize`` can write), vectors as F32 (as
llama.cpp keeps norms). ``raw`` stores chosen tensors as given raw blocks of any
ggml type, for the block formats gguf-py only reads (the K-quants).

``write_gpt2_gguf(path, model)`` writes a GPT-2 (a tiny one: ``TINY_GPT2``) as
llama.cpp's ``GPT2Model`` converts one: Conv1D matrices transposed to (out, in), the head as a copy of the
embedding, a token list of the vocabulary's size and no tokenizer model — the
metadata transformers needs to build its config, for the architectures whose
tensors transformers rearranges on load.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file


def llama_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py): rotary halves interleaved per head."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _add_tokenizer(writer: gguf.GGUFWriter, folder: Path) -> None:
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    config = json.loads((folder / "tokenizer_config.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    special = {added["content"]: added["id"] for added in tokenizer["added_tokens"]}
    types = [
        gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token in tokens
    ]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([" ".join(pair) if isinstance(pair, list) else pair for pair in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(special[config["bos_token"]])
    writer.add_eos_token_id(special[config["eos_token"]])
    writer.add_pad_token_id(special[config["pad_token"]])
    writer.add_add_bos_token(False)
    writer.add_chat_template(config["chat_template"])


def write_llama_gguf(source: Path, path: Path, quant: str = "F32", raw: dict | None = None) -> Path:
    """``source`` (a Llama folder: config.json, model.safetensors, tokenizer) as one GGUF file at ``path``;
    ``raw`` maps HF names to ``(block bytes [rows, bytes per row], ggml type name)`` stored instead."""
    config = json.loads((Path(source) / "config.json").read_text())
    n_head, n_head_kv = config["num_attention_heads"], config["num_key_value_heads"]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("afterburn test llama")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config.get("rope_parameters", {}).get("rope_theta", 10000.0))
    writer.add_vocab_size(config["vocab_size"])
    _add_tokenizer(writer, Path(source))
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    qtype = gguf.GGMLQuantizationType[quant]
    for hf_name, weights in load_file(str(Path(source) / "model.safetensors")).items():
        weights = weights.astype(np.float32)
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if raw and hf_name in raw:
            blocks, raw_quant = raw[hf_name]
            writer.add_tensor(gguf_name, blocks, raw_dtype=gguf.GGMLQuantizationType[raw_quant])
            continue
        if hf_name.endswith("q_proj.weight"):
            weights = llama_permute(weights, n_head, n_head)
        elif hf_name.endswith("k_proj.weight"):
            weights = llama_permute(weights, n_head, n_head_kv)
        if weights.ndim == 1:
            writer.add_tensor(gguf_name, weights)
        else:
            writer.add_tensor(gguf_name, gguf.quants.quantize(weights, qtype), raw_dtype=qtype)
    _write(writer)
    return Path(path)


#: The tiny GPT-2 ``write_gpt2_gguf`` writes: 2 heads of 16, one block, 48 tokens. ``n_positions`` stays
#: GPT-2's 1024: transformers' GGUF config mapping reads context_length into ``n_ctx`` only, so a file of
#: another context length does not load back.
TINY_GPT2 = {"n_embd": 32, "n_layer": 1, "n_head": 2, "vocab_size": 48, "bos_token_id": 0, "eos_token_id": 0}
#: The HF names of GPT-2's Conv1D matrices (stored in × out), which convert_hf_to_gguf.py's GPT2Model transposes.
GPT2_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")


def write_gpt2_gguf(path: Path, model) -> Path:
    """``model`` (a ``GPT2LMHeadModel``) as one F32 GGUF at ``path``, laid out as llama.cpp converts it."""
    config = model.config
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_name("afterburn test gpt2")
    writer.add_block_count(config.n_layer)
    writer.add_context_length(config.n_positions)
    writer.add_embedding_length(config.n_embd)
    writer.add_feed_forward_length(4 * config.n_embd)
    writer.add_head_count(config.n_head)
    writer.add_layer_norm_eps(config.layer_norm_epsilon)
    writer.add_token_list([f"t{index}" for index in range(config.vocab_size)])
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, config.n_layer)
    for hf_name, weights in model.state_dict().items():
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None or hf_name == "lm_head.weight":  # attention masks; the head is written below
            continue
        weights = weights.numpy().astype(np.float32)
        writer.add_tensor(gguf_name, np.ascontiguousarray(weights.T) if hf_name.endswith(GPT2_CONV1D) else weights)
    writer.add_tensor("output.weight", model.lm_head.weight.detach().numpy().astype(np.float32))
    _write(writer)
    return Path(path)


def _write(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
