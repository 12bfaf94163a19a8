"""The floor: plain ``transformers`` batched greedy generation, the least work any tool must do.

Contract: ``python benchmarks/generation_floor.py --models A [B] --prompts
prompts.json --max-new-tokens N --batch-size K --threads T [--device D] --json OUT``. It
imports neither afterburn nor afterburn_core, so it runs in either venv: in
ours (transformers 5) it is the floor for our generator, in the peers'
(transformers 4.57) it shows what the transformers version alone changes.

Per model, one at a time: ``AutoTokenizer`` + ``AutoModelForCausalLM`` (fp32
on a CPU; on ``--device cuda`` the stored half dtype, else bf16, as our loader picks; eval); every prompt rendered as our generator renders it (the chat template
with one user turn and ``add_generation_prompt``, encoded without added
special tokens; ``User: …\\nAssistant:`` when there is no template); prompts
sorted by token length, in batches of K, LEFT padded with an attention mask;
``model.generate(max_new_tokens=N, do_sample=False, eos_token_id, pad_token_id)``
under ``torch.inference_mode``. Nothing else: no log-probs, no records, no decode.
Generation-only seconds cover rendering, encoding and generating.
"""

from __future__ import annotations

import argparse
import json
import time

PLAIN_PROMPT_TEMPLATE = "User: {text}\nAssistant:"


def _encode(tokenizer, text: str) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return list(tokenizer(PLAIN_PROMPT_TEMPLATE.format(text=text))["input_ids"])


def _generate(model, tokenizer, texts: list[str], max_new_tokens: int, batch_size: int, device: str = "cpu"):
    import torch

    eos_ids = model.generation_config.eos_token_id
    eos_ids = list(eos_ids) if isinstance(eos_ids, (list, tuple)) else [eos_ids]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    encoded = [_encode(tokenizer, text) for text in texts]
    order = sorted(range(len(encoded)), key=lambda index: (len(encoded[index]), index))
    new_token_ids: list[list[int] | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(encoded[index]) for index in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, index in enumerate(rows):
            ids = encoded[index]
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids):] = 1
        with torch.inference_mode():
            sequences = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=eos_ids, pad_token_id=pad_id,
            )
        for row, index in enumerate(rows):
            new_token_ids[index] = sequences[row, width:].tolist()
    return encoded, new_token_ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    started = time.perf_counter()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    with open(args.prompts) as handle:
        texts = [record["text"] for record in json.load(handle)]
    roles = ("base", "trained") if len(args.models) == 2 else ("model",)
    models = []
    for role, model_path in zip(roles, args.models):
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path).eval()
        if args.device == "cpu" and model.dtype != torch.float32:
            model = model.float()
        elif args.device != "cpu":
            model = model.to(args.device, model.dtype if model.dtype in (torch.float16, torch.bfloat16) else torch.bfloat16)
        generation_started = time.perf_counter()
        encoded, new_token_ids = _generate(model, tokenizer, texts, args.max_new_tokens, args.batch_size, args.device)
        models.append(
            {
                "role": role,
                "generation_seconds": time.perf_counter() - generation_started,
                "new_token_ids": new_token_ids,
                "prompt_token_ids": encoded,
                "claimed_tokens": None,
            }
        )
        del model
    payload = {
        "tool": f"floor (transformers {transformers.__version__})",
        "transformers": transformers.__version__,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "process_seconds": time.perf_counter() - started,
        "models": models,
    }
    with open(args.json, "w") as handle:
        json.dump(payload, handle)


if __name__ == "__main__":
    main()
