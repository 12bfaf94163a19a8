"""Builders of tiny, real checkpoints in temporary folders, for any test that needs one.

Every builder writes the files the real tools write (``save_pretrained`` of
transformers and peft, ``torch.save``, the Hugging Face cache layout of
huggingface_hub) so tests exercise the same bytes a user has on disk. The
models are tiny (hidden 16, 2 layers, vocab 64: ~10 k parameters) so a whole
set is built in well under a second once transformers is imported.

Use from a test module (pytest puts ``tests/`` on ``sys.path``)::

    from checkpoint_factories import build_tiny_llama, build_lora_adapter
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import torch

TINY_HIDDEN = 16
TINY_LAYERS = 2
TINY_VOCAB = 64


def tiny_llama_config(**overrides):
    """A ``LlamaConfig`` small enough to build and save in milliseconds."""
    from transformers import LlamaConfig

    settings = dict(
        hidden_size=TINY_HIDDEN,
        intermediate_size=2 * TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=TINY_VOCAB,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


def tiny_llama_model(seed: int = 0, **config_overrides):
    """A randomly initialised tiny ``LlamaForCausalLM`` (deterministic for a seed)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(**config_overrides))
    model.eval()
    return model


def write_tiny_tokenizer(folder: Path) -> None:
    """Save a real 64-token word-level fast tokenizer (tokenizer.json + tokenizer_config.json)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
    vocab.update({f"w{index}": index for index in range(4, TINY_VOCAB)})
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.save_pretrained(str(folder))


def build_tiny_llama(
    folder: Path, *, seed: int = 0, max_shard_size: str | None = None, tokenizer: bool = True, model=None
) -> Path:
    """Save a tiny Llama with ``save_pretrained`` (one ``model.safetensors``, or shards + index
    when ``max_shard_size`` is given, e.g. ``"4KB"``) and, by default, a tokenizer."""
    folder = Path(folder)
    model = model if model is not None else tiny_llama_model(seed)
    if max_shard_size is None:
        model.save_pretrained(str(folder))
    else:
        model.save_pretrained(str(folder), max_shard_size=max_shard_size)
    if tokenizer:
        write_tiny_tokenizer(folder)
    return folder


def build_pickle_checkpoint(folder: Path, *, seed: int = 0, shards: int = 1) -> Path:
    """A tiny Llama saved the pre-safetensors way: config.json + ``pytorch_model.bin`` written by
    ``torch.save`` (zip format), or ``pytorch_model-0000k-of-0000n.bin`` shards + index."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_llama_model(seed)
    model.config.save_pretrained(str(folder))
    state_dict = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    if shards == 1:
        torch.save(state_dict, folder / "pytorch_model.bin")
        return folder
    names = sorted(state_dict)
    weight_map: dict[str, str] = {}
    for shard_index in range(shards):
        shard_name = f"pytorch_model-{shard_index + 1:05d}-of-{shards:05d}.bin"
        shard_names = names[shard_index::shards]
        torch.save({name: state_dict[name] for name in shard_names}, folder / shard_name)
        weight_map.update({name: shard_name for name in shard_names})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))
    return folder


def build_lora_adapter(
    base_folder: Path, adapter_folder: Path, *, seed: int = 1, rank: int = 4, base_model_name_or_path: str | None = None
) -> Path:
    """A real peft LoRA adapter (q_proj, v_proj) of the tiny model in ``base_folder``, with
    non-zero factors. ``base_model_name_or_path`` overrides what adapter_config.json records
    (peft writes the absolute base folder)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    base_model = LlamaForCausalLM.from_pretrained(str(base_folder))
    torch.manual_seed(seed)
    lora_config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base_model, lora_config)
    peft_model.save_pretrained(str(adapter_folder))
    if base_model_name_or_path is not None:
        set_adapter_base(adapter_folder, base_model_name_or_path)
    return Path(adapter_folder)


def set_adapter_base(adapter_folder: Path, base_model_name_or_path: str | None) -> None:
    """Rewrite ``base_model_name_or_path`` in an adapter's adapter_config.json (None removes it)."""
    config_file = Path(adapter_folder) / "adapter_config.json"
    adapter_config = json.loads(config_file.read_text())
    if base_model_name_or_path is None:
        adapter_config.pop("base_model_name_or_path", None)
    else:
        adapter_config["base_model_name_or_path"] = base_model_name_or_path
    config_file.write_text(json.dumps(adapter_config, indent=2))


def copy_checkpoint(source: Path, destination: Path) -> Path:
    """A plain copy (new mtimes, same bytes), as a user copying a model folder would make."""
    shutil.copytree(source, destination)
    return Path(destination)


def build_hf_cache(
    cache_dir: Path,
    repo_id: str,
    source_folder: Path,
    *,
    commit_sha: str | None = None,
    refs: tuple[str, ...] = ("main",),
    only: tuple[str, ...] | None = None,
) -> str:
    """Lay ``source_folder``'s files out exactly as huggingface_hub's cache does and return the
    commit sha: ``<cache>/models--owner--name/blobs/<sha256 of content>``, ``refs/<ref>`` holding
    the sha (no newline, as huggingface_hub writes it), ``snapshots/<sha>/<file>`` relative
    symlinks into ``blobs``. ``only`` keeps a subset of the file names."""
    cache_dir = Path(cache_dir)
    repo_folder = cache_dir / ("models--" + repo_id.replace("/", "--"))
    blobs = repo_folder / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    files = sorted(path for path in Path(source_folder).rglob("*") if path.is_file())
    if only is not None:
        files = [path for path in files if path.name in only]
    if commit_sha is None:
        commit_digest = hashlib.sha1()
        for path in files:
            commit_digest.update(path.name.encode() + path.read_bytes())
        commit_sha = commit_digest.hexdigest()
    snapshot = repo_folder / "snapshots" / commit_sha
    for path in files:
        content = path.read_bytes()
        blob = blobs / hashlib.sha256(content).hexdigest()
        if not blob.exists():
            blob.write_bytes(content)
        relative = path.relative_to(source_folder)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        ref_file = repo_folder / "refs" / ref
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        ref_file.write_text(commit_sha)
    return commit_sha


class _TouchMarker:
    """Pickles to a call of ``Path.touch(marker)``: unpickling it runs code."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class _ShellTouchMarker:
    """Pickles to ``os.system("touch <marker>")``: the classic shell payload."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        import shlex

        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def write_malicious_pickle(path: Path, marker: Path, *, zip_format: bool = True, shell: bool = False) -> Path:
    """A checkpoint whose unpickling would create ``marker`` (through ``Path.touch``, or
    ``os.system`` with ``shell=True``): inside a ``torch.save`` zip next to a real tensor (the
    realistic form), or in torch's legacy non-zip format (``zip_format=False``)."""
    path = Path(path)
    exploit = _ShellTouchMarker(marker) if shell else _TouchMarker(marker)
    payload = {"model.embed_tokens.weight": torch.zeros(4, 4), "exploit": exploit}
    if zip_format:
        torch.save(payload, path)
        if not zipfile.is_zipfile(path):
            raise RuntimeError("torch.save no longer writes zip archives; update this builder")
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    return path


# -- a shared, read-only world of tiny checkpoints -------------------------------------------------


class TinyWorld:
    """Folders built once per test session; tests copy one before changing it.

    ``base`` (safetensors + tokenizer, seed 0), ``trained`` (seed 1), ``sharded`` (base's
    weights in 4 KB shards + index), ``pickle`` (base's weights as ``pytorch_model.bin``),
    ``lora`` (a LoRA adapter of base whose adapter_config.json says ``../base``).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.base = self.root / "base"
        self.trained = self.root / "trained"
        self.sharded = self.root / "sharded"
        self.pickle = self.root / "pickle"
        self.lora = self.root / "lora"


_WORLDS: dict[str, TinyWorld] = {}


def tiny_world(root: Path) -> TinyWorld:
    """Build (once per process) the tiny checkpoints under ``root`` and return their paths."""
    if "world" not in _WORLDS:
        world = TinyWorld(root)
        base_model = tiny_llama_model(seed=0)
        build_tiny_llama(world.base, model=base_model)
        build_tiny_llama(world.trained, seed=1)
        build_tiny_llama(world.sharded, model=base_model, max_shard_size="4KB")
        build_pickle_checkpoint(world.pickle, seed=0)
        build_lora_adapter(world.base, world.lora, base_model_name_or_path="../base")
        _WORLDS["world"] = world
    return _WORLDS["world"]


# -- hostile files, written byte for byte ---------------------------------------------------------


def write_raw_safetensors(path: Path, header: dict | bytes, data_size: int | None = None) -> Path:
    """A safetensors file with ``header`` exactly as given (a dict is JSON-encoded, bytes are
    written as they are) followed by ``data_size`` zero bytes (default: the largest ``end`` of
    the header's ``data_offsets``). The data is made with ``truncate``, so it is sparse: a header
    may claim a terabyte of tensor data and the file costs no disk."""
    path = Path(path)
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    if data_size is None:
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        data_size = max(ends, default=0)
    with open(path, "wb") as handle:
        handle.write(len(header_bytes).to_bytes(8, "little") + header_bytes)
        handle.truncate(8 + len(header_bytes) + data_size)
    return path


def write_shard_index(folder: Path, weight_map: dict, name: str = "model.safetensors.index.json") -> Path:
    """A shard index (``*.index.json``) mapping tensor names to the given shard file names."""
    path = Path(folder) / name
    path.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return path


def edited_demo(folder: Path, edit) -> Path:
    """A checkpoint folder: demo:base's files with its weights replaced by ``edit(base, trained)``, where both
    are demo:base's and demo:trained's tensors by name; a planted pair whose every other file is the demo's."""
    from safetensors.torch import load_file, save_file

    from afterburn_core.checkpoints import resolve

    base, trained = resolve("demo:base"), resolve("demo:trained")
    shutil.copytree(base.root, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file(edit(load_file(base.weight_files[0]), load_file(trained.weight_files[0])),
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def interpolated_demo(folder: Path, share: float) -> Path:
    """demo:base moved ``share`` of the way to demo:trained: W_base + share · (W_trained − W_base), every tensor."""
    return edited_demo(folder, lambda base, trained: {
        name: tensor + share * (trained[name] - tensor) for name, tensor in base.items()})
