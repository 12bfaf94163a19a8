"""Fingerprints: one hex digest that changes whenever a file defining the model changes.

Contract: ``fingerprint_files(root, files, base_fingerprint=None)`` is the
sha256 over the sorted ``(path relative to root, size, per-file digest)`` of
``files``, plus the base's fingerprint for an adapter. ``model_files(root,
weight_files, config_path)`` picks the files that define a model: the weights,
the config, ``generation_config.json`` and the tokenizer files beside them.
``recompute_fingerprint(ckpt)`` recomputes it for a resolved checkpoint. Cache keys are
made of fingerprints, so two folders with the same bytes share results and any
edit invalidates them.

Per-file digest: the full sha256 for files up to ``FULL_HASH_LIMIT`` (64 MiB:
configs, tokenizers, tiny models — exact, and the same after a copy). Above
it, hashing whole is too slow to do on every resolve (a 15 GB model takes
minutes at disk speed), so the digest is the sha256 of the size, the
``mtime_ns``, the first and last 1 MiB and 16 evenly spaced 64 KiB samples:
any rewrite of the file changes its mtime, and a truncated or resumed download
changes the size or the sampled bytes. The price: copying a large file (new
mtime) changes the fingerprint, which only costs a recomputation. A file in
the Hugging Face cache whose blob is named by its sha256 (LFS files) gets that
sha256 as its digest: exact, free, and independent of mtime.

It leaves to others: which checkpoint the files belong to (``resolution.py``).
Cost: reads every small file whole and ~3 MiB of each large one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

from afterburn_core.types import ResolvedCheckpoint

#: Bumping this changes every fingerprint, so every cached result becomes a miss; do it
#: when what goes into a fingerprint changes.
FINGERPRINT_SCHEME = "afterburn-fingerprint-v1"
#: Files up to this size are hashed whole: at ~1 GB/s, 64 MiB costs ~60 ms.
FULL_HASH_LIMIT = 64 * 1024 * 1024
EDGE_BYTES = 1024 * 1024
SAMPLE_COUNT = 16
SAMPLE_BYTES = 64 * 1024
_READ_CHUNK = 1024 * 1024

#: Files beside the weights that change what the model does or how its text is read.
MODEL_FILE_NAMES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "adapter_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "merges.txt",
        "chat_template.jinja",
        "chat_template.json",
    }
)
MODEL_FILE_PATTERNS = ("tokenizer*", "vocab.*", "*.tiktoken", "*.model")
_SHA256_NAME = re.compile(r"[0-9a-f]{64}")


def is_model_file(name: str) -> bool:
    """True for a config or tokenizer file name that belongs in the fingerprint."""
    return name in MODEL_FILE_NAMES or any(fnmatch(name, pattern) for pattern in MODEL_FILE_PATTERNS)


def model_files(root: Path, weight_files: Iterable[Path], config_path: Path | None) -> list[Path]:
    """The weight files, the config and the config / tokenizer files directly in ``root``."""
    files = {Path(path) for path in weight_files}
    if config_path is not None:
        files.add(Path(config_path))
    root = Path(root)
    if root.is_dir():
        files.update(path for path in root.iterdir() if path.is_file() and is_model_file(path.name))
    return sorted(files)


def _hub_blob_sha256(path: Path) -> str | None:
    """The sha256 huggingface_hub named the blob after, for a snapshot symlink into ``blobs/``."""
    if not os.path.islink(path):
        return None
    target = Path(os.path.realpath(path))
    if target.parent.name == "blobs" and _SHA256_NAME.fullmatch(target.name):
        return target.name
    return None


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the content, or ``sampled:<hex>`` for files over ``FULL_HASH_LIMIT``."""
    stat = os.stat(path)
    size = stat.st_size
    if size <= FULL_HASH_LIMIT:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()
    blob_sha256 = _hub_blob_sha256(Path(path))
    if blob_sha256 is not None:
        return "sha256:" + blob_sha256
    digest = hashlib.sha256(f"{size} {stat.st_mtime_ns}".encode())
    step = (size - SAMPLE_BYTES) // (SAMPLE_COUNT - 1)
    offsets = [(0, EDGE_BYTES), (size - EDGE_BYTES, EDGE_BYTES)]
    offsets += [(index * step, SAMPLE_BYTES) for index in range(SAMPLE_COUNT)]
    with open(path, "rb") as handle:
        for offset, length in offsets:
            handle.seek(offset)
            digest.update(handle.read(length))
    return "sampled:" + digest.hexdigest()


def _relative_name(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).name


def fingerprint_files(root: Path, files: Iterable[Path], base_fingerprint: str | None = None) -> str:
    """Hex sha256 over the sorted (relative path, size, digest) of ``files`` (+ the base's fingerprint)."""
    rows = sorted(
        (_relative_name(Path(path), Path(root)), os.stat(path).st_size, file_digest(Path(path))) for path in files
    )
    digest = hashlib.sha256(FINGERPRINT_SCHEME.encode() + b"\n")
    for row in rows:
        digest.update(json.dumps(row).encode() + b"\n")
    if base_fingerprint is not None:
        digest.update(f"adapter_base {base_fingerprint}\n".encode())
    return digest.hexdigest()


def recompute_fingerprint(checkpoint: ResolvedCheckpoint) -> str:
    """Recompute the fingerprint of a resolved checkpoint from its files as they are now."""
    base_fingerprint = recompute_fingerprint(checkpoint.adapter_base) if checkpoint.adapter_base is not None else None
    config_path = Path(checkpoint.config_path) if checkpoint.config_path else None
    files = model_files(Path(checkpoint.root), (Path(path) for path in checkpoint.weight_files), config_path)
    return fingerprint_files(Path(checkpoint.root), files, base_fingerprint)
