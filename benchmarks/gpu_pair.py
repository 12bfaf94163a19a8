"""Build a Qwen2-shaped pair as sharded bf16 safetensors, on a device, for the GPU benchmark (nothing downloaded).

Contract: ``python benchmarks/gpu_pair.py --shape qwen2.5-7b|smoke --device D --out DIR`` (or
``ensure_pair(shape, out_dir, device, log)``) writes ``DIR/base`` and ``DIR/trained`` as Hugging Face
folders — ``config.json`` (Qwen2ForCausalLM), ``generation_config.json`` (greedy), the bundled demo
tokenizer, ``model-0000i-of-0000N.safetensors`` shards and ``model.safetensors.index.json`` — and
``DIR/pair.json`` (the shape, the planted tensors, the build time). An existing pair of the same shape
and ``PAIR_VERSION`` is reused.

- ``qwen2.5-7b``: Qwen2.5-7B's config (hidden 3584, 28 layers, 28 heads / 4 KV heads, intermediate 18944,
  vocab 152064, untied ``lm_head``, q/k/v biases): 7.6 B parameters, 15.2 GB a side in 4 GiB shards.
- ``smoke``: the same architecture and tensor layout, 2 layers of width 128 and the demo tokenizer's vocab
  (1024), in 256 KiB shards so the sharded path is exercised; built on a CPU in a second.

Values (the scales are ``make_pair``'s, the CPU benchmark's pair): base matrices N(0, 0.02²), biases
N(0, 0.05²), norms 1 + N(0, 0.05²); the trained copy adds iid noise of 0.005 ‖W‖_F to every tensor and, on
``o_proj`` and ``mlp.down_proj`` of the layers at a quarter, half and three quarters of the depth, a
rank-4 change of 0.1 ‖W‖_F — twenty times the noise, so a diff must rank exactly those first. The demo
tokenizer's 1024 ids are a subset of the 7B vocabulary: prompts encode, answers may hold ids it cannot
spell (they decode to nothing), which no timing depends on. Random weights rarely pick EOS, so answers run
to ``max_new_tokens``.

Cost: one tensor pair on the device at a time, one shard a side in host memory; on a GPU the 7B pair is
bound by writing 30 GB. It times nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generation_models import DEMO_DIR, TOKENIZER_FILES
from make_pair import BIAS_STD, MATRIX_STD, NOISE_RELATIVE, NORM_JITTER

#: Bump when what ``build_pair`` writes changes, so an old folder is rebuilt.
PAIR_VERSION = 1
#: The planted change: rank and size relative to the tensor's ‖W‖_F (20x the noise, see the docstring).
PLANTED_RANK = 4
PLANTED_RELATIVE = 0.1
PLANTED_MODULES = ("self_attn.o_proj.weight", "mlp.down_proj.weight")
#: The demo tokenizer's EOS and pad ids (``afterburn_core/demo``).
DEMO_EOS_ID, DEMO_PAD_ID = 2, 0


@dataclass(frozen=True)
class Qwen2Shape:
    """The config fields that set every tensor's shape, and the shard size the checkpoint is cut into."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    shard_bytes: int
    max_positions: int


#: Qwen2.5-7B's config.json (Qwen/Qwen2.5-7B); 4 GiB shards as its own checkpoint has (4 files).
QWEN25_7B = Qwen2Shape("qwen2.5-7b", hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944,
                       vocab=152064, shard_bytes=4 * 1024**3, max_positions=32768)
#: The smallest pair of the same family: widths a CPU builds and diffs in seconds, heads of 32 (vLLM-CPU's
#: smallest head size), several shards.
SMOKE = Qwen2Shape("smoke", hidden=128, layers=2, heads=4, kv_heads=2, intermediate=352, vocab=1024,
                   shard_bytes=256 * 1024, max_positions=512)
SHAPES = {shape.name: shape for shape in (QWEN25_7B, SMOKE)}


def qwen2_config(shape: Qwen2Shape) -> dict:
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": shape.hidden, "intermediate_size": shape.intermediate, "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads, "num_key_value_heads": shape.kv_heads, "vocab_size": shape.vocab,
        "max_position_embeddings": shape.max_positions, "max_window_layers": shape.layers, "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "sliding_window": shape.max_positions, "use_sliding_window": False,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "attention_dropout": 0.0,
        "initializer_range": MATRIX_STD, "bos_token_id": DEMO_EOS_ID, "eos_token_id": DEMO_EOS_ID,
    }


def tensor_shapes(shape: Qwen2Shape) -> dict[str, tuple[int, ...]]:
    """Every tensor of the model and its shape, sorted by name (the order shards are filled in)."""
    head_dim = shape.hidden // shape.heads
    kv = shape.kv_heads * head_dim
    h, i = shape.hidden, shape.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (shape.vocab, h), "model.norm.weight": (h,), "lm_head.weight": (shape.vocab, h),
    }
    for layer in range(shape.layers):
        prefix = f"model.layers.{layer}."
        shapes.update({
            prefix + "input_layernorm.weight": (h,), prefix + "post_attention_layernorm.weight": (h,),
            prefix + "mlp.gate_proj.weight": (i, h), prefix + "mlp.up_proj.weight": (i, h),
            prefix + "mlp.down_proj.weight": (h, i),
            prefix + "self_attn.q_proj.weight": (h, h), prefix + "self_attn.q_proj.bias": (h,),
            prefix + "self_attn.k_proj.weight": (kv, h), prefix + "self_attn.k_proj.bias": (kv,),
            prefix + "self_attn.v_proj.weight": (kv, h), prefix + "self_attn.v_proj.bias": (kv,),
            prefix + "self_attn.o_proj.weight": (h, h),
        })
    return dict(sorted(shapes.items()))


def planted_names(shape: Qwen2Shape) -> list[str]:
    layers = sorted({shape.layers // 4, shape.layers // 2, 3 * shape.layers // 4} & set(range(shape.layers)))
    return [f"model.layers.{layer}.{module}" for layer in layers for module in PLANTED_MODULES]


def shard_plan(shapes: dict[str, tuple[int, ...]], shard_bytes: int) -> list[list[str]]:
    """Consecutive tensors grouped into shards of at most ``shard_bytes`` (a bigger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    size = 0
    for name, tensor_shape in shapes.items():
        nbytes = 2 * _numel(tensor_shape)
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def _numel(tensor_shape: tuple[int, ...]) -> int:
    count = 1
    for size in tensor_shape:
        count *= size
    return count


def _tensor_pair(name: str, tensor_shape: tuple[int, ...], planted: bool, device, seed: int):
    """(base, trained) of one tensor, bf16 on ``device``."""
    import torch

    # Per-tensor streams: a tensor's values depend on its name and the seed only.
    generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))

    def normal(*size: int) -> torch.Tensor:
        return torch.randn(*size, generator=generator, device=device)

    if name.endswith("norm.weight"):
        base = 1.0 + NORM_JITTER * normal(*tensor_shape)
    else:
        base = (BIAS_STD if name.endswith(".bias") else MATRIX_STD) * normal(*tensor_shape)
    base = base.to(torch.bfloat16).float()
    base_norm = float(base.norm())
    noise = normal(*tensor_shape)
    trained = base + noise * (NOISE_RELATIVE * base_norm / float(noise.norm()))
    del noise
    if planted:
        change = normal(tensor_shape[0], PLANTED_RANK) @ normal(PLANTED_RANK, tensor_shape[1])
        trained += change * (PLANTED_RELATIVE * base_norm / float(change.norm()))
        del change
    return base.to(torch.bfloat16), trained.to(torch.bfloat16)


def build_pair(shape: Qwen2Shape, out_dir: Path, device: str = "cpu", seed: int = 0, log=print) -> dict:
    """Write base/, trained/ and pair.json under ``out_dir``; returns pair.json's content."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    started = time.perf_counter()
    shapes = tensor_shapes(shape)
    planted = planted_names(shape)
    plan = shard_plan(shapes, shape.shard_bytes)
    sides = {side: out_dir / side for side in ("base", "trained")}
    for folder in sides.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(qwen2_config(shape), indent=2) + "\n")
        (folder / "generation_config.json").write_text(json.dumps(
            {"do_sample": False, "eos_token_id": DEMO_EOS_ID, "pad_token_id": DEMO_PAD_ID}, indent=2) + "\n")
        for file_name in TOKENIZER_FILES:
            shutil.copy(DEMO_DIR / "base" / file_name, folder / file_name)
    weight_map = {}
    for index, names in enumerate(plan, start=1):
        file_name = f"model-{index:05d}-of-{len(plan):05d}.safetensors"
        tensors: dict[str, dict] = {"base": {}, "trained": {}}
        for name in names:
            base, trained = _tensor_pair(name, shapes[name], name in planted, device, seed)
            tensors["base"][name], tensors["trained"][name] = base.cpu(), trained.cpu()
            weight_map[name] = file_name
        for side, folder in sides.items():
            save_file(tensors[side], str(folder / file_name), metadata={"format": "pt"})
        log(f"  shard {index}/{len(plan)} written ({time.perf_counter() - started:.0f} s)")
    total = sum(2 * _numel(tensor_shape) for tensor_shape in shapes.values())
    for folder in sides.values():
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1) + "\n")
    info = {
        "version": PAIR_VERSION, "shape": asdict(shape), "seed": seed, "device": str(device),
        "base": str(sides["base"]), "trained": str(sides["trained"]), "tensors": len(shapes),
        "parameters": total // 2, "bytes_per_side": total, "shards": len(plan), "planted": planted,
        "eos_token_ids": [DEMO_EOS_ID], "build_s": time.perf_counter() - started,
    }
    (out_dir / "pair.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def ensure_pair(shape: Qwen2Shape, out_dir: Path, device: str = "cpu", log=print) -> dict:
    """The pair of ``shape`` under ``out_dir``, built if missing or of another version."""
    manifest = Path(out_dir) / "pair.json"
    if manifest.exists():
        info = json.loads(manifest.read_text())
        if info.get("version") == PAIR_VERSION and info.get("shape") == asdict(shape):
            return info
    log(f"building the {shape.name}-shaped pair in {out_dir} on {device} …")
    return build_pair(shape, out_dir, device, log=log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default=QWEN25_7B.name)
    parser.add_argument("--device", default="cpu", help="where the random weights are drawn (cuda: much faster)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the pair")
    args = parser.parse_args(argv)
    print(json.dumps(ensure_pair(SHAPES[args.shape], args.out, args.device), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
