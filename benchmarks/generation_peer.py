"""Run afterburn 0.6.3's generation the way its ``behaviour`` command does; run with the PEERS' venv python.

Contract: ``peers-venv/bin/python benchmarks/generation_peer.py --models A [B]
--prompts prompts.json --max-new-tokens N --threads T --json OUT``.

It repeats phases 1-2 of afterburn 0.6.3's ``BehaviourAnalyser.run``
(``afterburn/behaviour/analyser.py``): ``auto_detect_device(force_device="cpu")``,
then per model ``ModelLoader.load_model`` + ``load_tokenizer`` (the trained
one with the base as tokenizer fallback), ``PromptRunner(model, tokenizer,
device, max_new_tokens=N, batch_size=4, temperature=0.0, collect_logits=False,
top_k_probs=5)`` — the analyser's defaults except ``max_new_tokens`` (512
there; N here, the same cap every tool gets) — ``run_suite(prompts)``, then
``unload_model``. The prompts are ours (``prompts.json``: id, text, category),
passed as its ``Prompt`` records, so every tool answers the same texts.

The runner returns only decoded text and its own ``output_tokens`` (the
padded width of the batch's generated block). To count real tokens this
script wraps the model's ``generate`` on the instance and keeps what it
returned (the batch's sequences; no change to what it computes) and cuts
each row after its input width; the benchmark counts up to the first EOS.
Generation-only seconds are the time around ``run_suite``.
"""

from __future__ import annotations

import argparse
import gc
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    started = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    from afterburn.device import auto_detect_device
    from afterburn.loading.model_loader import ModelLoader
    from afterburn.prompts.runner import PromptRunner
    from afterburn.types import Prompt

    with open(args.prompts) as handle:
        records = json.load(handle)
    prompts = [Prompt(id=record["id"], text=record["text"], category=record["category"]) for record in records]
    device_config = auto_detect_device(force_device="cpu")
    loader = ModelLoader(device_config)
    roles = ("base", "trained") if len(args.models) == 2 else ("model",)
    models = []
    for role, model_path in zip(roles, args.models):
        model = loader.load_model(model_path)
        fallback = args.models[0] if role == "trained" else None
        tokenizer = loader.load_tokenizer(model_path, fallback_model_id=fallback)
        runner = PromptRunner(
            model, tokenizer, device_config, max_new_tokens=args.max_new_tokens,
            batch_size=4, temperature=0.0, collect_logits=False, top_k_probs=5,
        )
        returned: list = []
        original_generate = model.generate

        def recording_generate(*call_args, _original=original_generate, _returned=returned, **kwargs):
            output = _original(*call_args, **kwargs)
            _returned.append((kwargs["input_ids"].shape[1], output))
            return output

        model.generate = recording_generate
        generation_started = time.perf_counter()
        results = runner.run_suite(prompts)
        seconds = time.perf_counter() - generation_started
        new_token_ids = [row[width:].tolist() for width, output in returned for row in output]
        models.append(
            {
                "role": role,
                "generation_seconds": seconds,
                "new_token_ids": new_token_ids,
                "claimed_tokens": [result.output_tokens for result in results],
                "texts": [result.output_text for result in results],
                "padding_side": tokenizer.padding_side,
                "batch_size": runner.batch_size,
            }
        )
        loader.unload_model(model)
        del model, runner, tokenizer
        gc.collect()

    payload = {
        "tool": "afterburn 0.6.3",
        "batch_size": models[0]["batch_size"],
        "threads": torch.get_num_threads(),
        "process_seconds": time.perf_counter() - started,
        "models": models,
    }
    with open(args.json, "w") as handle:
        json.dump(payload, handle)


if __name__ == "__main__":
    main()
