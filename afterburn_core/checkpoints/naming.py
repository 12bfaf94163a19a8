"""What a tensor is, from its (normalized) name: its layer index and module type.

``classify(name) -> (layer, module)`` recognises Llama / Qwen / Mistral
(``layers.3.self_attn.q_proj.weight``), GPT-NeoX (``gpt_neox.layers.3.attention.dense``)
and GPT-2 (``transformer.h.3.attn.c_proj``) and Falcon (``transformer.h.3.self_attention.dense``)
names, biases included. Fused projections are their own types: ``qkv``
(``query_key_value``, ``c_attn``, ``qkv_proj``, ``Wqkv``) and ``gate_up``
(``gate_up_proj``); which of their features are q, k, v (gate, up) depends on
the architecture and is the architecture map's (``architecture.split``).
Mixture-of-experts names: a router (``mlp.gate`` in Qwen-MoE / DeepSeek / OLMoE,
``block_sparse_moe.gate`` in Mixtral, ``router`` in gpt-oss / Llama 4 / Jamba /
Granite-MoE, Qwen2-MoE's ``shared_expert_gate``) is module ``router``; a
per-expert tensor (``block_sparse_moe.experts.3.w1``, ``mlp.experts.3.gate_proj``)
keeps its projection's type and gives its index through ``expert_index``; a
stacked one (``mlp.experts.gate_up_proj`` [E, …], as transformers 5 holds
Mixtral / Qwen3-MoE / gpt-oss experts) is told by ``is_expert_stack``; a shared
expert (``shared_expert``, ``shared_experts``) by ``is_shared_expert``.
It reads names only (no tensors, no config) and costs nothing. It sits with
the checkpoints because pairing two checkpoints' tensors (``pairing``) needs
to tell heads and embeddings apart; the weight diff reads it too.
"""

from __future__ import annotations

import re
from typing import Literal

#: What a tensor does in the model, as the weight views group it (``TensorDiff.module``).
ModuleType = Literal[
    "q", "k", "v", "o", "router", "gate", "up", "down", "qkv", "gate_up", "norm", "embed", "head", "other"
]

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)(?:\.|$)")

#: Module types by the last name component before ``weight`` / ``bias``; checked after norms.
_BY_COMPONENT: dict[str, ModuleType] = {
    "q_proj": "q", "query": "q", "wq": "q", "q": "q",
    "k_proj": "k", "key": "k", "wk": "k", "k": "k",
    "v_proj": "v", "value": "v", "wv": "v", "v": "v",
    "o_proj": "o", "out_proj": "o", "wo": "o", "dense": "o",
    "gate_proj": "gate", "w1": "gate",
    "up_proj": "up", "w3": "up", "c_fc": "up", "dense_h_to_4h": "up", "fc1": "up",
    "down_proj": "down", "w2": "down", "dense_4h_to_h": "down", "fc2": "down",
    "embed_tokens": "embed", "wte": "embed", "wpe": "embed", "embed_in": "embed",
    "word_embeddings": "embed", "tok_embeddings": "embed", "embed_positions": "embed",
    "lm_head": "head", "embed_out": "head", "output": "head",
    "query_key_value": "qkv", "c_attn": "qkv", "qkv_proj": "qkv", "Wqkv": "qkv",
    "gate_up_proj": "gate_up",
    # gpt-oss stacks one bias per expert beside its stacked weights: [E, 2I] and [E, H].
    "gate_up_proj_bias": "gate_up", "down_proj_bias": "down",
}
#: Names of the attention block a bare ``dense`` sits in to be its output projection
#: (GPT-NeoX ``attention``, Falcon ``self_attention``, Llama-style ``self_attn``).
_ATTENTION_BLOCKS = ("attention", "self_attention", "self_attn", "attn")
#: Position embeddings: rows are positions, not tokens (GPT-2 ``wpe``, OPT ``embed_positions``).
_POSITION = re.compile(r"wpe|pos", re.IGNORECASE)

#: Blocks a bare ``gate`` is the router of (Qwen-MoE / DeepSeek / OLMoE ``mlp``, Mixtral
#: ``block_sparse_moe``, Jamba ``feed_forward``, DBRX ``ffn``, Arctic / others ``moe``).
_MOE_BLOCKS = ("mlp", "block_sparse_moe", "feed_forward", "ffn", "moe", "sparse_moe")
#: Components that are routers wherever they sit: gpt-oss / Llama 4 ``router``, Qwen2-MoE's
#: ``shared_expert_gate`` (a sigmoid gate on the shared expert's output), DeepSeek-V3's
#: ``gate.e_score_correction_bias`` (added to the router's scores before top-k).
_ROUTER_COMPONENTS = ("router", "shared_expert_gate", "e_score_correction_bias")
#: Names of a shared expert (always active, beside the routed ones): Qwen2-MoE, DeepSeek, Llama 4.
_SHARED_EXPERTS = ("shared_expert", "shared_experts")
_EXPERT = re.compile(r"(?:^|\.)experts\.(\d+)(?:\.|$)")
_EXPERT_STACK = re.compile(r"(?:^|\.)experts\.[A-Za-z_]\w*(?:\.(?:weight|bias))?$")

_NORM = re.compile(r"(?:^|[._])(?:norm|layernorm|layer_norm|ln|ln_\d+|ln_f|rms_norm)(?:$|[._])|norm", re.IGNORECASE)


def layer_index(name: str) -> int | None:
    """The block index in ``name`` (``layers.7.…`` → 7), None outside the stack."""
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def classify(name: str) -> tuple[int | None, ModuleType]:
    """``(layer, module type)`` of a tensor name; see the module docstring."""
    layer = layer_index(name)
    parts = name.split(".")
    if parts and parts[-1] in ("weight", "bias", "scale"):
        parts = parts[:-1]
    component = parts[-1] if parts else ""
    if _NORM.search(component) or component.startswith("ln_"):
        return layer, "norm"
    if _is_router(parts):
        return layer, "router"
    # GPT-2 reuses c_proj for the attention output and the MLP down projection.
    if component == "c_proj":
        return layer, "down" if "mlp" in parts else "o"
    module = _BY_COMPONENT.get(component)
    if module == "o" and component == "dense" and not any(p in _ATTENTION_BLOCKS for p in parts):
        module = None  # a bare "dense" outside attention (e.g. a pooler) says nothing
    if module in ("q", "k", "v") and len(component) == 1 and layer is None:
        module = None
    if module == "head" and component == "output" and layer is not None:
        module = None  # BERT-style "layer.3.output.dense" is not a head
    return layer, module or "other"


def _is_router(parts: list[str]) -> bool:
    """A router weight: ``router`` anywhere (Granite-MoE ``router.layer``), or a bare ``gate`` of an MoE block."""
    if "experts" in parts:
        return False
    if any(part in _ROUTER_COMPONENTS for part in parts):
        return True
    return len(parts) >= 2 and parts[-1] == "gate" and parts[-2] in _MOE_BLOCKS


def expert_index(name: str) -> int | None:
    """The routed expert a per-expert tensor belongs to (``mlp.experts.3.gate_proj.weight`` → 3), else None."""
    match = _EXPERT.search(name)
    return int(match.group(1)) if match else None


def is_expert_stack(name: str) -> bool:
    """True for one tensor holding every routed expert along its first axis (``mlp.experts.gate_up_proj``)."""
    return bool(_EXPERT_STACK.search(name))


def is_shared_expert(name: str) -> bool:
    """True for a tensor of a shared expert (``mlp.shared_expert.gate_proj.weight``), not its gate."""
    return any(part in _SHARED_EXPERTS for part in name.split("."))


def is_position_embedding(name: str) -> bool:
    """True for an embedding whose rows are positions (``wpe``, ``embed_positions``), not tokens."""
    return classify(name)[1] == "embed" and bool(_POSITION.search(name))
