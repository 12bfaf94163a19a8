"""Builders of planted weight pairs for the weight-diff tests (real safetensors + config.json).

Every builder writes a folder ``resolve`` accepts (config.json + model.safetensors,
Llama tensor names) from a dict of tensors, so a test plants exactly the edit it
checks: ``llama_tensors`` makes a random base; ``plant_low_rank``,
``rescale``, ``move_rows``, ``grow_vocab`` edit a copy; ``save_checkpoint``
writes it (any dtype mix, optional shards, with or without the ``model.``
prefix, tied head = no ``lm_head.weight``); ``write_lora_adapter`` writes a peft
adapter folder by hand and ``merge_lora`` its merged model. Sizes default to
hidden 128 so a rank-2 edit is clearly low rank (≤ 1/8 of the width) and a
pair is written in milliseconds.

Use from a test module: ``from weight_factories import llama_tensors, save_checkpoint``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

Q_PROJ = "model.layers.1.self_attn.q_proj.weight"
NORM = "model.layers.0.post_attention_layernorm.weight"
EMBED = "model.embed_tokens.weight"
HEAD = "lm_head.weight"


def llama_tensors(*, hidden: int = 128, layers: int = 2, vocab: int = 256, kv_heads_ratio: int = 2,
                  intermediate: int | None = None, seed: int = 0, tied: bool = False) -> dict[str, torch.Tensor]:
    """A random Llama-shaped state dict (fp32, ``model.`` prefix); no ``lm_head`` when ``tied``."""
    generator = torch.Generator().manual_seed(seed)
    intermediate = intermediate or 2 * hidden
    kv = hidden // kv_heads_ratio

    def rand(*shape):
        return torch.randn(*shape, generator=generator) / math.sqrt(shape[-1])

    tensors = {EMBED: rand(vocab, hidden)}
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        tensors.update({
            prefix + "input_layernorm.weight": 1 + 0.1 * torch.randn(hidden, generator=generator),
            prefix + "self_attn.q_proj.weight": rand(hidden, hidden),
            prefix + "self_attn.k_proj.weight": rand(kv, hidden),
            prefix + "self_attn.v_proj.weight": rand(kv, hidden),
            prefix + "self_attn.o_proj.weight": rand(hidden, hidden),
            prefix + "post_attention_layernorm.weight": 1 + 0.1 * torch.randn(hidden, generator=generator),
            prefix + "mlp.gate_proj.weight": rand(intermediate, hidden),
            prefix + "mlp.up_proj.weight": rand(intermediate, hidden),
            prefix + "mlp.down_proj.weight": rand(hidden, intermediate),
        })
    tensors["model.norm.weight"] = torch.ones(hidden)
    if not tied:
        tensors[HEAD] = rand(vocab, hidden)
    return tensors


def add_noise(tensors: dict, scale: float = 1e-3, seed: int = 7, skip: tuple[str, ...] = ()) -> dict:
    """A copy with full-rank Gaussian noise of ``scale`` × each tensor's RMS added (a diffuse fine-tune)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in tensors.items():
        if name in skip:
            out[name] = tensor.clone()
            continue
        rms = tensor.float().pow(2).mean().sqrt()
        out[name] = (tensor.float() + scale * rms * torch.randn(tensor.shape, generator=generator)).to(tensor.dtype)
    return out


def low_rank_update(rows: int, cols: int, rank: int, norm: float, seed: int = 3) -> torch.Tensor:
    """U diag(s) Vᵀ with orthonormal U, V, singular values 2:1:… scaled to Frobenius ``norm``."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.linalg.qr(torch.randn(rows, rank, generator=generator, dtype=torch.float64)).Q
    right = torch.linalg.qr(torch.randn(cols, rank, generator=generator, dtype=torch.float64)).Q
    values = torch.tensor([2.0 ** -index for index in range(rank)], dtype=torch.float64)
    values *= norm / values.norm()
    return (left * values) @ right.T


def plant_low_rank(tensors: dict, name: str = Q_PROJ, rank: int = 2, relative: float = 1.0, seed: int = 3) -> dict:
    """A copy with a rank-``rank`` update of Frobenius norm ``relative`` × ‖W‖ added to ``name``."""
    out = dict(tensors)
    weight = tensors[name]
    update = low_rank_update(weight.shape[0], weight.shape[1], rank, relative * float(weight.double().norm()), seed)
    out[name] = (weight.double() + update).to(weight.dtype)
    return out


def rescale(tensors: dict, name: str = NORM, factor: float = 1.25) -> dict:
    """A copy with ``name`` multiplied by ``factor``."""
    out = dict(tensors)
    out[name] = (tensors[name].double() * factor).to(tensors[name].dtype)
    return out


def move_rows(tensors: dict, rows: tuple[int, ...], name: str = EMBED, distance: float = 5.0, seed: int = 5) -> dict:
    """A copy with the chosen rows of ``name`` moved by ``distance`` × the median row norm."""
    out = dict(tensors)
    weight = tensors[name].double().clone()
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(len(rows), weight.shape[1], generator=generator, dtype=torch.float64)
    direction /= direction.norm(dim=1, keepdim=True)
    weight[list(rows)] += distance * weight.norm(dim=1).median() * direction
    out[name] = weight.to(tensors[name].dtype)
    return out


def grow_vocab(tensors: dict, added: int, names: tuple[str, ...] = (EMBED, HEAD), seed: int = 9) -> dict:
    """A copy whose embedding (and head) gained ``added`` random rows at the end."""
    out = dict(tensors)
    generator = torch.Generator().manual_seed(seed)
    for name in names:
        if name in tensors:
            weight = tensors[name]
            extra = torch.randn(added, weight.shape[1], generator=generator).to(weight.dtype) * 0.02
            out[name] = torch.cat([weight, extra])
    return out


def cast(tensors: dict, dtype: torch.dtype, names: tuple[str, ...] | None = None) -> dict:
    """A copy with ``names`` (default: all) stored as ``dtype`` — for bf16 / fp16 / fp32 mixes."""
    return {name: (t.to(dtype) if names is None or name in names else t) for name, t in tensors.items()}


def save_checkpoint(folder: Path, tensors: dict, *, tied: bool | None = None, prefix: bool = True,
                    shards: int = 1, hidden: int | None = None) -> Path:
    """Write config.json + safetensors (``shards`` files with an index when > 1). ``prefix=False``
    drops ``model.``; ``tied`` sets ``tie_word_embeddings`` (default: no ``lm_head`` stored)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    embed = tensors.get(EMBED)
    tied = (HEAD not in tensors) if tied is None else tied
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": hidden or (embed.shape[1] if embed is not None else 0),
        "vocab_size": embed.shape[0] if embed is not None else 0,
        "num_hidden_layers": len({n.split(".")[2] for n in tensors if n.startswith("model.layers.")}),
        "tie_word_embeddings": tied,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    named = {(name.removeprefix("model.") if not prefix else name): t.contiguous() for name, t in tensors.items()}
    if shards == 1:
        save_file(named, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return folder
    names = list(named)
    weight_map = {}
    for index in range(shards):
        file_name = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: named[name] for name in names[index::shards]}
        save_file(part, str(folder / file_name), metadata={"format": "pt"})
        weight_map.update({name: file_name for name in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def write_lora_adapter(folder: Path, base_tensors: dict, *, targets: tuple[str, ...] = ("q_proj", "v_proj"),
                       rank: int = 4, alpha: float = 8.0, use_rslora: bool = False, rank_pattern: dict | None = None,
                       alpha_pattern: dict | None = None, seed: int = 11, base_path: str = "../base") -> dict:
    """A peft-format LoRA adapter (adapter_config.json + adapter_model.safetensors) of ``base_tensors``;
    returns ``{base tensor name: ΔW (fp64)}`` as peft would merge it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    factors, deltas = {}, {}
    for name, weight in base_tensors.items():
        module = name.removesuffix(".weight")
        if weight.ndim != 2 or module.split(".")[-1] not in targets:
            continue
        short = module.removeprefix("model.")
        r = int(_match(rank_pattern, short, rank))
        a_alpha = float(_match(alpha_pattern, short, alpha))
        scale = a_alpha / math.sqrt(r) if use_rslora else a_alpha / r
        lora_a = torch.randn(r, weight.shape[1], generator=generator) / math.sqrt(weight.shape[1])
        lora_b = torch.randn(weight.shape[0], r, generator=generator) * 0.05
        factors[f"base_model.model.{module}.lora_A.weight"] = lora_a
        factors[f"base_model.model.{module}.lora_B.weight"] = lora_b
        deltas[name] = scale * (lora_b.double() @ lora_a.double())
    save_file(factors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA", "base_model_name_or_path": base_path, "r": rank, "lora_alpha": alpha,
        "target_modules": list(targets), "use_rslora": use_rslora, "rank_pattern": rank_pattern or {},
        "alpha_pattern": alpha_pattern or {}, "fan_in_fan_out": False, "use_dora": False, "bias": "none",
        "task_type": "CAUSAL_LM",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return deltas


def _match(patterns: dict | None, module: str, default):
    import re

    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def merge_lora(base_tensors: dict, deltas: dict) -> dict:
    """The merged model: W + ΔW rounded to each tensor's dtype."""
    return {name: ((t.double() + deltas[name]).to(t.dtype) if name in deltas else t) for name, t in base_tensors.items()}
