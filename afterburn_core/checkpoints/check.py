"""Check a model reference as the user types it, without downloading anything.

The New run page calls this on every edit, so it must be cheap and must not
fetch from the hub: a local folder, file or demo name is resolved for real
(fingerprinting a local checkpoint reads small files whole and samples large
ones); a hub id is only looked up in the local Hugging Face cache and reported
as cached or to-be-downloaded. The run itself does the full resolution.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from afterburn_core.checkpoints.references import parse_reference
from afterburn_core.errors import AfterburnError
from afterburn_core.types import ModelDescription


@dataclass(frozen=True)
class ReferenceCheck:
    """Whether a reference can be used, with one line to show the user; ``description`` is its parsed
    config.json when it resolved on this disk (None for a hub id: nothing is read from it here)."""

    ok: bool
    message: str
    description: ModelDescription | None = None


def check_reference(reference: str, *, adapter_base: str | None = None) -> ReferenceCheck:
    """One-line verdict on ``reference``; never raises for bad input, never downloads."""
    from afterburn_core.checkpoints import resolve

    try:
        parsed = parse_reference(reference)
        if parsed.kind == "hub":
            return _check_hub(parsed.repo_id, parsed.revision)
        checkpoint = resolve(reference, adapter_base=adapter_base)
    except AfterburnError as error:
        return ReferenceCheck(False, str(error))
    described = {
        "local_dir": "folder",
        "safetensors_file": "safetensors file",
        "pickle_file": "pickle checkpoint (loaded with weights_only=True)",
        "hub": "hub model",
        "adapter": "LoRA adapter",
    }[checkpoint.kind]
    extra = f" of {checkpoint.adapter_base.reference}" if checkpoint.adapter_base is not None else ""
    files = len(checkpoint.weight_files)
    return ReferenceCheck(True, f"{described}{extra}: {files} weight file{'s' * (files != 1)} at {checkpoint.root}",
                          checkpoint.description)


def _check_hub(repo_id: str, revision: str | None) -> ReferenceCheck:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    where = f"{repo_id}@{revision}" if revision else repo_id
    if isinstance(cached, str):
        return ReferenceCheck(True, f"hub model {where}: in the local Hugging Face cache")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return ReferenceCheck(False, f"hub model {where} is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    return ReferenceCheck(True, f"hub model {where}: not cached yet; it will be downloaded when the run starts")
