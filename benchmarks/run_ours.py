"""Run our weight-diff engine once, through the Python API, in this process; the harness times it.

Contract: ``python benchmarks/run_ours.py BASE_DIR TRAINED_DIR [--exact] [--top-k 32]
--planted planted.json --json OUT``. It resolves the pair with
``afterburn_core.checkpoints.resolve_pair`` and calls
``afterburn_core.weights.engine.compare_weights`` exactly as the CLI would,
then writes what the benchmark checks: how many tensors were reported (and
with which status), the ten largest relative changes, where the planted
edits rank, and the planted projection's ``low_rank`` / ``rank_90``.

It runs in its own process so that the harness's peak RSS is ours alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter


def _strip(name: str) -> str:
    return name.removeprefix("model.")


def pair_tensor_names(base_dir: str) -> list[str]:
    """Every tensor name stored in the base folder's model.safetensors (header only)."""
    from safetensors import safe_open

    with safe_open(f"{base_dir}/model.safetensors", framework="pt") as handle:
        return list(handle.keys())


def summarize(tensors, planted: dict, seconds: float, stored_names: list[str]) -> dict:
    """What the benchmark reads off our result (``tensors``: the ``TensorDiff`` records).

    ``tensors_covered`` counts the pair's stored tensors that got a record with
    a relative change (our names drop the ``model.`` prefix; a tied head adds
    one record of its own, so ``tensors_reported`` can exceed the stored count).
    """
    ranked = sorted(
        (diff for diff in tensors if diff.relative_change is not None),
        key=lambda diff: diff.relative_change,
        reverse=True,
    )
    order = [diff.name for diff in ranked]
    by_name = {diff.name: diff for diff in tensors}

    def rank_of(name: str) -> int | None:
        # Our names may be normalized (e.g. without "model."); match on the suffix.
        for index, candidate in enumerate(order, start=1):
            if candidate == name or name.endswith("." + candidate) or candidate.endswith("." + name):
                return index
        return None

    def find(name: str):
        for candidate, diff in by_name.items():
            if candidate == name or name.endswith("." + candidate) or candidate.endswith("." + name):
                return diff
        return None

    measured = {_strip(diff.name) for diff in ranked}
    covered = sum(1 for name in stored_names if _strip(name) in measured)
    projection, norm = planted["planted_projection"], planted["planted_norm"]
    projection_diff = find(projection)
    ranks = {"projection": rank_of(projection), "norm": rank_of(norm)}
    return {
        "engine_s": seconds,
        "tensors_reported": len(tensors),
        "tensors_covered": covered,
        "tensors_stored": len(stored_names),
        "statuses": dict(Counter(str(getattr(diff.status, "value", diff.status)) for diff in tensors)),
        "top_relative_change": [[diff.name, diff.relative_change] for diff in ranked[:10]],
        "planted_ranks": ranks,
        "planted_first": sorted(rank for rank in ranks.values() if rank is not None) == [1, 2],
        "planted_projection_low_rank": getattr(projection_diff, "low_rank", None),
        "planted_projection_rank_90": getattr(projection_diff, "rank_90", None),
        "planted_projection_spectrum_method": str(getattr(projection_diff, "spectrum_method", None)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_dir")
    parser.add_argument("trained_dir")
    parser.add_argument("--exact", action="store_true", help="full spectra (compare_weights(exact=True))")
    parser.add_argument("--top-k", type=int, default=32, help="compare_weights(top_k=…)")
    parser.add_argument("--planted", required=True, help="the pair's planted.json")
    parser.add_argument("--json", required=True, help="write the summary here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from afterburn_core.checkpoints import resolve_pair
    from afterburn_core.weights.engine import compare_weights

    base, trained = resolve_pair(args.base_dir, args.trained_dir)
    result = compare_weights(base, trained, top_k=args.top_k, exact=args.exact, device="cpu", seed=0)
    seconds = time.perf_counter() - started
    with open(args.planted) as handle:
        planted = json.load(handle)
    summary = summarize(result.tensors, planted, seconds, pair_tensor_names(args.base_dir))
    summary["exact"] = args.exact
    summary["top_k"] = args.top_k
    with open(args.json, "w") as handle:
        json.dump(summary, handle, indent=2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
