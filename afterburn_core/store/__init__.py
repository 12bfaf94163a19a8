"""SQLite run store: runs, per-stage progress, cached analysis results, and typed reads of them."""

from afterburn_core.store.keys import cache_key
from afterburn_core.store.results import load_result, load_results, stored_result
from afterburn_core.store.store import RunStore, default_home

__all__ = ["RunStore", "cache_key", "default_home", "load_result", "load_results", "stored_result"]
