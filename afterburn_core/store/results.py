"""Typed results read back from the store: one kind of a run, or every registered kind it holds.

The store keeps results as JSON documents under cache keys; this module
turns a run's stored document of one kind back into its typed result through
``afterburn_core.serde``, using the result type the analyses registry
declares for that kind. Pages, reports, the CLI and the API all read results
here. It computes nothing; cost: one store read per result.
"""

from __future__ import annotations

from typing import Any

from afterburn_core.serde import from_jsonable
from afterburn_core.store.store import RunStore


def load_result(store: RunStore, run_id: str, result_type: type) -> Any | None:
    """A run's stored result of one kind as its typed object, or None if it has none (yet)."""
    key = store.run_result_keys(run_id).get(result_type.KIND)
    if key is None:
        return None
    document = store.get_result(key)
    return None if document is None else from_jsonable(result_type, document)


def load_results(store: RunStore, run_id: str) -> dict[str, Any]:
    """Every registered kind's result this run holds, by kind (kinds it lacks are left out)."""
    from afterburn_core.analyses import analyses

    keys = store.run_result_keys(run_id)
    results = {}
    for registered in analyses():
        document = store.get_result(keys[registered.kind]) if registered.kind in keys else None
        if document is not None:
            results[registered.kind] = from_jsonable(registered.result_type, document)
    return results
