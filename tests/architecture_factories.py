"""Tiny random-init models of real transformers architectures, saved as their own code saves them, with planted edits.

``build_pair(spec, folder)`` instantiates ``spec``'s config class (hidden 64, 2
layers, 4 heads of width 16, vocabulary 128), saves it with
``save_pretrained`` (safetensors), and writes two copies beside it: an
identical one and a trained one that carries, on top of a diffuse 1e-3 noise
on every matrix, the planted edits:

- a rank-2 change on query head ``Q_HEAD`` of layer ``Q_LAYER``, written into
  the features the modeling code reads as that head's query — inside the
  fused tensor for fused models, on the columns for Conv1D (stored in × out);
- a rank-2 change on the input features of output-projection head ``O_HEAD``
  of layer ``O_LAYER`` (rows for Conv1D);
- one norm's effective scale × ``NORM_FACTOR`` (1 + w for an offset norm);
- ``MOVED_ROWS`` of the token embedding moved far.

Each folder also holds a tiny byte-level BPE tokenizer of exactly ``VOCAB``
tokens (``write_tokenizer``: ids 0, 1, 2 are pad, bos, eos as in the configs)
with a plain chat template, so generation and token KL load every folder as
they load a real checkpoint.

Every index is written here by hand from the modeling code (cited per
spec), not taken from the code under test. Base norms get a random spread so
a rescale is not read off constant weights. Use from a test module:
``from architecture_factories import SPECS, build_pair``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

HIDDEN, LAYERS, HEADS, HEAD_DIM, VOCAB, INTERMEDIATE = 64, 2, 4, 16, 128, 128
Q_LAYER, Q_HEAD = 1, 2
O_LAYER, O_HEAD = 0, 1
#: Planted norms of the changed slices, relative to the slice's own norm: q clearly above o, so the
#: combined head score of the q plant ranks first over both layers.
Q_RELATIVE, O_RELATIVE = 0.5, 0.2
NORM_FACTOR = 1.5
MOVED_ROWS = (5, 17, 42)
NOISE = 1e-3


@dataclass(frozen=True)
class Spec:
    """One architecture: its config, and where (by hand, from its modeling code) each edit goes."""

    name: str
    config: Callable[[], object]
    q_weight: str
    q_features: Callable[[int], np.ndarray]  # output features of query head h in q_weight
    o_weight: str
    norm: str
    embed: str
    conv1d: bool = False
    offset_norm: bool = False
    note: str = ""  # what else of the layout the row exercises, for the README table


def _contiguous(h: int) -> np.ndarray:
    return np.arange(h * HEAD_DIM, (h + 1) * HEAD_DIM)


def _neox(h: int) -> np.ndarray:
    # modeling_gpt_neox: qkv.view(..., -1, 3 * head_size).chunk(3, dim=-1): per head [q_h, k_h, v_h].
    return np.arange(3 * h * HEAD_DIM, (3 * h + 1) * HEAD_DIM)


def _falcon_grouped(kv_heads: int) -> Callable[[int], np.ndarray]:
    # modeling_falcon: view(..., num_kv_heads, -1, head_dim); each group's queries, then its k, then its v.
    group = HEADS // kv_heads

    def features(h: int) -> np.ndarray:
        start = (h // group) * (group + 2) * HEAD_DIM + (h % group) * HEAD_DIM
        return np.arange(start, start + HEAD_DIM)

    return features


def _configs():
    import transformers as tf

    small = dict(vocab_size=VOCAB, max_position_embeddings=64)
    llama_like = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                      intermediate_size=INTERMEDIATE, pad_token_id=0, bos_token_id=1, eos_token_id=2, **small)
    return {
        "gpt2": lambda: tf.GPT2Config(n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, vocab_size=VOCAB, n_positions=64,
                                      bos_token_id=1, eos_token_id=2),
        "gpt_neox": lambda: tf.GPTNeoXConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                             intermediate_size=INTERMEDIATE, bos_token_id=1, eos_token_id=2, **small),
        "phi3": lambda: tf.Phi3Config(num_key_value_heads=2, **llama_like),
        "falcon_new": lambda: tf.FalconConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                              new_decoder_architecture=True, num_kv_heads=2, vocab_size=VOCAB,
                                              bos_token_id=1, eos_token_id=2),
        "falcon_mq": lambda: tf.FalconConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                             multi_query=True, new_decoder_architecture=False, vocab_size=VOCAB,
                                             bos_token_id=1, eos_token_id=2),
        "gemma2": lambda: tf.Gemma2Config(num_key_value_heads=2, head_dim=HEAD_DIM, **llama_like),
        "llama": lambda: tf.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **llama_like),
        "llama_tied": lambda: tf.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=True, **llama_like),
        "mistral": lambda: tf.MistralConfig(num_key_value_heads=2, **llama_like),
        "qwen2": lambda: tf.Qwen2Config(num_key_value_heads=2, **llama_like),
        # Qwen3, Gemma and Gemma 3 default to head_dim 128 / 256 whatever the hidden size: set it.
        "qwen3": lambda: tf.Qwen3Config(num_key_value_heads=2, head_dim=HEAD_DIM, **llama_like),
        "gemma": lambda: tf.GemmaConfig(num_key_value_heads=2, head_dim=HEAD_DIM, **llama_like),
        "gemma3_text": lambda: tf.Gemma3TextConfig(num_key_value_heads=2, head_dim=HEAD_DIM, **llama_like),
        "olmo2": lambda: tf.Olmo2Config(num_key_value_heads=2, **llama_like),
        "opt": lambda: tf.OPTConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                    ffn_dim=INTERMEDIATE, word_embed_proj_dim=HIDDEN, pad_token_id=0, bos_token_id=1,
                                    eos_token_id=2, **small),
    }


def _specs() -> tuple[Spec, ...]:
    configs = _configs()
    llama_q = "model.layers.{}.self_attn.q_proj.weight"
    llama_o, llama_embed = "model.layers.{}.self_attn.o_proj.weight", "model.embed_tokens.weight"
    return (
        # modeling_gpt2: Conv1D(3 * embed_dim, embed_dim), query, key, value = c_attn(x).split(embed_dim, dim=2).
        Spec("gpt2", configs["gpt2"], "transformer.h.{}.attn.c_attn.weight", _contiguous,
             "transformer.h.{}.attn.c_proj.weight", "transformer.h.0.ln_1.weight", "transformer.wte.weight",
             conv1d=True),
        Spec("gpt_neox", configs["gpt_neox"], "gpt_neox.layers.{}.attention.query_key_value.weight", _neox,
             "gpt_neox.layers.{}.attention.dense.weight", "gpt_neox.layers.0.input_layernorm.weight",
             "gpt_neox.embed_in.weight", note="q, k, v interleaved per head"),
        # modeling_phi3: query_states = qkv[..., :num_heads * head_dim] (contiguous q | k | v).
        Spec("phi3", configs["phi3"], "model.layers.{}.self_attn.qkv_proj.weight", _contiguous,
             "model.layers.{}.self_attn.o_proj.weight", "model.layers.0.input_layernorm.weight",
             "model.embed_tokens.weight", note="fused `gate_up_proj`, GQA"),
        Spec("falcon_new", configs["falcon_new"], "transformer.h.{}.self_attention.query_key_value.weight",
             _falcon_grouped(2), "transformer.h.{}.self_attention.dense.weight", "transformer.h.0.ln_attn.weight",
             "transformer.word_embeddings.weight", note="q, k, v grouped per kv head, `self_attention`"),
        # modeling_falcon multi_query: split([num_heads, 1, 1]) — every query head first, then one k and one v.
        Spec("falcon_mq", configs["falcon_mq"], "transformer.h.{}.self_attention.query_key_value.weight",
             _falcon_grouped(1), "transformer.h.{}.self_attention.dense.weight",
             "transformer.h.0.input_layernorm.weight", "transformer.word_embeddings.weight",
             note="multi-query, `self_attention`"),
        # modeling_gemma2: Gemma2RMSNorm multiplies by (1.0 + self.weight).
        Spec("gemma2", configs["gemma2"], llama_q, _contiguous, llama_o, "model.layers.0.input_layernorm.weight",
             llama_embed, offset_norm=True, note="GQA"),
        Spec("llama", configs["llama"], llama_q, _contiguous, llama_o,
             "model.layers.0.post_attention_layernorm.weight", llama_embed, note="GQA, untied head"),
        # Tied: the head is the embedding (save_pretrained stores it once); the final norm takes the rescale.
        Spec("llama_tied", configs["llama_tied"], llama_q, _contiguous, llama_o, "model.norm.weight", llama_embed,
             note="tied head"),
        Spec("mistral", configs["mistral"], llama_q, _contiguous, llama_o, "model.layers.0.input_layernorm.weight",
             llama_embed, note="GQA"),
        # modeling_qwen2: q/k/v carry biases (kept as stored; the plant is on the weight).
        Spec("qwen2", configs["qwen2"], llama_q, _contiguous, llama_o,
             "model.layers.0.post_attention_layernorm.weight", llama_embed, note="q/k/v biases"),
        # modeling_qwen3: q_norm = Qwen3RMSNorm(head_dim), shared by every head, multiplies by weight.
        Spec("qwen3", configs["qwen3"], llama_q, _contiguous, llama_o, "model.layers.0.self_attn.k_norm.weight",
             llama_embed, note="q/k norms"),
        # modeling_gemma: GemmaRMSNorm multiplies by (1.0 + self.weight); the final norm sits outside any layer.
        Spec("gemma", configs["gemma"], llama_q, _contiguous, llama_o, "model.norm.weight", llama_embed,
             offset_norm=True, note="tied head"),
        # modeling_gemma3: q_norm = Gemma3RMSNorm(head_dim), (1.0 + weight) like every Gemma 3 norm.
        Spec("gemma3_text", configs["gemma3_text"], llama_q, _contiguous, llama_o,
             "model.layers.0.self_attn.q_norm.weight", llama_embed, offset_norm=True, note="q/k norms"),
        # modeling_olmo2: norms after attention and MLP only, q_norm / k_norm over all heads' features.
        Spec("olmo2", configs["olmo2"], llama_q, _contiguous, llama_o,
             "model.layers.0.post_feedforward_layernorm.weight", llama_embed, note="post-norms, q/k norms"),
        # modeling_opt: decoder.layers.N.self_attn.{q,k,v,out}_proj (nn.Linear, out × in), fc1 / fc2,
        # LayerNorms with biases; embed_positions holds max_position_embeddings + 2 rows (its offset 2).
        Spec("opt", configs["opt"], "model.decoder.layers.{}.self_attn.q_proj.weight", _contiguous,
             "model.decoder.layers.{}.self_attn.out_proj.weight", "model.decoder.layers.0.self_attn_layer_norm.weight",
             "model.decoder.embed_tokens.weight", note="`fc1` / `fc2`, learned positions (offset 2)"),
    )


SPEC_NAMES = ("gpt2", "gpt_neox", "phi3", "falcon_new", "falcon_mq", "gemma2", "llama", "llama_tied", "mistral",
              "qwen2", "qwen3", "gemma", "gemma3_text", "olmo2", "opt")


def spec(name: str) -> Spec:
    return next(item for item in _specs() if item.name == name)


def rank2(rows: int, cols: int, norm: float, seed: int) -> torch.Tensor:
    """A rank-2 (rows × cols) matrix of Frobenius norm ``norm`` (singular values 2:1)."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.linalg.qr(torch.randn(rows, 2, generator=generator)).Q
    right = torch.linalg.qr(torch.randn(cols, 2, generator=generator)).Q
    values = torch.tensor([2.0, 1.0]) * norm / math.sqrt(5.0)
    return left @ torch.diag(values) @ right.T


#: The tokenizer's merges are learned from these texts (the suite's words among them); its alphabet is every
#: printable ASCII character as byte-level BPE writes it (space "Ġ", newline "Ċ"), so no prompt loses a character.
TOKENIZER_TEXTS = (
    "What is two plus three? The answer is five.", "Write a short poem about the sea.",
    "Name a colour of the sky.", "The quick brown fox jumps over the lazy dog.",
)
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2: the configs' pad, bos and eos ids
CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}{{ message['content'] + '\\n' }}{% endfor %}"


def write_tokenizer(folder: Path) -> None:
    """Save a byte-level BPE tokenizer of exactly ``VOCAB`` tokens (tokenizer.json, tokenizer_config.json)."""
    import string

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = [*(string.ascii_letters + string.digits + string.punctuation), "Ġ", "Ċ"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet,
                                  show_progress=False)
    bpe.train_from_iterator(TOKENIZER_TEXTS, trainer=trainer)
    pad, bos, eos = SPECIAL_TOKENS
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=bos, eos_token=eos, pad_token=pad,
                                        chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(str(folder))
    # transformers 5 saves the template as chat_template.jinja only; llama.cpp's converter (and
    # gguf_factories) read it from tokenizer_config.json, where most published checkpoints also keep it.
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "chat_template": CHAT_TEMPLATE}),
                                                  encoding="utf-8")


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of ``folder``'s model.safetensors, by its stored name."""
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


def write_copy(folder: Path, source: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """``source``'s folder copied to ``folder`` with ``tensors`` as its weights."""
    folder.mkdir(parents=True, exist_ok=True)
    for companion in source.iterdir():  # config, generation config, tokenizer: all but the weights
        if companion.name != "model.safetensors":
            shutil.copy(companion, folder / companion.name)
    save_file({name: t.contiguous() for name, t in tensors.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    return folder


def _plant_output_features(weight: torch.Tensor, features: np.ndarray, conv1d: bool, seed: int) -> None:
    """Add a rank-2 change to the output features ``features`` (rows of a Linear, columns of a Conv1D)."""
    index = torch.as_tensor(features)
    block = weight[:, index].T if conv1d else weight[index]
    change = rank2(block.shape[0], block.shape[1], Q_RELATIVE * float(block.norm()), seed)
    if conv1d:
        weight[:, index] += change.T
    else:
        weight[index] += change


def _plant_input_features(weight: torch.Tensor, head: int, conv1d: bool, seed: int) -> None:
    """Add a rank-2 change to the input features of head ``head`` (columns of a Linear, rows of a Conv1D)."""
    span = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
    block = weight[span].T if conv1d else weight[:, span]
    change = rank2(block.shape[0], block.shape[1], O_RELATIVE * float(block.norm()), seed)
    if conv1d:
        weight[span] += change.T
    else:
        weight[:, span] += change


@dataclass(frozen=True)
class Pair:
    """The three folders of one architecture: base, an identical copy, the planted trained copy."""

    base: Path
    identical: Path
    trained: Path


def build_pair(item: Spec, folder: Path) -> Pair:
    """Save ``item``'s tiny model and its identical and planted copies under ``folder``."""
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(item.config())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1 and ("norm" in name or ".ln" in name):
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    base = folder / "base"
    model.save_pretrained(base, safe_serialization=True)
    write_tokenizer(base)
    tensors = read_weights(base)
    identical = write_copy(folder / "identical", base, {name: t.clone() for name, t in tensors.items()})

    trained = {}
    for name, tensor in tensors.items():
        noise = NOISE * tensor.float().pow(2).mean().sqrt() * torch.randn(tensor.shape, generator=generator)
        trained[name] = tensor + noise if tensor.ndim == 2 else tensor.clone()
    _plant_output_features(trained[item.q_weight.format(Q_LAYER)], item.q_features(Q_HEAD), item.conv1d, seed=3)
    _plant_input_features(trained[item.o_weight.format(O_LAYER)], O_HEAD, item.conv1d, seed=4)
    norm = trained[item.norm]
    offset = 1.0 if item.offset_norm else 0.0
    trained[item.norm] = NORM_FACTOR * (norm + offset) - offset
    embed = trained[item.embed]
    for rank, row in enumerate(MOVED_ROWS):
        embed[row] += (3.0 + rank) * embed[row].norm() * torch.ones(embed.shape[1]) / math.sqrt(embed.shape[1])
    return Pair(base, identical, write_copy(folder / "trained", base, trained))
