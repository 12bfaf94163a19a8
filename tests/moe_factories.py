"""Tiny random-init mixture-of-experts models, saved per expert and stacked, with a planted expert and router edit.

``build_moe(spec, folder)`` instantiates ``spec``'s config class (hidden 64,
2 layers, 4 routed experts of width 48, top-2), saves it with
``save_pretrained`` — transformers 5 holds the experts stacked in memory
(``mlp.experts.gate_up_proj`` [E, 2·48, 64], ``mlp.experts.down_proj`` [E, 64, 48])
but writes them per expert, in the legacy names its loader converts
(Mixtral ``block_sparse_moe.experts.3.w1``, Qwen ``mlp.experts.3.gate_proj``) —
and writes, from the same tensors, the stacked layout too (gate|up halves
along each slice's rows, as ``MixtralExperts`` / ``Qwen3MoeExperts``
``chunk(2, dim=-1)`` read them; Mixtral's router renamed to ``mlp.gate``, its
in-memory name). Each layout gets an identical copy and a trained copy that
carries, on top of a 1e-3 noise on every matrix (every folder also holds
``architecture_factories``' tiny BPE tokenizer of the same 128 tokens, so the
generation stages run on it):

- a rank-2 change on the gate projection of expert ``EXPERT`` of layer
  ``EXPERT_LAYER`` (``EXPERT_RELATIVE`` of that matrix's norm);
- a rank-1 change on the router of layer ``ROUTER_LAYER`` (``ROUTER_RELATIVE``).

The names are written here by hand from the modeling code and the
checkpoints transformers writes, not taken from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from architecture_factories import VOCAB, read_weights, write_copy, write_tokenizer

HIDDEN, LAYERS, EXPERTS, TOP_K, EXPERT_WIDTH = 64, 2, 4, 2, 48
EXPERT_LAYER, EXPERT = 1, 2
ROUTER_LAYER = 0
EXPERT_RELATIVE, ROUTER_RELATIVE = 0.5, 0.3
NOISE = 1e-3


@dataclass(frozen=True)
class MoeSpec:
    """One MoE architecture: its config and the names its per-expert checkpoint uses."""

    name: str
    config: Callable[[], object]
    block: str  # the MoE block's attribute on disk: "block_sparse_moe" (Mixtral) or "mlp"
    projections: tuple[str, str, str]  # the per-expert gate, up, down names
    shared: bool = False


def _specs() -> dict[str, MoeSpec]:
    import transformers as tf

    common = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                  vocab_size=VOCAB, max_position_embeddings=64, num_experts_per_tok=TOP_K, pad_token_id=0,
                  bos_token_id=1, eos_token_id=2)
    qwen = dict(moe_intermediate_size=EXPERT_WIDTH, num_experts=EXPERTS, decoder_sparse_step=1, mlp_only_layers=[],
                intermediate_size=128, head_dim=16, **common)
    return {
        # modeling_mixtral: MixtralSparseMoeBlock.gate (router) and .experts; saved as block_sparse_moe.experts.E.w1/w3/w2.
        "mixtral": MoeSpec("mixtral", lambda: tf.MixtralConfig(intermediate_size=EXPERT_WIDTH, num_local_experts=EXPERTS,
                                                               **common),
                           "block_sparse_moe", ("w1", "w3", "w2")),
        "qwen3_moe": MoeSpec("qwen3_moe", lambda: tf.Qwen3MoeConfig(**qwen), "mlp",
                             ("gate_proj", "up_proj", "down_proj")),
        # modeling_qwen2_moe: a shared_expert (gate/up/down) beside the routed ones, and its shared_expert_gate.
        "qwen2_moe": MoeSpec("qwen2_moe", lambda: tf.Qwen2MoeConfig(shared_expert_intermediate_size=96, **qwen), "mlp",
                             ("gate_proj", "up_proj", "down_proj"), shared=True),
    }


MOE_NAMES = ("mixtral", "qwen3_moe", "qwen2_moe")
LAYOUTS = ("per_expert", "stacked")


def moe_spec(name: str) -> MoeSpec:
    return _specs()[name]


def expert_name(item: MoeSpec, layer: int, expert: int, projection: int) -> str:
    """The per-expert tensor as save_pretrained writes it: projection 0 = gate, 1 = up, 2 = down."""
    return f"model.layers.{layer}.{item.block}.experts.{expert}.{item.projections[projection]}.weight"


def router_name(item: MoeSpec, layer: int, stacked: bool) -> str:
    return f"model.layers.{layer}.{'mlp' if stacked else item.block}.gate.weight"


def stacked_name(layer: int, which: str) -> str:
    """``gate_up_proj`` or ``down_proj`` of a layer, as the transformers 5 experts classes hold them."""
    return f"model.layers.{layer}.mlp.experts.{which}"


def stack(item: MoeSpec, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The per-expert checkpoint rewritten stacked: gate_up [E, 2I, H] (gate rows, then up rows), down [E, H, I]."""
    stacked = dict(tensors)
    for layer in range(LAYERS):
        gate_up, down = [], []
        for expert in range(EXPERTS):
            gate, up, down_proj = (stacked.pop(expert_name(item, layer, expert, p)) for p in range(3))
            gate_up.append(torch.cat([gate, up]))
            down.append(down_proj)
        stacked[stacked_name(layer, "gate_up_proj")] = torch.stack(gate_up)
        stacked[stacked_name(layer, "down_proj")] = torch.stack(down)
        stacked[router_name(item, layer, True)] = stacked.pop(router_name(item, layer, False))
    return stacked


def rank_k(rows: int, cols: int, norm: float, rank: int, seed: int) -> torch.Tensor:
    """A rank-``rank`` (rows × cols) matrix of Frobenius norm ``norm``, singular values rank : … : 1."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.linalg.qr(torch.randn(rows, rank, generator=generator)).Q
    right = torch.linalg.qr(torch.randn(cols, rank, generator=generator)).Q
    values = torch.arange(rank, 0, -1, dtype=torch.float32)
    values = values * norm / values.norm()
    return left @ torch.diag(values) @ right.T


@dataclass(frozen=True)
class MoePair:
    """One layout's folders: base, identical copy, planted copy."""

    base: Path
    identical: Path
    trained: Path


def build_moe(item: MoeSpec, folder: Path) -> dict[str, MoePair]:
    """Save ``item``'s tiny model per expert and stacked, each with identical and planted copies (by layout)."""
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(item.config())
    saved = folder / "saved"
    model.save_pretrained(saved, safe_serialization=True)
    write_tokenizer(saved)
    base = read_weights(saved)
    generator = torch.Generator().manual_seed(1)
    trained = {}
    for name, tensor in base.items():
        noise = NOISE * tensor.float().pow(2).mean().sqrt() * torch.randn(tensor.shape, generator=generator)
        trained[name] = tensor + noise if tensor.ndim == 2 else tensor.clone()
    gate = trained[expert_name(item, EXPERT_LAYER, EXPERT, 0)]
    gate += rank_k(*gate.shape, EXPERT_RELATIVE * float(gate.norm()), 2, seed=3)
    router = trained[router_name(item, ROUTER_LAYER, False)]
    router += rank_k(*router.shape, ROUTER_RELATIVE * float(router.norm()), 1, seed=4)
    pairs = {}
    for layout in LAYOUTS:
        convert = (lambda tensors: stack(item, tensors)) if layout == "stacked" else dict
        root = folder / layout
        pairs[layout] = MoePair(
            write_copy(root / "base", saved, convert({n: t.clone() for n, t in base.items()})),
            write_copy(root / "identical", saved, convert({n: t.clone() for n, t in base.items()})),
            write_copy(root / "trained", saved, convert(trained)),
        )
    return pairs
