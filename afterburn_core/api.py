"""The Python API: ``Diagnoser(base, trained, method="sft").run().save("report.html")``, and a function per CLI verb.

A thin door: it checks every input (``Diagnoser.check``: suites, device, both
checkpoints resolved), so refused input raises before anything is recorded;
then it records a run in the same store the dashboard reads (so a run
made here shows in its history and reopens instantly), runs it in this
process through the same worker code, and hands back the typed results as a
``DiagnosedRun``, which writes any of the four report formats. The ``afterburn``
command is built on it: each verb calls the function of the same name
(``weight-diff`` → ``weight_diff``), so whatever the CLI does, a script can
do, on the same store. It computes nothing itself and prints nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import AnalysisFailed, BadInput, ConfigError
from afterburn_core.progress import ProgressCallback
from afterburn_core.reports.bundle import RunReport
from afterburn_core.reports.notebook import register_in_kernel
from afterburn_core.store import RunStore
from afterburn_core.types import CheckpointRef, CheckpointSummary, RunRecord

if TYPE_CHECKING:
    import pandas

    from afterburn_core.behaviour.report import BehaviourReport
    from afterburn_core.internals.types import InternalsResult
    from afterburn_core.runner import CheckedInputs
    from afterburn_core.reward_hack.types import RewardHackResult
    from afterburn_core.trajectory import TrajectoryResult
    from afterburn_core.trajectory.stored import StoredTrajectory
    from afterburn_core.views.run import Example
    from afterburn_core.weights.types import WeightDiffResult

_SETTINGS = frozenset(f.name for f in fields(AnalysisConfig))

# Inside a Jupyter kernel, results display as their report sections (DiagnosedRun has its own _repr_html_).
register_in_kernel()

#: ``on_start(run_id, store_path)``: called once a run is recorded, before any work (the CLI prints where it is).
StartCallback = Callable[[str, Path], None]
#: ``on_run(label, run_id)``: a trajectory recorded the run of one checkpoint (``step 500``) or of one step's
#: weight move from the one before (``step 500 vs 400``).
RunCallback = Callable[[str, str], None]

#: The analyses each verb runs (None: every one); the CLI gives a verb an option for each setting they read
#: (``analyses.config_fields_for``). ``behaviour`` reads the inventory for the checkpoints its document names.
VERB_ANALYSES: dict[str, tuple[str, ...] | None] = {
    "diagnose": None,
    "weight_diff": ("weights",),
    "behaviour": ("inventory", "behaviour", "token_kl"),
    "hack_check": ("reward_hack",),
    "internals": ("internals",),
}


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

    @property
    def internals(self):
        """Activation differences and the lenses (``InternalsResult``), or None."""
        return self.report.internals

    @property
    def checkpoints(self) -> tuple[CheckpointRef, CheckpointRef] | None:
        """Which base and trained checkpoints the run compared, as resolution found them (reference as
        resolved, fingerprint, kind, revision), read from its inventory; None when the run has no inventory.

        The inventory is cached by fingerprint: one made by an earlier run that named the same files another
        way (``./model`` and ``/abs/model``) carries that run's spelling of the reference.
        """
        from afterburn_core.weights.analysis import checkpoint_ref

        inventory = self.report.inventory
        if inventory is None:
            return None
        return checkpoint_ref(inventory.base.checkpoint), checkpoint_ref(inventory.trained.checkpoint)

    def behaviour_report(self) -> BehaviourReport | None:
        """What ``afterburn behaviour`` shows and writes (contract: docs/behaviour-schema.md); None when the run
        has no behaviour statistics or no inventory."""
        from afterburn_core.behaviour.report import build_behaviour_report

        report, checkpoints = self.report, self.checkpoints
        if report.behaviour is None or report.generations is None or checkpoints is None:
            return None
        skipped = next((s.message for s in report.run.stages if s.stage == "token_kl" and s.status == "skipped"), None)
        return build_behaviour_report(*checkpoints, report.generations, report.behaviour, report.token_kl, skipped)

    def save(self, path: str | Path) -> Path:
        """Write the report; the extension picks the format (.html, .json, .md, .pdf)."""
        from afterburn_core.reports import write_report

        return write_report(self.report, path)

    def weights_table(self) -> pandas.DataFrame:
        """Every tensor of the weight diff, one row each, the most changed first: every field of the contract
        (docs/weight-diff-schema.md) as a column, as the dashboard's CSV download holds them."""
        import pandas

        from afterburn_core.views.weights import tensor_records

        weights = _present(self, self.weights, "weight diff")
        table = pandas.DataFrame(tensor_records(weights))
        return table.sort_values("relative_change", ascending=False, ignore_index=True)

    def prompt(self, link: str) -> PromptAnswers:
        """One prompt of the run (``suite/prompt_id``, as reports and pages name it) and both models' answers;
        a notebook shows them side by side. ``BadInput`` naming the run's prompts when it has no such one."""
        from afterburn_core.views.run import examples

        generations = self.report.generations
        if generations is None:
            raise BadInput(f"run {self.run_id} has no generations; run the behaviour analysis to compare answers")
        # Every prompt, ranked as the report ranks them, so the line saying why it diverged is the report's.
        found = next((example for example in examples(self.report, limit=len(generations.prompts))
                      if example.link == link), None)
        if found is None:
            links = [f"{prompt.suite}/{prompt.prompt_id}" for prompt in generations.prompts]
            listed = ", ".join(links[:_LISTED_PROMPTS]) + (", …" if len(links) > _LISTED_PROMPTS else "")
            raise BadInput(f"run {self.run_id} has no prompt {link!r}; its {len(links)} prompts are {listed}")
        return PromptAnswers(found)

    def _repr_html_(self) -> str:
        from afterburn_core.reports.notebook import run_html

        return run_html(self.report)


#: Prompt links an unknown-prompt error lists before "…" (enough to show the naming, short enough for one line).
_LISTED_PROMPTS = 5


@dataclass(frozen=True, repr=False)
class PromptAnswers:
    """One prompt of a run and both models' answers (``DiagnosedRun.prompt``); side by side in a notebook."""

    example: Example

    @property
    def link(self) -> str:
        """``suite/prompt_id``."""
        return self.example.link

    @property
    def prompt(self) -> str:
        """The prompt's text."""
        return self.example.prompt.text

    @property
    def base(self) -> str:
        """The base model's answer."""
        return self.example.base.text

    @property
    def trained(self) -> str:
        """The post-trained model's answer."""
        return self.example.trained.text

    def __repr__(self) -> str:
        return (f"PromptAnswers({self.link}: base {self.example.base.n_tokens} tokens, "
                f"post-trained {self.example.trained.n_tokens} tokens; {self.example.why})")

    def _repr_html_(self) -> str:
        from afterburn_core.reports.notebook import example_html

        return example_html(self.example)


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
        self.config = _config("Diagnoser", config, settings)
        self.base = _reference("base", base)
        self.trained = _reference("trained", trained)
        self.home = home

    def __repr__(self) -> str:
        return f"Diagnoser({self.base!r}, {self.trained!r}, method={self.config.method!r})"

    def check(self, analyses: str | Iterable[str] | None = None) -> CheckedInputs:
        """Load and check every input a run of ``analyses`` reads (suites, device, both checkpoints resolved)
        without recording or computing anything; raise the first input's ``BadInput``.

        ``run`` does this first; a door that launches a worker instead (the New run page) calls it
        before ``jobs.create_run``, so a refused input is one message and no run.
        """
        from afterburn_core.runner import check_inputs

        return check_inputs(self.base, self.trained, self.config, _analysis_names(analyses))

    def run(self, analyses: str | Iterable[str] | None = None, progress: ProgressCallback | None = None, *,
            on_start: StartCallback | None = None) -> DiagnosedRun:
        """Run ``analyses`` (None: all; a name or names of ``analyses.analysis_kinds()``) here, reusing every
        cached result; raise the run's ``AfterburnError`` if it fails.

        Every input is checked first (``check``): refused input raises before a run is recorded.
        ``progress(stage, done, total, message)`` sees every progress report; ``on_start(run_id, store_path)``
        hears of the run once it is recorded, before any work.
        """
        from afterburn_core.reports import load_report

        analyses = _analysis_names(analyses)
        checked = self.check(analyses)
        with RunStore(self.home) as store:
            run_id = _run_checked(store, self.base, self.trained, self.config, analyses, checked, progress,
                                  on_start)
            return DiagnosedRun(run_id, store.home, load_report(store, run_id))


def _config(door: str, config: AnalysisConfig | Mapping[str, Any] | str | Path | None,
            settings: dict[str, Any]) -> AnalysisConfig:
    """``config`` (an ``AnalysisConfig``, a mapping of its fields or a .afterburn.yaml path) with ``settings``
    over it; ``ConfigError`` naming the ``door`` and the first bad setting."""
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise ConfigError(f"{door}: unknown setting {unknown[0]!r}; known settings are {', '.join(sorted(_SETTINGS))}")
    if isinstance(config, (str, Path)):
        config = load_config_file(config)
    elif isinstance(config, Mapping):
        config = AnalysisConfig.from_mapping(dict(config), source=f"{door} config")
    elif config is not None and not isinstance(config, AnalysisConfig):
        raise ConfigError(f"{door}: config must be an AnalysisConfig, a mapping of settings or the path of a "
                          f".afterburn.yaml, not {type(config).__name__}")
    suites = settings.get("suites")
    if isinstance(suites, str):
        settings = {**settings, "suites": (suites,)}
    elif isinstance(suites, Iterable):
        settings = {**settings, "suites": tuple(suites)}  # anything else: the config's own check names it
    return (config or AnalysisConfig()).replace(**settings)


def _run_checked(store: RunStore, base: str, trained: str, config: AnalysisConfig, analyses: tuple[str, ...] | None,
                 checked: CheckedInputs, progress: ProgressCallback | None, on_start: StartCallback | None) -> str:
    """Record a run of the ``checked`` pair and run it here; its id, or the run's ``AfterburnError``."""
    from afterburn_core.jobs import create_run
    from afterburn_core.runner import execute_run

    run_id = create_run(store, base, trained, config, analyses)
    if on_start is not None:
        on_start(run_id, store.path)
    status = execute_run(store, run_id, progress, raise_errors=True, checked=checked)
    if status != "done":
        raise AnalysisFailed(f"run {run_id} ended {status}")
    return run_id


def _analysis_names(analyses: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``analyses`` as a tuple of names; ``"weights"`` means one analysis, not its letters."""
    if isinstance(analyses, str):
        return (analyses,)
    return None if analyses is None else tuple(analyses)


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


# --- one function per CLI verb -----------------------------------------------------------------------
# ``options`` are ``Diagnoser``'s keywords: ``config``, ``home`` and settings (``method``, ``suites``, …).


def diagnose(base: str | os.PathLike[str], trained: str | os.PathLike[str], *,
             progress: ProgressCallback | None = None, on_start: StartCallback | None = None,
             **options: Any) -> DiagnosedRun:
    """Every analysis of the pair, as ``afterburn diagnose`` runs them."""
    return Diagnoser(base, trained, **options).run(VERB_ANALYSES["diagnose"], progress, on_start=on_start)


def weight_diff(base: str | os.PathLike[str], trained: str | os.PathLike[str], *,
                progress: ProgressCallback | None = None, on_start: StartCallback | None = None,
                **options: Any) -> WeightDiffResult:
    """The weight diff of the pair, as ``afterburn weight-diff`` computes it (docs/weight-diff-schema.md)."""
    run = Diagnoser(base, trained, **options).run(VERB_ANALYSES["weight_diff"], progress, on_start=on_start)
    return _present(run, run.weights, "weight diff")


def behaviour(base: str | os.PathLike[str], trained: str | os.PathLike[str], *,
              progress: ProgressCallback | None = None, on_start: StartCallback | None = None,
              **options: Any) -> BehaviourReport:
    """What the two models say on the suites and how it differs, as ``afterburn behaviour`` reports it
    (docs/behaviour-schema.md)."""
    run = Diagnoser(base, trained, **options).run(VERB_ANALYSES["behaviour"], progress, on_start=on_start)
    return _present(run, run.behaviour_report(), "behaviour")


def hack_check(base: str | os.PathLike[str], trained: str | os.PathLike[str], *,
               progress: ProgressCallback | None = None, on_start: StartCallback | None = None,
               **options: Any) -> RewardHackResult:
    """The reward-hack detectors and composite risk, as ``afterburn hack-check`` scores them
    (docs/reward-hack-schema.md)."""
    run = Diagnoser(base, trained, **options).run(VERB_ANALYSES["hack_check"], progress, on_start=on_start)
    return _present(run, run.reward_hack, "reward-hack")


def internals(base: str | os.PathLike[str], trained: str | os.PathLike[str], *,
              progress: ProgressCallback | None = None, on_start: StartCallback | None = None,
              **options: Any) -> InternalsResult:
    """Activation differences, differential logit lens and activation-difference lens of the pair, as
    ``afterburn internals`` computes them (docs/internals-schema.md)."""
    run = Diagnoser(base, trained, **options).run(VERB_ANALYSES["internals"], progress, on_start=on_start)
    return _present(run, run.internals, "internals")


@dataclass(frozen=True)
class _ForegroundPairs:
    """The ``trajectory.PairRunner`` of the API: each pair checked by ``runner.check_inputs`` and run here,
    in ``store``, like ``Diagnoser.run`` runs one; progress labelled per checkpoint (``step 500 weights``)."""

    store: RunStore
    config: AnalysisConfig
    progress: ProgressCallback | None
    on_run: RunCallback | None

    def check(self, base: str, trained: str, analyses: tuple[str, ...]) -> CheckedInputs:
        from afterburn_core.runner import check_inputs

        return check_inputs(base, trained, self.config, analyses)

    def run(self, pair: CheckedInputs, analyses: tuple[str, ...], label: str) -> str:
        def labelled(stage: str, done: int, total: int, message: str) -> None:
            if self.progress is not None:
                self.progress(f"{label} {stage}", done, total, message)

        def started(run_id: str, _store_path: Path) -> None:
            if self.on_run is not None:
                self.on_run(label, run_id)

        return _run_checked(self.store, pair.base.reference, pair.trained.reference, self.config, analyses, pair,
                            labelled, started)


def trajectory(base: str | os.PathLike[str], checkpoints: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
               *, steps: Iterable[int] | None = None, recommend_below: str = "MODERATE",
               progress: ProgressCallback | None = None, on_run: RunCallback | None = None,
               config: AnalysisConfig | Mapping[str, Any] | str | Path | None = None, home: str | Path | None = None,
               **settings: Any) -> TrajectoryResult:
    """A sequence of checkpoints against one base, as ``afterburn trajectory`` runs it
    (docs/trajectory-schema.md).

    ``checkpoints``: in training order, each a checkpoint reference, a training output folder (its
    ``checkpoint-<step>`` folders by step) or ``owner/name@rev1,rev2``; ``steps`` replaces the steps read
    from their names or ``trainer_state.json``. Each checkpoint is a run in the store (so every page opens
    it), and each step's weight move from the one before a weights-only run; everything computed before is
    reused, and a trajectory asked for again is read back whole. ``recommend_below``: the band a shipped
    checkpoint's composite must be below. ``progress(stage, done, total, message)`` sees each run's stages
    as ``step 500 generations``; ``on_run(label, run_id)`` hears of each run once recorded. Settings as
    ``Diagnoser``'s.
    """
    from afterburn_core.trajectory import BANDS, discover, run_trajectory

    config = _config("trajectory", config, settings)
    if recommend_below not in BANDS[1:]:
        raise ConfigError(f"recommend_below: {recommend_below!r} is not one of {', '.join(BANDS[1:])}")
    listed = [checkpoints] if isinstance(checkpoints, (str, os.PathLike)) else list(checkpoints)
    specs = discover([_reference("checkpoint", reference) for reference in listed],
                     None if steps is None else [_step(step) for step in steps])
    with RunStore(home) as store:
        return run_trajectory(_reference("base", base), specs, config, store,
                              _ForegroundPairs(store, config, progress, on_run), below_band=recommend_below)


def trajectories(home: str | Path | None = None) -> tuple[StoredTrajectory, ...]:
    """The finished trajectories in the store, newest first, each with the key that reopens it."""
    from afterburn_core.trajectory.stored import stored_trajectories

    with RunStore(home) as store:
        return stored_trajectories(store)


def load_trajectory(key: str, home: str | Path | None = None) -> TrajectoryResult:
    """The stored trajectory of ``key`` (as ``trajectories`` lists it); ``BadInput`` when there is none."""
    from afterburn_core.trajectory.stored import load_trajectory as load

    with RunStore(home) as store:
        return load(store, key)


def _step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        raise BadInput(f"trajectory: a step is a whole number, not {step!r}")
    return step


def _present(run: DiagnosedRun, result: Any, what: str) -> Any:
    """``result``, or ``AnalysisFailed`` when the finished run holds none (a bug rather than bad input)."""
    if result is None:
        raise AnalysisFailed(f"run {run.run_id} finished without a {what} result")
    return result


def inspect(reference: str, adapter_base: str | None = None) -> CheckpointSummary:
    """One model reference resolved (files, kind, fingerprint) and summarized from its headers, as
    ``afterburn inspect`` shows it; ``adapter_base`` is a LoRA adapter's base when its config names none."""
    from afterburn_core.checkpoints import resolve, summarize

    return summarize(resolve(reference, adapter_base=adapter_base))


def list_runs(home: str | Path | None = None) -> list[RunRecord]:
    """Every stored run, newest first; runs whose worker died unseen are marked failed first."""
    from afterburn_core.jobs import reap_dead_workers

    with RunStore(home) as store:
        reap_dead_workers(store)
        return store.list_runs()


def delete_run(run_id: str, home: str | Path | None = None) -> None:
    """Forget a finished run (and the results no other run uses); ``BadInput`` while it is still working."""
    with RunStore(home) as store:
        if store.get_run(run_id).is_active:
            raise BadInput(f"run {run_id} is still working; cancel it first")
        store.delete_run(run_id)
