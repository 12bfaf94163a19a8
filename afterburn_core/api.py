"""The one-call Python API: ``Diagnoser(base, trained, method="sft").run().save("report.html")``.

A thin door like the CLI: it records a run in the same store the dashboard
reads (so a run made here shows in its history and reopens instantly), runs
it in this process through the same worker code, and hands back the typed
results as a ``DiagnosedRun``, which writes any of the four report formats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import AnalysisFailed, BadInput, ConfigError
from afterburn_core.progress import ProgressCallback
from afterburn_core.reports.bundle import RunReport
from afterburn_core.store import RunStore

_SETTINGS = frozenset(f.name for f in fields(AnalysisConfig))


# repr=False: the generated repr would print every generation and tensor of the report, megabytes in a REPL.
@dataclass(frozen=True, repr=False)
class DiagnosedRun:
    """A finished run: its id, the store it lives in, and every result it holds (``report``)."""

    run_id: str
    home: Path
    report: RunReport

    def __repr__(self) -> str:
        run = self.report.run
        risk = self.reward_hack
        verdict = f", reward-hack risk {risk.composite.score:.1f} {risk.composite.band}" if risk is not None else ""
        return (f"DiagnosedRun(run {self.run_id}: {run.base_reference} → {run.trained_reference}, {run.status}"
                f"{verdict}, in {self.home})")

    @property
    def weights(self):
        """The weight diff (``WeightDiffResult``), or None when the run did not compute it."""
        return self.report.weights

    @property
    def behaviour(self):
        """The behaviour statistics (``BehaviourStats``), or None."""
        return self.report.behaviour

    @property
    def reward_hack(self):
        """The reward-hack detectors and composite risk (``RewardHackResult``), or None."""
        return self.report.reward_hack

    def save(self, path: str | Path) -> Path:
        """Write the report; the extension picks the format (.html, .json, .md, .pdf)."""
        from afterburn_core.reports import write_report

        return write_report(self.report, path)


class Diagnoser:
    """Diagnose what post-training did to ``trained`` relative to ``base``.

    ``base`` / ``trained``: a folder, a .safetensors file, a hub id[@revision],
    a LoRA adapter folder (as ``trained``) or ``demo:base`` / ``demo:trained``.
    Settings are ``AnalysisConfig`` fields given as keywords (``method``,
    ``suites``, ``max_new_tokens``, ``device``, …), over ``config`` (an
    ``AnalysisConfig``, a mapping of its fields, or the path of a
    ``.afterburn.yaml``). Every setting is checked here, before any work:
    a bad one raises ``ConfigError`` naming it. ``home`` picks the run store
    (default ``$AFTERBURN_HOME`` or ``~/.cache/afterburn``).
    """

    def __init__(self, base: str | os.PathLike[str], trained: str | os.PathLike[str], *,
                 config: AnalysisConfig | Mapping[str, Any] | str | Path | None = None,
                 home: str | Path | None = None, **settings: Any) -> None:
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise ConfigError(f"Diagnoser: unknown setting {unknown[0]!r}; known settings are {', '.join(sorted(_SETTINGS))}")
        if isinstance(config, (str, Path)):
            config = load_config_file(config)
        elif isinstance(config, Mapping):
            config = AnalysisConfig.from_mapping(dict(config), source="Diagnoser config")
        elif config is not None and not isinstance(config, AnalysisConfig):
            raise ConfigError(f"Diagnoser: config must be an AnalysisConfig, a mapping of settings or the path of a "
                              f".afterburn.yaml, not {type(config).__name__}")
        suites = settings.get("suites")
        if isinstance(suites, str):
            settings["suites"] = (suites,)
        elif isinstance(suites, Iterable):
            settings["suites"] = tuple(suites)  # anything else: the config's own check names it
        self.base = _reference("base", base)
        self.trained = _reference("trained", trained)
        self.config = (config or AnalysisConfig()).replace(**settings)
        self.home = home

    def __repr__(self) -> str:
        return f"Diagnoser({self.base!r}, {self.trained!r}, method={self.config.method!r})"

    def run(self, analyses: str | Iterable[str] | None = None, progress: ProgressCallback | None = None) -> DiagnosedRun:
        """Run ``analyses`` (None: all; a name or names of ``analyses.analysis_kinds()``) here, reusing every
        cached result; raise the run's ``AfterburnError`` if it fails.

        ``progress(stage, done, total, message)`` sees every progress report.
        """
        from afterburn_core.jobs import create_run
        from afterburn_core.reports import load_report
        from afterburn_core.runner import execute_run

        if isinstance(analyses, str):  # run("weights") means one analysis, not its letters
            analyses = (analyses,)
        elif analyses is not None:
            analyses = tuple(analyses)
        with RunStore(self.home) as store:
            run_id = create_run(store, self.base, self.trained, self.config, analyses)
            status = execute_run(store, run_id, progress, raise_errors=True)
            if status != "done":
                raise AnalysisFailed(f"run {run_id} ended {status}")
            return DiagnosedRun(run_id, store.home, load_report(store, run_id))


def _reference(label: str, reference: Any) -> str:
    """A model reference as the string the store records; a ``Path`` is a folder or file."""
    if isinstance(reference, os.PathLike):
        return os.fspath(reference)
    if not isinstance(reference, str):
        raise BadInput(f"Diagnoser: {label} must be a model reference (a folder, a file, a hub id or 'demo'), "
                       f"not {type(reference).__name__}")
    return reference


def load_run(run_id: str, home: str | Path | None = None) -> DiagnosedRun:
    """A stored run (from the dashboard, the CLI or this API) as a ``DiagnosedRun``."""
    from afterburn_core.reports import load_report

    with RunStore(home) as store:
        return DiagnosedRun(run_id, store.home, load_report(store, run_id))
