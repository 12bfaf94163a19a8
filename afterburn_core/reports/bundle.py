"""A finished run as one document: its record and every result it holds, as every report reads it.

``RunReport`` gathers what the store holds for one run — the ``RunRecord``
(references, fingerprints, config, status, stages, times) and each analysis's
typed result, ``None`` where the run has none — so the writers read one
object and never the store. Its JSON (``to_json`` / ``from_json``) is the
report's JSON format: lossless through ``afterburn_core.serde``, each result
of every kind the analyses registry declares embedded unchanged under its kind, so the field names of the weight,
behaviour and reward-hack contracts hold inside it too (contract:
docs/report-schema.md, docs/report.schema.json).

It computes nothing and formats nothing. Cost: one store read per result.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from afterburn_core import __version__
from afterburn_core.analyses import analyses, analysis_kinds
from afterburn_core.errors import BadInput
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.store import RunStore, load_results
from afterburn_core.types import RunRecord


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """One run and its results. ``afterburn_version`` and ``generated_at`` say who wrote the report, when.

    ``results`` holds each registered analysis kind's typed result the run
    has, by kind; ``report.<kind>`` reads one (None when the run has none), so
    a kind registered later is part of every report without a field here.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = field(default=SCHEMA_VERSION)
    afterburn_version: str
    generated_at: float
    run: RunRecord
    results: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not fields: a registered kind reads its result.
        if not name.startswith("_") and name in analysis_kinds():
            return self.__dict__.get("results", {}).get(name)
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def replace(self, **changes: Any) -> RunReport:
        """A copy with fields or results changed (``report.replace(token_kl=None)`` drops one result)."""
        kinds = {name: value for name, value in changes.items() if name in analysis_kinds()}
        fields = {name: value for name, value in changes.items() if name not in kinds}
        results = {**self.results, **kinds}
        return dataclasses.replace(
            self, **fields, results={kind: value for kind, value in results.items() if value is not None}
        )


def load_report(store: RunStore, run_id: str) -> RunReport:
    """The report of a run that has stopped (done, failed or cancelled), with every result it stored.

    ``RunNotFound`` for an unknown id; ``BadInput`` while the run is still
    queued or running (its results are not final yet).
    """
    record = store.get_run(run_id)
    if record.is_active:
        raise BadInput(f"run {run_id} is still {record.status}; a report needs a finished run, "
                       "try again once it is done")
    return RunReport(afterburn_version=__version__, generated_at=time.time(), run=record,
                     results=load_results(store, run_id))


def report_document(report: RunReport) -> dict[str, Any]:
    """The report as JSON values: the run, then every registered kind under its name (null when absent)."""
    document = {name: to_jsonable(getattr(report, name)) for name in ("schema_version", "afterburn_version",
                                                                     "generated_at", "run")}
    document.update({kind: to_jsonable(report.results.get(kind)) for kind in analysis_kinds()})
    return document


def to_json(report: RunReport) -> str:
    """The report as JSON text (UTF-8 characters kept as they are, two-space indent)."""
    return json.dumps(report_document(report), ensure_ascii=False, indent=2) + "\n"


def from_json(text: str) -> RunReport:
    """A report written by ``to_json``; ``BadInput`` naming what is wrong for anything else."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"not a report: invalid JSON at line {error.lineno} column {error.colno} ({error.msg})"
        ) from None
    if not isinstance(document, dict):
        raise BadInput(f"not a report: expected a JSON object, got {type(document).__name__}")
    version = document.get("schema_version")
    if version != RunReport.SCHEMA_VERSION:
        raise BadInput(
            f"report schema_version {version!r} is not {RunReport.SCHEMA_VERSION}, the version this afterburn reads"
        )
    try:
        results = {registered.kind: from_jsonable(registered.result_type, document[registered.kind])
                   for registered in analyses() if document.get(registered.kind) is not None}
        return RunReport(afterburn_version=from_jsonable(str, document["afterburn_version"]),
                         generated_at=from_jsonable(float, document["generated_at"]),
                         run=from_jsonable(RunRecord, document["run"]), results=results)
    except KeyError as error:
        raise BadInput(f"not a valid report: RunReport is missing field {error}") from None
    except (TypeError, ValueError) as error:
        raise BadInput(f"not a valid report: {error}") from None
