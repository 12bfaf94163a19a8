"""The one-call Python API: ``Diagnoser(base, trained, method="sft").run().save("report.html")``.

A thin door like the CLI: it records a run in the same store the dashboard
reads (so a run made here shows in its history and reopens instantly), runs
it in this process through the same worker code, and hands back the typed
results as a ``Diagnosis``, which writes any of the four report formats.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import AnalysisFailed, ConfigError
from afterburn_core.progress import ProgressCallback
from afterburn_core.reports.bundle import RunReport
from afterburn_core.store import RunStore

_SETTINGS = frozenset(f.name for f in fields(AnalysisConfig))


@dataclass(frozen=True)
class Diagnosis:
    """A finished run: its id, the store it lives in, and every result it holds (``report``)."""

    run_id: str
    home: Path
    report: RunReport

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
    ``AnalysisConfig`` or the path of a ``.afterburn.yaml``). ``home`` picks the
    run store (default ``$AFTERBURN_HOME`` or ``~/.cache/afterburn``).
    """

    def __init__(self, base: str, trained: str, *, config: AnalysisConfig | str | Path | None = None,
                 home: str | Path | None = None, **settings: Any) -> None:
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise ConfigError(f"Diagnoser: unknown setting {unknown[0]!r}; known settings are {', '.join(sorted(_SETTINGS))}")
        if isinstance(config, (str, Path)):
            config = load_config_file(config)
        if isinstance(settings.get("suites"), str):
            settings["suites"] = (settings["suites"],)
        elif "suites" in settings:
            settings["suites"] = tuple(settings["suites"])
        self.base = base
        self.trained = trained
        self.config = (config or AnalysisConfig()).replace(**settings)
        self.home = home

    def run(self, analyses: tuple[str, ...] | None = None, progress: ProgressCallback | None = None) -> Diagnosis:
        """Run ``analyses`` (None: all) here, reusing every cached result; raise if the run fails.

        ``progress(stage, done, total, message)`` sees every progress report.
        """
        from afterburn_core.jobs import create_run
        from afterburn_core.reports import load_report
        from afterburn_core.runner import execute_run

        with RunStore(self.home) as store:
            run_id = create_run(store, self.base, self.trained, self.config, analyses)
            status = execute_run(store, run_id, progress, raise_errors=True)
            if status != "done":
                raise AnalysisFailed(f"run {run_id} ended {status}")
            return Diagnosis(run_id, store.home, load_report(store, run_id))


def load_run(run_id: str, home: str | Path | None = None) -> Diagnosis:
    """A stored run (from the dashboard, the CLI or this API) as a ``Diagnosis``."""
    from afterburn_core.reports import load_report

    with RunStore(home) as store:
        return Diagnosis(run_id, store.home, load_report(store, run_id))
