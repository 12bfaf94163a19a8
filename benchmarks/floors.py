"""The floors: the least work any weight-diff tool must do, each run as its own process.

Contract: ``python benchmarks/floors.py STEP BASE TRAINED [--top-k K] [--device D] [--json OUT]``,
BASE and TRAINED each a ``.safetensors`` file or a folder of shards (every
``*.safetensors`` in it), with STEP one of (each includes the one before it, except that ``gram``
builds on ``cheap``, not on ``lowrank``):

- ``read``    — open both safetensors files and read every tensor once.
- ``cheap``   — + fp32 ΔW and the cheap metrics of every tensor: ‖W‖_F,
  ‖ΔW‖_F, relative change, cosine, max |ΔW|, fraction unchanged.
- ``lowrank`` — + ``torch.svd_lowrank(ΔW, q=K+10, niter=2)`` of every 2-D ΔW
  (the randomized top-K spectrum; K = our default top_k = 32).
- ``gram``    — + eigenvalues (``torch.linalg.eigvalsh``) of the smaller Gram
  matrix of every 2-D ΔW in fp64: the full spectrum, as ``--exact`` needs it.

How, as a real tool would: each tensor is read through its own ``safe_open``
(so resident file pages never add up to the whole model), and a tensor whose
fp32 copy exceeds ``BLOCK_BYTES`` (the 151936×896 embedding) is read in row
blocks: the metrics and the fp64 Gram accumulate over blocks; only the
randomized step holds the whole fp32 ΔW, because ``svd_lowrank`` needs it.
Torch uses its default thread count (the machine's cores). ``--device cuda``
(``gpu.py``) moves each block there as read and computes there, as our
``--device cuda`` does; the clock stops after the device has finished.

It prints, and writes with ``--json``, the step's own compute seconds, the
tensor counts, and the five largest relative changes (so the rows can be
checked against each other). It does not time itself as a process: the
harness does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open

STEPS = ("read", "cheap", "lowrank", "gram")
#: Largest fp32 block held at once (64 MiB): the embedding is read in 18 blocks of ≤ 16384 rows.
BLOCK_BYTES = 64 * 1024 * 1024
#: ``svd_lowrank``'s oversampling and power iterations: the settings the issue's targets name.
OVERSAMPLE = 10
NITER = 2


def _shard_files(path: str) -> list[str]:
    """The safetensors files of one side: the file itself, or every shard in the folder."""
    if Path(path).is_dir():
        return sorted(str(shard) for shard in Path(path).glob("*.safetensors"))
    return [path]


def _tensor_shapes(path: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor of one side: name -> (shape, the file holding it)."""
    shapes = {}
    for shard in _shard_files(path):
        with safe_open(shard, framework="pt") as handle:
            shapes.update({name: (tuple(handle.get_slice(name).get_shape()), shard) for name in list(handle.keys())})
    return shapes


def _row_blocks(base_path: str, trained_path: str, name: str):
    """Yield (base, trained) row blocks of one tensor in the stored dtype; one block unless it is large.

    Each block is read through its own pair of ``safe_open`` handles: a handle
    keeps the pages it touched resident (they count in RSS) until it closes.
    """
    with safe_open(base_path, framework="pt") as base_file, safe_open(trained_path, framework="pt") as trained_file:
        shape = base_file.get_slice(name).get_shape()
        numel = 1
        for size in shape:
            numel *= size
        if len(shape) < 2 or numel * 4 <= BLOCK_BYTES:
            whole = base_file.get_tensor(name), trained_file.get_tensor(name)
    if len(shape) < 2 or numel * 4 <= BLOCK_BYTES:
        yield whole
        return
    rows = max(1, BLOCK_BYTES // (4 * (numel // shape[0])))
    for start in range(0, shape[0], rows):
        stop = min(shape[0], start + rows)
        with safe_open(base_path, framework="pt") as base_file, safe_open(trained_path, framework="pt") as trained_file:
            block = base_file.get_slice(name)[start:stop], trained_file.get_slice(name)[start:stop]
        yield block


def run_step(step: str, base_path: str, trained_path: str, top_k: int = 32, device: str = "cpu") -> dict:
    """Do ``step`` over every tensor of the pair on ``device``; returns what it found."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; choose one of {', '.join(STEPS)}")
    torch.manual_seed(0)
    started = time.perf_counter()
    relative_changes: dict[str, float] = {}
    spectra = 0
    shapes = _tensor_shapes(base_path)
    trained_files = {name: shard for name, (_shape, shard) in _tensor_shapes(trained_path).items()}
    for name, (full_shape, base_file) in shapes.items():
        base_sq = delta_sq = trained_sq = dot = 0.0
        max_abs = 0.0
        unchanged = count = 0
        # The whole fp32 ΔW, filled block by block (svd_lowrank needs it at once).
        delta_whole = torch.empty(full_shape, device=device) if step == "lowrank" and len(full_shape) == 2 else None
        gram: torch.Tensor | None = None
        row = 0
        for base, trained in _row_blocks(base_file, trained_files[name], name):
            if step == "read":
                continue
            # Stored dtype over the bus, fp32 on the device: as our streaming reader does.
            base, trained = base.to(device).float(), trained.to(device).float()
            delta = trained - base
            base_sq += float(base.square().sum())
            trained_sq += float(trained.square().sum())
            delta_sq += float(delta.square().sum())
            dot += float((base * trained).sum())
            max_abs = max(max_abs, float(delta.abs().max()))
            unchanged += int((delta == 0).sum())
            count += delta.numel()
            if delta.dim() < 2:
                continue
            if delta_whole is not None:
                delta_whole[row : row + delta.shape[0]] = delta
                row += delta.shape[0]
            elif step == "gram":
                wide = delta.shape[0] < delta.shape[1]
                delta64 = delta.double()
                block_gram = delta64 @ delta64.T if wide else delta64.T @ delta64
                gram = block_gram if gram is None else gram + block_gram
        if step == "read":
            continue
        relative_changes[name] = (delta_sq / base_sq) ** 0.5 if base_sq else float("inf")
        # Computed only to pay their cost, as a tool does; the floor reports just the ranking.
        _cosine = dot / ((base_sq * trained_sq) ** 0.5 or 1.0)
        _fraction_unchanged = unchanged / max(count, 1)
        if delta_whole is not None:
            q = min(top_k + OVERSAMPLE, *full_shape)
            _u, _singular_values, _v = torch.svd_lowrank(delta_whole, q=q, niter=NITER)
            del _u, _v, delta_whole
            spectra += 1
        elif step == "gram" and gram is not None:
            eigenvalues = torch.linalg.eigvalsh(gram)
            _singular_values = eigenvalues.clamp_min(0).sqrt().flip(0)
            spectra += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    ranked = sorted(relative_changes.items(), key=lambda item: item[1], reverse=True)
    return {
        "step": step,
        "device": device,
        "compute_s": time.perf_counter() - started,
        "tensors": len(shapes),
        "spectra": spectra,
        "top_relative_change": [[name, value] for name, value in ranked[:5]],
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("base_file", help="base model.safetensors, or its folder of shards")
    parser.add_argument("trained_file", help="trained model.safetensors, or its folder of shards")
    parser.add_argument("--top-k", type=int, default=32, help="k of the randomized step (q = k + 10)")
    parser.add_argument("--device", default="cpu", help="where to compute: cpu (default) or cuda")
    parser.add_argument("--json", help="write the result here as well")
    args = parser.parse_args(argv)
    result = run_step(args.step, args.base_file, args.trained_file, top_k=args.top_k, device=args.device)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
