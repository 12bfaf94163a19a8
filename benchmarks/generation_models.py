"""The models the generation benchmark runs: folders both venvs can load, built in seconds.

Contract: ``ensure_models(work_dir, log) -> dict[str, ModelSpec]`` with keys

- ``demo-base`` and ``demo-trained``: copies of the bundled demo pair
  (``afterburn_core/demo``; Llama, hidden 128, 4 layers, vocab 1024, ~1 M
  parameters, trained on a chat corpus, so it answers in a few dozen tokens and
  stops on EOS ``<|im_end|>``). The copies differ from the originals in
  ``tokenizer_config.json`` only, so that transformers 4.57 (the peer's venv)
  loads the tokenizer that transformers 5 saved: ``extra_special_tokens`` as a
  list becomes ``additional_special_tokens`` (4.57 expects a mapping there), and
  ``model_input_names`` is ``["input_ids", "attention_mask"]`` as in every Llama
  tokenizer (without it 4.57's fast tokenizer also returns ``token_type_ids``,
  which ``LlamaForCausalLM.generate`` rejects). Token ids are unchanged.
- ``wide``: a random-initialised Llama (hidden 512, 8 layers, 8 heads / 4 KV
  heads, intermediate 1408, the demo tokenizer; ~27 M parameters, seed 0) whose
  output row for EOS is zeroed, so EOS is never the argmax and every answer
  runs to ``max_new_tokens``: the compute-bound case where padding cannot
  differ between tools and only batching and per-step overhead do.

Every folder holds ``config.json``, ``generation_config.json`` (greedy, EOS 2,
pad 0), ``model.safetensors`` and the tokenizer files. ``ModelSpec`` carries
the EOS and pad ids the benchmark counts real tokens with. It times nothing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "afterburn_core" / "demo"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
#: The wide model's shape: Llama-like proportions (intermediate ≈ 2.75 × hidden, GQA 2:1)
#: at a size two shared CPU cores generate with in seconds per suite.
WIDE_SHAPE = {
    "hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8,
    "num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 512,
}
#: Bump when what ``_build_wide`` writes changes, so an old folder is rebuilt.
WIDE_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    """One model folder and the ids the benchmark counts real tokens with."""

    name: str
    path: str
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    parameters: int
    description: str


def _neutral_tokenizer_config(folder: Path) -> None:
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    elif isinstance(extra, dict):
        config["extra_special_tokens"] = extra
    config["model_input_names"] = ["input_ids", "attention_mask"]
    path.write_text(json.dumps(config, indent=2) + "\n")


def _copy_demo(name: str, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(DEMO_DIR / name, target)
    _neutral_tokenizer_config(target)


def _ids(folder: Path) -> tuple[tuple[int, ...], int]:
    generation = json.loads((folder / "generation_config.json").read_text())
    eos = generation["eos_token_id"]
    eos_ids = tuple(eos) if isinstance(eos, list) else (int(eos),)
    return eos_ids, int(generation.get("pad_token_id", eos_ids[0]))


def _parameters(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        for name in list(handle.keys()):
            shape = handle.get_slice(name).get_shape()
            count = 1
            for size in shape:
                count *= size
            total += count
    return total


def _build_wide(target: Path, tokenizer_source: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if target.exists():
        shutil.rmtree(target)
    demo_config = json.loads((DEMO_DIR / "base" / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=demo_config["vocab_size"], bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False, rope_theta=10000.0, **WIDE_SHAPE,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        # A zero row gives EOS the logit 0 while the largest of the other 1023 random
        # logits is positive: greedy never picks it, every answer is length-capped.
        model.lm_head.weight[config.eos_token_id].zero_()
    model.save_pretrained(str(target), safe_serialization=True)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0, do_sample=False).save_pretrained(str(target))
    for name in TOKENIZER_FILES:
        if (tokenizer_source / name).exists():
            shutil.copy2(tokenizer_source / name, target / name)
    (target / "benchmark-version.txt").write_text(f"{WIDE_VERSION}\n")


def ensure_models(work_dir: Path, log=print, with_wide: bool = True) -> dict[str, ModelSpec]:
    """The benchmark's model folders under ``work_dir/generation-models``; demo copies are refreshed every run."""
    root = Path(work_dir) / "generation-models"
    root.mkdir(parents=True, exist_ok=True)
    specs: dict[str, ModelSpec] = {}
    for name in ("base", "trained"):
        folder = root / f"demo-{name}"
        _copy_demo(name, folder)
        eos, pad = _ids(folder)
        specs[f"demo-{name}"] = ModelSpec(
            f"demo-{name}", str(folder), eos, pad, _parameters(folder),
            f"bundled demo {name} (Llama, hidden 128, 4 layers, vocab 1024; stops on EOS)",
        )
    if with_wide:
        folder = root / "wide"
        stamp = folder / "benchmark-version.txt"
        if not (stamp.exists() and stamp.read_text().strip() == str(WIDE_VERSION)):
            log(f"building the random-init wide Llama in {folder} …")
            _build_wide(folder, root / "demo-base")
        eos, pad = _ids(folder)
        specs["wide"] = ModelSpec(
            "wide", str(folder), eos, pad, _parameters(folder),
            "random-init Llama (hidden 512, 8 layers, 8/4 heads, vocab 1024; EOS row zeroed: never stops)",
        )
    return specs
