"""Run our batched generation once, in this process, through the Python API; the harness times it.

Contract: ``python benchmarks/generation_ours.py --models A [B] --suites s1,s2
--max-new-tokens N --batch-size K --threads T [--backend B] [--device D] --json OUT``.
With two models (a pair) it calls ``afterburn_core.generation.pipeline.generate_pair``
exactly as ``afterburn behaviour`` does (base loaded, generated, released; then
trained); with one it opens the backend's engine (``backends.open_engine``) and
generates. ``--batch-size 0`` is our default (chosen from free memory; vLLM
schedules its own batches). ``--backend`` is ``AnalysisConfig.backend``
(default ``transformers``; ``vllm`` needs an interpreter with vLLM installed).

It writes, per model: the generated token ids of every prompt (ours are
already cut after the first EOS), our own ``n_tokens`` (the "claimed" count),
the stop reasons, the prompt token ids, and the generation-only seconds (the
pipeline's ``seconds_base`` / ``seconds_trained``: prompt encoding and
generation, no loading); plus the batch size actually used (the first
progress report's ``done``). The benchmark counts real tokens from the ids.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--suites", required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", choices=("transformers", "vllm", "auto"), default="transformers")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    started = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    from afterburn_core.checkpoints import resolve
    from afterburn_core.config import AnalysisConfig

    suites = tuple(args.suites.split(","))
    config = AnalysisConfig(device=args.device, suites=suites, max_new_tokens=args.max_new_tokens,
                            batch_size=args.batch_size, backend=args.backend)
    batch_sizes: list[int] = []

    def progress(done: int, _total: int, _message: str) -> None:
        if not batch_sizes:
            batch_sizes.append(done)

    if len(args.models) == 2:
        from afterburn_core.generation.pipeline import generate_pair

        result = generate_pair(resolve(args.models[0]), resolve(args.models[1]), config, progress)
        runs = [("base", result.base, result.seconds_base), ("trained", result.trained, result.seconds_trained)]
    else:
        from afterburn_core.device import choose_device
        from afterburn_core.generation.backends import chosen_backend, open_engine
        from afterburn_core.generation.generator import GenerationSettings
        from afterburn_core.generation.suites import load_suites

        prompts = [prompt for suite in load_suites(suites) for prompt in suite.prompts]
        device = choose_device(args.device)
        engine = open_engine(chosen_backend(args.backend, device), resolve(args.models[0]), device, config)
        settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        generation_started = time.perf_counter()
        completions = engine.generate(prompts, settings, progress)
        runs = [("model", completions, time.perf_counter() - generation_started)]
        engine.release()

    payload = {
        "tool": "ours",
        "backend": args.backend,
        "batch_size": batch_sizes[0] if batch_sizes else None,
        "threads": torch.get_num_threads(),
        "process_seconds": time.perf_counter() - started,
        "models": [
            {
                "role": role,
                "generation_seconds": seconds,
                "new_token_ids": [list(c.output_token_ids) for c in completions],
                "prompt_token_ids": [list(c.prompt_token_ids) for c in completions],
                "claimed_tokens": [c.n_tokens for c in completions],
                "stop_reasons": [c.stop_reason for c in completions],
            }
            for role, completions, seconds in runs
        ],
    }
    with open(args.json, "w") as handle:
        json.dump(payload, handle)


if __name__ == "__main__":
    main()
