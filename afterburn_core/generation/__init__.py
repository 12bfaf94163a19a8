"""Generation: prompt suites, the batched generator and the token scorer.

This package's top level stays light (no torch, no transformers): it exposes
the prompt suites, which the CLI, the config and the pages use to list and
validate suites without loading a model. The generator and the scorer live in
their own modules and import torch when they are imported.
"""

from __future__ import annotations

from afterburn_core.generation.suites import (
    BUILTIN_SUITES,
    DEFAULT_SUITES,
    content_hash,
    load_suite,
    load_suites,
    suites_cache_key,
)

__all__ = ["BUILTIN_SUITES", "DEFAULT_SUITES", "content_hash", "load_suite", "load_suites", "suites_cache_key"]
