"""Typed results read back from the store: one kind of a run, or every registered kind it holds.

The store keeps results as JSON documents under cache keys; this module
turns a stored document back into its typed result through
``afterburn_core.serde``, using the result type the analyses registry
declares for that kind. Pages, reports, the CLI, the API and the runner's
cache lookups all read results here. A document whose checksum holds but
whose content does not fit its type (a missing field, a wrong type: written
by another version, or edited) is dropped like a corrupt one, so it reads as
absent and the analysis is computed again; it never surfaces as a
``KeyError``. It computes nothing; cost: one store read per result.
"""

from __future__ import annotations

from typing import Any

from afterburn_core.serde import from_jsonable
from afterburn_core.store.store import RunStore

#: What ``from_jsonable`` raises for a document that does not fit its type (a missing field, a value of the
#: wrong type or outside its ``Literal`` / ``Enum``).
_MISFIT = (KeyError, TypeError, ValueError)


def stored_result(store: RunStore, cache_key: str, result_type: type) -> Any | None:
    """The result stored under ``cache_key`` as a ``result_type``, or None when there is none that fits."""
    document = store.get_result(cache_key)
    if document is None:
        return None
    try:
        return from_jsonable(result_type, document)
    except _MISFIT:
        store.drop_result(cache_key)
        return None


def load_result(store: RunStore, run_id: str, result_type: type) -> Any | None:
    """A run's stored result of one kind as its typed object, or None if it has none (yet)."""
    key = store.run_result_keys(run_id).get(result_type.KIND)
    return None if key is None else stored_result(store, key, result_type)


def load_results(store: RunStore, run_id: str) -> dict[str, Any]:
    """Every registered kind's result this run holds, by kind (kinds it lacks are left out)."""
    from afterburn_core.analyses import analyses

    keys = store.run_result_keys(run_id)
    results = {}
    for registered in analyses():
        result = stored_result(store, keys[registered.kind], registered.result_type) if registered.kind in keys else None
        if result is not None:
            results[registered.kind] = result
    return results
