"""SQLite run store: runs, per-stage progress, and cached analysis results."""

from afterburn_core.store.keys import cache_key
from afterburn_core.store.store import RunStore, default_home

__all__ = ["RunStore", "cache_key", "default_home"]
