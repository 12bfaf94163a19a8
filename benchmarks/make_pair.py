"""Build a Qwen2.5-0.5B-shaped checkpoint pair for the weight-diff benchmark (nothing downloaded).

Contract: ``build_pair(out_dir, layers=24, seed=0) -> PairInfo`` writes
``out_dir/base`` and ``out_dir/trained`` as Hugging Face folders
(``config.json`` with the Qwen2 fields, one bf16 ``model.safetensors``) and
``out_dir/planted.json`` (what was planted, where, how big). The tensor names
and shapes are Qwen2.5-0.5B's: hidden 896, intermediate 4864, 14 heads / 2 KV
heads (head dim 64, so k/v are 128 rows), vocab 151936, q/k/v biases, tied
embeddings (no ``lm_head.weight``); 12 tensors a layer + embeddings + final
norm = 290 tensors at 24 layers.

What the pair holds (magnitudes relative to each tensor's own base ‖W‖_F):

- base: matrices N(0, 0.02²) (embeddings too), q/k/v biases N(0, 0.05²),
  norms 1 + N(0, 0.05²). Real weights have other spectra; a diff benchmark
  only needs ΔW's structure, and the timings depend on the shapes alone.
- background delta on every matrix: a rank-8 part with geometric singular
  value decay (ratio 0.7) and ‖·‖_F = 0.01 ‖W‖_F, plus iid noise with
  ‖·‖_F = 0.005 ‖W‖_F. On every 1-D tensor: iid noise 0.005 ‖W‖_F.
  The bf16 rounding of the trained copy adds ~1 ULP of full-rank noise, as a
  real bf16 fine-tune does, so many elements come out unchanged.
- planted edit 1: a rank-2 delta on ``layers.{L//2 - 1}.self_attn.o_proj``
  (layer 11 of 24) with singular values 0.08 and 0.06 ‖W‖_F (so ‖ΔW‖_F ≈
  0.1 ‖W‖_F, ten times the background) on top of the background.
- planted edit 2: ``layers.{3L//4 - 1}.post_attention_layernorm`` (layer 17
  of 24) multiplied by 1.5 (relative change 0.5), no background on it.

A tool that reports every tensor's relative change therefore ranks the norm
first and the o_proj second; everything else sits at ≈ 0.011–0.015.

Cost: streams tensor by tensor (the embedding in row blocks), so peak memory
is a few hundred MB whatever ``layers`` is; ~1 GB written per side at 24
layers; about a minute on 2 cores. It does not time or compare anything.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

HIDDEN = 896
INTERMEDIATE = 4864
HEADS = 14
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS  # 64
KV_DIM = KV_HEADS * HEAD_DIM  # 128
VOCAB = 151936

#: Base weight scales; 0.02 is Qwen2's initializer_range.
MATRIX_STD = 0.02
BIAS_STD = 0.05
NORM_JITTER = 0.05
#: Background delta, relative to each tensor's ‖W‖_F (see the module docstring).
LOW_RANK_RANK = 8
LOW_RANK_DECAY = 0.7
LOW_RANK_RELATIVE = 0.01
NOISE_RELATIVE = 0.005
#: Planted edits.
PLANTED_SINGULAR_RELATIVE = (0.08, 0.06)
PLANTED_NORM_SCALE = 1.5
#: Row block for generating big matrices; fixed, because the random stream depends on it.
BLOCK_ROWS = 16384


@dataclass(frozen=True)
class PairInfo:
    """Where the pair is and what was planted in it."""

    root: str
    base: str
    trained: str
    layers: int
    seed: int
    tensors: int
    planted_projection: str
    planted_norm: str
    planted_projection_relative_change: float
    planted_norm_relative_change: float


def qwen2_config(layers: int) -> dict:
    """Qwen2.5-0.5B's config.json with ``num_hidden_layers`` set to ``layers``."""
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": MATRIX_STD,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 32768,
        "max_window_layers": layers,
        "model_type": "qwen2",
        "num_attention_heads": HEADS,
        "num_hidden_layers": layers,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.1",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }


def tensor_shapes(layers: int) -> dict[str, tuple[int, ...]]:
    """Every tensor name of the model and its shape, in safetensors' (sorted) order."""
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,)}
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        shapes.update(
            {
                prefix + "input_layernorm.weight": (HIDDEN,),
                prefix + "post_attention_layernorm.weight": (HIDDEN,),
                prefix + "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
                prefix + "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
                prefix + "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
                prefix + "self_attn.q_proj.weight": (HIDDEN, HIDDEN),
                prefix + "self_attn.q_proj.bias": (HIDDEN,),
                prefix + "self_attn.k_proj.weight": (KV_DIM, HIDDEN),
                prefix + "self_attn.k_proj.bias": (KV_DIM,),
                prefix + "self_attn.v_proj.weight": (KV_DIM, HIDDEN),
                prefix + "self_attn.v_proj.bias": (KV_DIM,),
                prefix + "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
            }
        )
    return dict(sorted(shapes.items()))


def planted_names(layers: int) -> tuple[str, str]:
    """(rank-2 projection, ×1.5 norm) for a model of ``layers`` layers: layers 11 and 17 of 24."""
    if layers < 2:
        raise ValueError(f"--layers must be at least 2 (got {layers}): the two planted edits go in different layers.")
    return (
        f"model.layers.{layers // 2 - 1}.self_attn.o_proj.weight",
        f"model.layers.{3 * layers // 4 - 1}.post_attention_layernorm.weight",
    )


def _generator(seed: int, name: str) -> torch.Generator:
    # Per-tensor streams: a tensor's values do not depend on the layer count or on order.
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def _bf16_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()


def _write_header(handle, shapes: dict[str, tuple[int, ...]]) -> None:
    """safetensors header: 8-byte little-endian length, JSON padded with spaces to 8 bytes."""
    header: dict[str, dict] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = 2 * int(torch.Size(shape).numel())
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    handle.write(struct.pack("<Q", len(encoded)))
    handle.write(encoded)


def _matrix_blocks(name: str, shape: tuple[int, int], seed: int, planted: bool):
    """Yield (base_block, trained_block) fp32 row blocks of one matrix."""
    rows, cols = shape
    gen = _generator(seed, name)
    base_norm = MATRIX_STD * (rows * cols) ** 0.5
    decay = LOW_RANK_DECAY ** torch.arange(LOW_RANK_RANK, dtype=torch.float32)
    left = torch.randn(rows, LOW_RANK_RANK, generator=gen) * decay
    right = torch.randn(LOW_RANK_RANK, cols, generator=gen)
    # ‖L R‖_F² = tr(LᵀL R Rᵀ), exact without forming L R.
    low_rank_norm = float(torch.trace((left.T @ left) @ (right @ right.T))) ** 0.5
    left *= LOW_RANK_RELATIVE * base_norm / low_rank_norm
    noise_std = NOISE_RELATIVE * MATRIX_STD
    if planted:
        plant_left, _ = torch.linalg.qr(torch.randn(rows, 2, generator=gen))
        plant_right, _ = torch.linalg.qr(torch.randn(cols, 2, generator=gen))
        plant_left = plant_left * torch.tensor(PLANTED_SINGULAR_RELATIVE) * base_norm
    for start in range(0, rows, BLOCK_ROWS):
        stop = min(rows, start + BLOCK_ROWS)
        base = torch.randn(stop - start, cols, generator=gen) * MATRIX_STD
        trained = base + left[start:stop] @ right
        trained += torch.randn(stop - start, cols, generator=gen) * noise_std
        if planted:
            trained += plant_left[start:stop] @ plant_right.T
        yield base, trained


def _vector_pair(name: str, shape: tuple[int], seed: int, planted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    gen = _generator(seed, name)
    if name.endswith("norm.weight"):
        base = 1.0 + NORM_JITTER * torch.randn(shape, generator=gen)
    else:
        base = BIAS_STD * torch.randn(shape, generator=gen)
    if planted:
        return base, base * PLANTED_NORM_SCALE
    base_bf16 = base.to(torch.bfloat16).float()
    noise = torch.randn(shape, generator=gen)
    noise *= NOISE_RELATIVE * float(base_bf16.norm()) / float(noise.norm())
    return base, base_bf16 + noise


def _relative_change(base_sq: float, delta_sq: float) -> float:
    return (delta_sq / base_sq) ** 0.5


def build_pair(out_dir: Path, layers: int = 24, seed: int = 0, log=print) -> PairInfo:
    """Write base/, trained/ and planted.json under ``out_dir``; returns what was built."""
    out_dir = Path(out_dir)
    shapes = tensor_shapes(layers)
    projection, norm = planted_names(layers)
    measured: dict[str, float] = {}
    started = time.perf_counter()
    for side in ("base", "trained"):
        (out_dir / side).mkdir(parents=True, exist_ok=True)
        (out_dir / side / "config.json").write_text(json.dumps(qwen2_config(layers), indent=2) + "\n")
    partial = {side: out_dir / side / "model.safetensors.partial" for side in ("base", "trained")}
    with open(partial["base"], "wb") as base_file, open(partial["trained"], "wb") as trained_file:
        _write_header(base_file, shapes)
        _write_header(trained_file, shapes)
        for index, (name, shape) in enumerate(shapes.items()):
            base_sq = delta_sq = 0.0
            if len(shape) == 2:
                blocks = _matrix_blocks(name, shape, seed, planted=name == projection)
            else:
                blocks = [_vector_pair(name, shape, seed, planted=name == norm)]
            for base, trained in blocks:
                base16, trained16 = base.to(torch.bfloat16), trained.to(torch.bfloat16)
                base_file.write(_bf16_bytes(base16))
                trained_file.write(_bf16_bytes(trained16))
                if name in (projection, norm):
                    base_sq += float(base16.float().square().sum())
                    delta_sq += float((trained16.float() - base16.float()).square().sum())
            if name in (projection, norm):
                measured[name] = _relative_change(base_sq, delta_sq)
            if (index + 1) % 50 == 0:
                log(f"  built {index + 1}/{len(shapes)} tensors ({time.perf_counter() - started:.0f} s)")
    for side, path in partial.items():
        path.replace(out_dir / side / "model.safetensors")
    info = PairInfo(
        root=str(out_dir),
        base=str(out_dir / "base"),
        trained=str(out_dir / "trained"),
        layers=layers,
        seed=seed,
        tensors=len(shapes),
        planted_projection=projection,
        planted_norm=norm,
        planted_projection_relative_change=measured[projection],
        planted_norm_relative_change=measured[norm],
    )
    (out_dir / "planted.json").write_text(json.dumps(asdict(info), indent=2) + "\n")
    log(f"  pair with {layers} layers built in {time.perf_counter() - started:.0f} s: {out_dir}")
    return info


def default_pair_dir(work_dir: Path, layers: int, seed: int = 0) -> Path:
    return Path(work_dir) / f"qwen2.5-0.5b-shaped-L{layers}-s{seed}"


def ensure_pair(work_dir: Path, layers: int, seed: int = 0, log=print) -> PairInfo:
    """The pair for (layers, seed) under ``work_dir``, built if missing."""
    root = default_pair_dir(work_dir, layers, seed)
    manifest = root / "planted.json"
    if manifest.exists() and all((root / side / "model.safetensors").exists() for side in ("base", "trained")):
        return PairInfo(**json.loads(manifest.read_text()))
    log(f"building the {layers}-layer pair in {root} …")
    return build_pair(root, layers=layers, seed=seed, log=log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24, help="decoder layers (24 = Qwen2.5-0.5B)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the pair")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(__file__).resolve().parent / ".work", help="scratch folder"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the pair exists")
    args = parser.parse_args(argv)
    try:
        if args.force:
            info = build_pair(default_pair_dir(args.work_dir, args.layers, args.seed), args.layers, args.seed)
        else:
            info = ensure_pair(args.work_dir, args.layers, args.seed)
    except ValueError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(info), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
