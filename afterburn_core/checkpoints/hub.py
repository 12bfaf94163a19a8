"""Fetch a Hugging Face Hub model into the standard cache and return its snapshot folder.

Contract: ``fetch_snapshot(repo_id, revision, token)`` returns
``(snapshot_folder, commit_sha)`` for ``owner/name@revision`` through
``huggingface_hub.snapshot_download`` with the standard cache (``HF_HOME`` /
``HF_HUB_CACHE``), ``HF_HUB_OFFLINE`` and the token (argument, else
``HF_TOKEN``). Only what defines the model is downloaded: config and tokenizer
files, then the safetensors weights — only the shards the index names when
there is an index (repos such as Mistral's also ship a ``consolidated``
copy of every weight) — and, only if the repo has no safetensors at all, the
``*.bin`` weights. Every failure becomes one sentence: ``CheckpointNotFound``
(not cached while offline, no such repo or revision, gated, no network) or
``BadCheckpoint`` (the Hub answered with an error).

It leaves to others: checking the files (``local.py``), fingerprints.

Cost: with the model cached, one metadata request per call online (none with
``HF_HUB_OFFLINE=1``); otherwise the download of the weights, once.
"""

from __future__ import annotations

import os
from pathlib import Path

from afterburn_core.errors import BadCheckpoint, CheckpointNotFound
from afterburn_core.limits import load_json

#: Everything but the weights: configs, shard indexes, tokenizer files (``chat_template.jinja``
#: is where transformers ≥ 4.50 saves the chat template).
CONFIG_AND_TOKENIZER_PATTERNS = ["*.json", "tokenizer*", "*.model", "*.tiktoken", "merges.txt", "vocab.*", "*.jinja"]
SAFETENSORS_PATTERNS = ["*.safetensors", "*.safetensors.index.json"]
PICKLE_PATTERNS = ["*.bin", "*.bin.index.json"]


def _cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _translate(error: Exception, repo_id: str, revision: str) -> Exception:
    """One sentence for each way the Hub can fail."""
    from huggingface_hub.utils import (  # where every huggingface_hub >= 0.25 exports them
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    name = f"{repo_id}@{revision}"
    cache = _cache_dir()
    if isinstance(error, HFValidationError):
        return CheckpointNotFound(f"{repo_id!r} is not a valid Hugging Face model id; write owner/name[@revision].")
    if isinstance(error, GatedRepoError):
        return CheckpointNotFound(
            f"{repo_id} is gated: accept its terms at https://huggingface.co/{repo_id} and set a token "
            "in the HF_TOKEN environment variable (or log in with `hf auth login`)."
        )
    if isinstance(error, RevisionNotFoundError):
        return CheckpointNotFound(
            f"{repo_id} has no revision {revision!r}; give a branch, tag or commit sha that exists."
        )
    if isinstance(error, RepositoryNotFoundError):
        return CheckpointNotFound(
            f"{repo_id} is neither a folder here nor a model on the Hugging Face Hub you can access; "
            "check the spelling, or pass a token (HF_TOKEN) if it is private."
        )
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)) and _offline():
        return CheckpointNotFound(
            f"{name} is not in the Hugging Face cache at {cache} and HF_HUB_OFFLINE=1 forbids downloading it; "
            "run once online or unset HF_HUB_OFFLINE."
        )
    if isinstance(error, LocalEntryNotFoundError):
        return CheckpointNotFound(
            f"the Hugging Face Hub could not be reached to fetch {name} and it is not complete in the cache at "
            f"{cache}; check the network connection (or HF_ENDPOINT / proxy settings) and try again."
        )
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if getattr(error, "response", None) is not None else "an error"
        if status == 401:
            return CheckpointNotFound(
                f"the Hugging Face Hub refused the token for {repo_id} (401); pass a valid token or unset HF_TOKEN."
            )
        return BadCheckpoint(f"the Hugging Face Hub answered {status} while fetching {name}; try again later.")
    if isinstance(error, OSError):
        return BadCheckpoint(
            f"fetching {name} into {cache} failed ({type(error).__name__}: {error}); check disk space and permissions."
        )
    return BadCheckpoint(f"fetching {name} failed ({type(error).__name__}: {error}).")


def _download(repo_id: str, revision: str, token: str | None, patterns: list[str]) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, revision=revision, token=token, allow_patterns=patterns)
    except Exception as error:  # huggingface_hub raises a dozen types; each gets its sentence
        raise _translate(error, repo_id, revision) from None
    return Path(folder)


def _index_shards(index_path: Path) -> list[str] | None:
    try:
        weight_map = load_json(index_path.read_text(encoding="utf-8")).get("weight_map")
    except (OSError, ValueError, AttributeError):
        return None  # local.py reports a broken index with its own message
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(name, str) for name in weight_map.values()):
        return None
    return sorted(set(weight_map.values()))


def _weights_present(snapshot: Path, index_name: str, single_names: tuple[str, ...]) -> tuple[bool, list[str] | None]:
    """Whether the snapshot already holds complete weights of one format, and the index's shards.

    huggingface_hub links a file into ``snapshots/`` only once its download completed, so a
    present link is a complete file.
    """
    index_path = snapshot / index_name
    shards = _index_shards(index_path) if index_path.is_file() else None
    if shards:
        return all((snapshot / shard).is_file() for shard in shards), shards
    return any((snapshot / name).is_file() for name in single_names), None


def fetch_snapshot(repo_id: str, revision: str | None, token: str | None) -> tuple[Path, str]:
    """``(snapshot folder, commit sha)`` of ``repo_id`` at ``revision`` (default ``main``)."""
    revision = revision or "main"
    token = token or os.environ.get("HF_TOKEN") or None
    snapshot = _download(repo_id, revision, token, CONFIG_AND_TOKENIZER_PATTERNS)

    # Weights already in the snapshot are not asked for again: besides saving a request, a
    # request by commit sha lists the repo tree, which huggingface_hub retries for ~25 s when
    # the network is down, where the branch lookup above fails over to the cache at once.
    # Later calls go by commit sha, so they cannot race a push to the branch.
    commit_sha = snapshot.name
    present, shards = _weights_present(
        snapshot, "model.safetensors.index.json", ("model.safetensors", "adapter_model.safetensors")
    )
    if not present:
        snapshot = _download(repo_id, commit_sha, token, shards or SAFETENSORS_PATTERNS)
    if any(snapshot.glob("*.safetensors")):
        return snapshot, commit_sha

    present, shards = _weights_present(
        snapshot, "pytorch_model.bin.index.json", ("pytorch_model.bin", "adapter_model.bin")
    )
    if not present:
        snapshot = _download(repo_id, commit_sha, token, shards or PICKLE_PATTERNS)
    if not any(path.suffix in (".safetensors", ".bin", ".pt", ".pth") for path in snapshot.iterdir()):
        if _offline():
            raise CheckpointNotFound(
                f"the cached snapshot of {repo_id}@{commit_sha} at {snapshot} holds no weight files and "
                "HF_HUB_OFFLINE=1 forbids downloading them; run once online or unset HF_HUB_OFFLINE."
            )
        raise BadCheckpoint(
            f"{repo_id}@{commit_sha} has no .safetensors or .bin weights on the Hugging Face Hub; "
            "pick a repo or revision that holds transformers weights."
        )
    return snapshot, commit_sha
