"""Cache keys: what makes two analyses the same computation.

A key is the sha256 of canonical JSON over the analysis kind, its result
schema version, the fingerprints of the checkpoints it reads, and the config
fields it depends on. Change any of them and the key changes, so a changed
checkpoint or config is a miss, never a stale hit.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def cache_key(kind: str, schema_version: int, fingerprints: tuple[str, ...], config_subset: dict[str, Any]) -> str:
    """Hex sha256 naming one analysis of one pair under one config."""
    canonical = json.dumps(
        {"kind": kind, "schema_version": schema_version, "fingerprints": list(fingerprints), "config": config_subset},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
