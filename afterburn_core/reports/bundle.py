"""A finished run as one document: its record and every result it holds, as every report reads it.

``RunReport`` gathers what the store holds for one run — the ``RunRecord``
(references, fingerprints, config, status, stages, times) and each analysis's
typed result, ``None`` where the run has none — so the writers read one
object and never the store. Its JSON (``to_json`` / ``from_json``) is the
report's JSON format: lossless through ``afterburn_core.serde``, each result
embedded unchanged under its kind, so the field names of the weight,
behaviour and reward-hack contracts hold inside it too (contract:
docs/report-schema.md, docs/report.schema.json).

It computes nothing and formats nothing. Cost: one store read per result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import ClassVar

from afterburn_core import __version__
from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.errors import BadInput
from afterburn_core.generation.results import GenerationsResult, TokenKLResult
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.runner import load_result
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.store import RunStore
from afterburn_core.types import InventoryResult, RunRecord
from afterburn_core.weights.types import WeightDiffResult


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """One run and its results. ``afterburn_version`` and ``generated_at`` say who wrote the report, when."""

    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = field(default=SCHEMA_VERSION)
    afterburn_version: str
    generated_at: float
    run: RunRecord
    inventory: InventoryResult | None = None
    weights: WeightDiffResult | None = None
    generations: GenerationsResult | None = None
    token_kl: TokenKLResult | None = None
    behaviour: BehaviourStats | None = None
    reward_hack: RewardHackResult | None = None


#: The result each field of ``RunReport`` holds; the field name is the result's kind.
RESULT_TYPES: dict[str, type] = {
    result_type.KIND: result_type
    for result_type in (
        InventoryResult, WeightDiffResult, GenerationsResult, TokenKLResult, BehaviourStats, RewardHackResult,
    )
}


def load_report(store: RunStore, run_id: str) -> RunReport:
    """The report of a run that has stopped (done, failed or cancelled), with every result it stored.

    ``RunNotFound`` for an unknown id; ``BadInput`` while the run is still
    queued or running (its results are not final yet).
    """
    record = store.get_run(run_id)
    if record.is_active:
        raise BadInput(f"run {run_id} is still {record.status}; a report needs a finished run, "
                       "try again once it is done")
    results = {kind: load_result(store, run_id, result_type) for kind, result_type in RESULT_TYPES.items()}
    return RunReport(afterburn_version=__version__, generated_at=time.time(), run=record, **results)


def to_json(report: RunReport) -> str:
    """The report as JSON text (UTF-8 characters kept as they are, two-space indent)."""
    return json.dumps(to_jsonable(report), ensure_ascii=False, indent=2) + "\n"


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
        return from_jsonable(RunReport, document)
    except (TypeError, ValueError, KeyError) as error:
        raise BadInput(f"not a valid report: {error}") from None
