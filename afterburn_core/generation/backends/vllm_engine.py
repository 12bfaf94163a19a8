"""The vLLM engine: generation for models that need a GPU or several (``--backend vllm``).

What it keeps equal to the transformers engine (``generator``), so stored answers mean the same:

- prompts are rendered and tokenized by the checkpoint's own tokenizer through ``generator.encode_prompts``
  and handed to vLLM as token ids (``TokensPrompt``): one chat template, applied once, by our code;
- the model's ``generation_config.json`` is ignored (``generation_config="vllm"``), as ``generator`` swaps in
  a neutral one: only ``GenerationSettings`` decide; top-k off, no penalties;
- it stops on the same EOS set (``loading.generation_eos_ids``), and ``completion_from_tokens`` cuts, counts
  and decodes exactly as for transformers;
- each chosen token's log-probability is read from the raw logits (vLLM's ``raw_logprobs`` mode, before
  temperature and top-p), as ``generator`` records them;
- the dtype is ``loading.model_dtype``'s: fp32 on a CPU, the stored half dtype (else bf16) on CUDA.

Greedy answers are therefore equal token for token (the vllm test lane checks it on the demo pair and an
adapter). Sampled answers are not: vLLM seeds each request (``seed`` + the prompt's index), transformers each
batch. A LoRA adapter is served by vLLM's LoRA support on its base (``enable_lora``); ``adapter=False``
answers without the adapter's request. ``tensor_parallel_size`` and ``pipeline_parallel_size`` are passed on;
a single-device run keeps the engine in this process (no worker processes to spawn, so it runs from a plain
script, a notebook or the dashboard's worker alike).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from afterburn_core.errors import BadCheckpoint, BadInput
from afterburn_core.generation.types import Completion, Prompt

#: Prompts handed to vLLM per call: it schedules them itself (continuous batching), so a chunk only sets how
#: often progress is reported and a cancel is seen; 256 keeps a GPU's batch full and a CPU's reports frequent.
CHUNK_PROMPTS = 256
#: KV-cache space on a CPU when the user set none (GiB, vLLM's ``VLLM_CPU_KVCACHE_SPACE``): vLLM-CPU's own
#: default takes a large share of RAM; suites of short answers need a small fraction of one GiB.
CPU_KV_CACHE_GIB = "1"
#: peft's default ``r`` (an adapter_config.json that names none) and vLLM's smallest ``max_lora_rank``.
DEFAULT_LORA_RANK, MIN_LORA_RANK = 8, 8
#: The LoRA request's name and integer id (one adapter per engine; vLLM needs an id ≥ 1).
ADAPTER_NAME, ADAPTER_ID = "adapter", 1


@dataclass
class _Side:
    """What ``generator.completion_from_tokens`` reads of a loaded model: its tokenizer and EOS set."""

    checkpoint: object
    tokenizer: object
    eos_token_ids: tuple[int, ...]


@dataclass
class VllmEngine:
    llm: object
    side: _Side
    adapter_request: object | None
    max_model_len: int
    chat_template: bool

    @classmethod
    def open(cls, checkpoint, device, config) -> VllmEngine:
        from afterburn_core.generation.generator import has_chat_template
        from afterburn_core.generation.loading import generation_eos_ids, load_tokenizer

        model = checkpoint.adapter_base if checkpoint.kind == "adapter" else checkpoint
        _check_loadable(checkpoint, model)
        tokenizer = load_tokenizer(checkpoint, trust_remote_code=config.trust_remote_code)
        side = _Side(checkpoint, tokenizer, generation_eos_ids(checkpoint, tokenizer))
        max_model_len = _max_model_len(model)
        llm = _start(model, checkpoint, device, config, max_model_len)
        request = None
        if checkpoint.kind == "adapter":
            from vllm.lora.request import LoRARequest

            request = LoRARequest(ADAPTER_NAME, ADAPTER_ID, str(checkpoint.root))
        return cls(llm, side, request, max_model_len, has_chat_template(tokenizer))

    def generate(self, prompts: Sequence[Prompt], settings, progress=None, *, adapter: bool = True) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from afterburn_core.generation.generator import completion_from_tokens, encode_prompts

        encoded = encode_prompts(self.side.tokenizer, [prompt.text for prompt in prompts],
                                 checkpoint=self.side.checkpoint.reference)
        for prompt, ids in zip(prompts, encoded):
            if len(ids) >= self.max_model_len:
                raise BadInput(f"prompt {prompt.suite}/{prompt.prompt_id} is {len(ids)} tokens, past the "
                               f"{self.max_model_len} the model takes; shorten it or use --backend transformers")
        request = self.adapter_request if adapter else None
        completions: list[Completion] = []
        for start in range(0, len(prompts), CHUNK_PROMPTS):
            chunk = encoded[start:start + CHUNK_PROMPTS]
            params = [SamplingParams(
                max_tokens=settings.max_new_tokens, temperature=float(settings.temperature),
                top_p=float(settings.top_p) if not settings.greedy else 1.0, seed=settings.seed + start + offset,
                stop_token_ids=list(self.side.eos_token_ids), logprobs=0, detokenize=False,
            ) for offset in range(len(chunk))]
            started = time.perf_counter()
            outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in chunk], params,
                                        use_tqdm=False, lora_request=request)
            share = (time.perf_counter() - started) / max(len(chunk), 1)
            for ids, output in zip(chunk, outputs):
                answer = output.outputs[0]
                tokens = list(answer.token_ids)
                logprobs = [step[token].logprob for token, step in zip(tokens, answer.logprobs or ())]
                completions.append(completion_from_tokens(self.side, ids, tokens, logprobs, share))
            if progress is not None:
                done = start + len(chunk)
                progress(done, len(prompts), f"generated {done}/{len(prompts)} prompts with "
                                             f"{self.side.checkpoint.reference} (vLLM)")
        return completions

    def release(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown is not None:
            shutdown()
        self.llm = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _check_loadable(checkpoint, model) -> None:
    """vLLM reads a model folder with its config.json; anything else is one line pointing at transformers."""
    from afterburn_core.generation.backends import vllm_serves

    if not vllm_serves(checkpoint):
        raise BadCheckpoint(
            f"{checkpoint.reference}: the vllm backend loads model folders of safetensors with their config.json "
            f"(this is a {model.weight_format} {model.kind.replace('_', ' ')}); use --backend transformers"
        )


def _max_model_len(model) -> int:
    """The context vLLM plans its cache for: the model's own limit (vLLM refuses more). A prompt past it is an
    error before generating; an answer reaching it stops there ("length"), where transformers would go on."""
    import json

    config = json.loads(Path(model.config_path).read_text(encoding="utf-8"))
    text_config = config.get("text_config", config)
    return int(text_config.get("max_position_embeddings") or text_config.get("n_positions") or 4096)


def _start(model, checkpoint, device, config, max_model_len: int):
    """The ``vllm.LLM`` for ``model`` (the adapter's base for an adapter), in this process when it fits one
    device."""
    from afterburn_core.generation.loading import model_dtype

    single = config.tensor_parallel_size * config.pipeline_parallel_size == 1
    if getattr(device, "type", str(device)) == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
    if single:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    options = {}
    adapter = checkpoint.description.adapter if checkpoint.kind == "adapter" else None
    if adapter is not None:
        # Read once at resolution; vLLM sizes its LoRA buffers by the largest rank any module uses.
        ranks = [adapter.rank or DEFAULT_LORA_RANK, *(rank for _, rank in adapter.rank_pattern)]
        options.update(enable_lora=True, max_loras=1, max_lora_rank=max(*ranks, MIN_LORA_RANK))
    dtype = model_dtype(model.description.torch_dtype, device)
    try:
        return LLM(
            model=str(model.root), tokenizer=str(model.root), dtype=str(dtype).removeprefix("torch."),
            max_model_len=max_model_len, seed=config.seed, trust_remote_code=config.trust_remote_code,
            tensor_parallel_size=config.tensor_parallel_size, pipeline_parallel_size=config.pipeline_parallel_size,
            distributed_executor_backend="uni" if single else None, generation_config="vllm",
            enforce_eager=getattr(device, "type", str(device)) == "cpu", **options,
        )
    except (ValueError, RuntimeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadCheckpoint(f"{checkpoint.reference} cannot be served by vLLM: {first}") from None
