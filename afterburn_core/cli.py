"""The ``afterburn`` command: a thin door into afterburn_core.

Each command parses its options, calls the core, and prints. Errors from the
core (``AfterburnError``) become one ``Error: …`` line on stderr and the
error's exit code (2 bad input, 1 analysis failed); nothing else is caught, so
a bug still shows its traceback to the developer who has to fix it.
Runs started here land in the same store the dashboard reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from afterburn_core import __version__
from afterburn_core.config import DEVICES, TRAINING_METHODS, AnalysisConfig, load_config_file
from afterburn_core.errors import AfterburnError, AnalysisFailed, BadInput
from afterburn_core.store import RunStore
from afterburn_core.terminal import StageBars, print_behaviour, print_inventory, print_reward_hack, print_weight_diff
from afterburn_core.weights.types import WeightDiffResult

#: The config file picked up from the working directory when --config is not given.
DEFAULT_CONFIG_FILE = ".afterburn.yaml"

_out = Console()
_err = Console(stderr=True)


def _translate_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AfterburnError as error:
            _err.print(f"[bold red]Error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(error.exit_code)

    return wrapper


home_option = click.option(
    "--home", envvar="AFTERBURN_HOME", default=None, help="Run store folder (default $AFTERBURN_HOME or ~/.cache/afterburn)."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="afterburn")
def main() -> None:
    """Afterburn: what post-training did to a model — weights, behaviour, reward hacking."""


def _pair_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every pair command shares, in the order --help shows them."""
    for option in reversed((
        click.option("--base", "base_reference", required=True,
                      help="Base model: folder, .safetensors file, hub id[@rev], or 'demo'."),
        click.option("--trained", "trained_reference", required=True,
                     help="Post-trained model or LoRA adapter folder (applied to --base), or 'demo'."),
        click.option("--device", type=click.Choice(DEVICES), default=None, help="Where to compute (default auto)."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help=f"Settings file (default ./{DEFAULT_CONFIG_FILE} when present)."),
        home_option,
    )):
        command = option(command)
    return command


def _run_pair(store: RunStore, base_reference: str, trained_reference: str, config: AnalysisConfig,
              analyses: tuple[str, ...] | None) -> str:
    """Create a run, execute it here with a bar per stage, return its id (errors propagate)."""
    from afterburn_core.jobs import create_run
    from afterburn_core.runner import execute_run

    run_id = create_run(store, base_reference, trained_reference, config, analyses)
    _err.print(f"run [bold]{run_id}[/] in {escape(str(store.path))}", highlight=False)
    with StageBars(_err) as on_update:
        execute_run(store, run_id, on_update=on_update, raise_errors=True)
    return run_id


def _settings(config_path: str | None, **flags: Any) -> AnalysisConfig:
    """The config file's settings, overridden by the flags the user actually gave."""
    return _load_config(config_path).replace(**{name: value for name, value in flags.items() if value is not None})


#: Exit code of ``--fail-above`` when the composite reward-hack risk is above the given score
#: (0 ok, 1 analysis failed, 2 bad input are taken).
RISK_ABOVE_EXIT_CODE = 3

_method_option = click.option("--method", type=click.Choice(TRAINING_METHODS), default=None,
                              help="How the trained model was post-trained (sets the reward-hack weights).")
_fail_above_option = click.option(
    "--fail-above", type=click.FloatRange(0, 100), default=None, metavar="SCORE",
    help=f"Exit with code {RISK_ABOVE_EXIT_CODE} when the composite reward-hack risk is above SCORE (0-100).",
)


def _generation_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that generates answers."""
    for option in reversed((
        click.option("--suites", multiple=True, help="Prompt suites: built-in names (math, code, reasoning, safety, "
                     "sycophancy) or .yaml/.jsonl files; repeat or comma-separate (default: all built-ins)."),
        click.option("--max-new-tokens", type=int, default=None, help="Most tokens generated per answer (default 128)."),
        click.option("--batch-size", type=int, default=None, help="Prompts per batch; 0 picks one by memory (default)."),
        click.option("--temperature", type=float, default=None, help="0 = greedy (default); > 0 samples."),
        click.option("--top-p", type=float, default=None, help="Nucleus sampling mass when --temperature > 0 (default 1)."),
        click.option("--seed", type=int, default=None, help="Seed of sampling and of the bootstrap / permutation tests."),
    )):
        command = option(command)
    return command


def _suite_names(suites: tuple[str, ...]) -> tuple[str, ...] | None:
    names = tuple(part.strip() for entry in suites for part in entry.split(",") if part.strip())
    return names or None


def _check_risk(result: Any, fail_above: float | None) -> None:
    """Exit with ``RISK_ABOVE_EXIT_CODE`` when the composite risk is above ``fail_above``.

    A run without a composite cannot pass the gate: a CI job that asked for one fails rather than go green unchecked.
    """
    if fail_above is None:
        return
    if result is None:
        raise AnalysisFailed(f"--fail-above {fail_above:g}: this run has no reward-hack result to compare with")
    if result.composite.score <= fail_above:
        return
    _err.print(f"composite reward-hack risk {result.composite.score:.1f} is above --fail-above {fail_above:g}",
               highlight=False)
    sys.exit(RISK_ABOVE_EXIT_CODE)


def _check_output_folder(output: str) -> None:
    """``BadInput`` when ``output``'s folder does not exist: checked before the run, not after it."""
    folder = Path(output).expanduser().parent
    if not folder.is_dir():
        raise BadInput(f"-o {output}: the folder {folder} does not exist; create it or write elsewhere")


def _check_json_output(output: str | None, command: str) -> None:
    """A JSON ``-o`` of ``command``: a *.json name in a folder that exists, checked before any work."""
    if output is None:
        return
    if not output.lower().endswith(".json"):
        raise BadInput(f"-o {output}: {command} writes JSON; name the file *.json")
    _check_output_folder(output)


def _behaviour_report(report: Any) -> Any:
    """The behaviour summary of a finished run's report, as ``afterburn behaviour`` prints it."""
    from afterburn_core.behaviour.report import build_behaviour_report
    from afterburn_core.weights.analysis import checkpoint_ref

    skipped = next((s.message for s in report.run.stages if s.stage == "token_kl" and s.status == "skipped"), None)
    return build_behaviour_report(
        checkpoint_ref(report.inventory.base.checkpoint), checkpoint_ref(report.inventory.trained.checkpoint),
        report.generations, report.behaviour, report.token_kl, skipped,
    )


@main.command()
@_pair_options
@_method_option
@_generation_options
@click.option("-o", "--output", "outputs", multiple=True, type=click.Path(dir_okay=False),
              help="Write the report; the extension picks the format: .html, .json, .md or .pdf (repeatable).")
@_fail_above_option
@_translate_errors
def diagnose(base_reference: str, trained_reference: str, device: str | None, config_path: str | None,
             home: str | None, method: str | None, suites: tuple[str, ...], max_new_tokens: int | None,
             batch_size: int | None, temperature: float | None, top_p: float | None, seed: int | None, outputs: tuple[str, ...],
             fail_above: float | None) -> None:
    """Run every analysis on a base / trained pair, print the summary, write reports."""
    from afterburn_core.reports import check_report_path, load_report, write_report

    for output in outputs:
        check_report_path(output)  # a bad extension or folder fails before an hour of work, not after
        _check_output_folder(output)
    config = _settings(config_path, method=method, device=device, suites=_suite_names(suites),
                       max_new_tokens=max_new_tokens, batch_size=batch_size, temperature=temperature, top_p=top_p, seed=seed)
    with RunStore(home) as store:
        run_id = _run_pair(store, base_reference, trained_reference, config, None)
        report = load_report(store, run_id)
    if report.inventory is not None:
        print_inventory(_out, report.inventory)
    if report.weights is not None:
        print_weight_diff(_out, report.weights)
    if report.behaviour is not None and report.generations is not None and report.inventory is not None:
        print_behaviour(_out, _behaviour_report(report))
    if report.reward_hack is not None:
        print_reward_hack(_out, report.reward_hack)
    for output in outputs:
        write_report(report, output)
        _err.print(f"wrote {escape(output)}", highlight=False)
    _check_risk(report.reward_hack, fail_above)


@main.command("hack-check")
@_pair_options
@_method_option
@_generation_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the result as JSON (schema: docs/reward-hack-schema.md) instead of a summary.")
@_fail_above_option
@_translate_errors
def hack_check(base_reference: str, trained_reference: str, device: str | None, config_path: str | None,
               home: str | None, method: str | None, suites: tuple[str, ...], max_new_tokens: int | None,
               batch_size: int | None, temperature: float | None, top_p: float | None, seed: int | None, output: str | None,
               fail_above: float | None) -> None:
    """Score reward hacking: length bias, format gaming, strategy collapse, sycophancy, and the composite."""
    from afterburn_core.reward_hack.types import RewardHackResult
    from afterburn_core.store import load_result
    from afterburn_core.serde import to_jsonable

    _check_json_output(output, "hack-check")
    config = _settings(config_path, method=method, device=device, suites=_suite_names(suites),
                       max_new_tokens=max_new_tokens, batch_size=batch_size, temperature=temperature, top_p=top_p, seed=seed)
    with RunStore(home) as store:
        run_id = _run_pair(store, base_reference, trained_reference, config, ("reward_hack",))
        result = load_result(store, run_id, RewardHackResult)
    if output is None:
        print_reward_hack(_out, result)
    else:
        _write_json(Path(output), to_jsonable(result))
        _err.print(f"wrote {escape(output)}", highlight=False)
    _check_risk(result, fail_above)


@main.command("weight-diff")
@_pair_options
@click.option("--exact", is_flag=True, default=None, help="Full spectra (fp64 Gram / svdvals) instead of the randomized top-k.")
@click.option("--top-k", type=int, default=None, help="Singular values per ΔW in the default mode (default 32).")
@click.option("--seed", type=int, default=None, help="Seed of the randomized range finder (default 0).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the result as JSON (schema: docs/weight-diff-schema.md) instead of a summary.")
@_translate_errors
def weight_diff(base_reference: str, trained_reference: str, device: str | None, config_path: str | None,
                home: str | None, exact: bool | None, top_k: int | None, seed: int | None, output: str | None) -> None:
    """Compare two checkpoints tensor by tensor, streamed: metrics, spectra, structure, diagnosis."""
    from afterburn_core.store import load_result
    from afterburn_core.serde import to_jsonable

    _check_json_output(output, "weight-diff")
    config = _settings(config_path, device=device, exact_spectra=exact, spectrum_top_k=top_k, seed=seed)
    with RunStore(home) as store:
        run_id = _run_pair(store, base_reference, trained_reference, config, ("weights",))
        result = load_result(store, run_id, WeightDiffResult)
    if output is None:
        print_weight_diff(_out, result)
        return
    _write_json(Path(output), to_jsonable(result))
    _err.print(f"wrote {escape(output)}", highlight=False)


@main.command()
@_pair_options
@_generation_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the result as JSON (schema: docs/behaviour-schema.md) instead of a summary.")
@_translate_errors
def behaviour(base_reference: str, trained_reference: str, device: str | None, config_path: str | None,
              home: str | None, suites: tuple[str, ...], max_new_tokens: int | None, batch_size: int | None,
              temperature: float | None, top_p: float | None, seed: int | None, output: str | None) -> None:
    """Run the suites through both models and compare what they say: lengths, formats, strategies, accuracy, KL."""
    from afterburn_core.behaviour.report import build_behaviour_report
    from afterburn_core.behaviour.types import BehaviourStats
    from afterburn_core.generation.results import GenerationsResult, TokenKLResult
    from afterburn_core.store import load_result
    from afterburn_core.serde import to_jsonable
    from afterburn_core.weights.analysis import checkpoint_ref

    _check_json_output(output, "behaviour")
    config = _settings(config_path, device=device, suites=_suite_names(suites), max_new_tokens=max_new_tokens,
                       batch_size=batch_size, temperature=temperature, top_p=top_p, seed=seed)
    with RunStore(home) as store:
        run_id = _run_pair(store, base_reference, trained_reference, config, ("behaviour", "token_kl"))
        record = store.get_run(run_id)
        skipped = next((s.message for s in record.stages if s.stage == "token_kl" and s.status == "skipped"), None)
        from afterburn_core.checkpoints import resolve_pair

        base, trained = resolve_pair(record.base_reference, record.trained_reference)
        report = build_behaviour_report(
            checkpoint_ref(base), checkpoint_ref(trained), load_result(store, run_id, GenerationsResult),
            load_result(store, run_id, BehaviourStats), load_result(store, run_id, TokenKLResult), skipped,
        )
    if output is None:
        print_behaviour(_out, report)
        return
    _write_json(Path(output), to_jsonable(report))
    _err.print(f"wrote {escape(output)}", highlight=False)


def _write_json(path: Path, document: Any) -> None:
    """Write atomically: a reader never sees half a file, a failure leaves the old one."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        raise BadInput(f"cannot write {path}: {error.strerror}") from None


def _load_config(config_path: str | None) -> AnalysisConfig:
    if config_path is not None:
        return load_config_file(config_path)
    if Path(DEFAULT_CONFIG_FILE).is_file():
        _err.print(f"using settings from ./{DEFAULT_CONFIG_FILE}", highlight=False)
        return load_config_file(DEFAULT_CONFIG_FILE)
    return AnalysisConfig()


@main.command()
@click.argument("reference")
@click.option("--base", "adapter_base", default=None, help="Base model of a LoRA adapter (default: from adapter_config.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved checkpoint as JSON.")
@_translate_errors
def inspect(reference: str, adapter_base: str | None, as_json: bool) -> None:
    """Resolve one model reference and show its files, fingerprint and tensors."""
    from afterburn_core.checkpoints import resolve, summarize
    from afterburn_core.serde import to_jsonable

    summary = summarize(resolve(reference, adapter_base=adapter_base))
    if as_json:
        click.echo(json.dumps(to_jsonable(summary), indent=2))
        return
    checkpoint = summary.checkpoint
    _out.print(f"[bold]{escape(reference)}[/] → {checkpoint.kind} at {escape(checkpoint.root)}", highlight=False)
    if checkpoint.revision:
        _out.print(f"revision {checkpoint.revision}", highlight=False)
    if checkpoint.adapter_base is not None:
        _out.print(f"adapter of {checkpoint.adapter_base.reference} ({checkpoint.adapter_base.root})", highlight=False, markup=False)
    _out.print(
        f"{summary.architecture or 'unknown architecture'}: {summary.num_tensors:,} tensors, "
        f"{summary.num_parameters:,} parameters, {summary.size_bytes / 2**20:.1f} MiB", highlight=False,
    )
    _out.print(f"fingerprint {checkpoint.fingerprint}", highlight=False, markup=False)


@main.group()
def runs() -> None:
    """List, show or delete stored runs."""


@runs.command("list")
@home_option
@_translate_errors
def runs_list(home: str | None) -> None:
    """Every stored run, newest first."""
    from afterburn_core.jobs import reap_dead_workers

    with RunStore(home) as store:
        reap_dead_workers(store)
        records = store.list_runs()
    if not records:
        _out.print("no runs yet: start one with `afterburn diagnose --base demo --trained demo`")
        return
    table = Table()
    for column in ("run", "status", "base", "trained", "started", "duration"):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.run_id, record.status, escape(record.base_reference), escape(record.trained_reference),
            dt.datetime.fromtimestamp(record.created_at).strftime("%Y-%m-%d %H:%M"),
            f"{record.duration_s:.1f} s" if record.duration_s is not None else "",
        )
    _out.print(table)


@runs.command("show")
@click.argument("run_id")
@home_option
@_translate_errors
def runs_show(run_id: str, home: str | None) -> None:
    """One run: its status, stages and results as JSON."""
    from afterburn_core.serde import to_jsonable

    with RunStore(home) as store:
        record = store.get_run(run_id)
        results = {kind: store.get_result(key) for kind, key in store.run_result_keys(run_id).items()}
    click.echo(json.dumps({"run": to_jsonable(record), "results": results}, indent=2))


@runs.command("delete")
@click.argument("run_id")
@home_option
@_translate_errors
def runs_delete(run_id: str, home: str | None) -> None:
    """Forget a run (and results no other run uses)."""
    with RunStore(home) as store:
        if store.get_run(run_id).is_active:
            raise BadInput(f"run {run_id} is still working; cancel it first")
        store.delete_run(run_id)
    _out.print(f"deleted run {run_id}", highlight=False)


@main.command()
@click.option("--port", type=int, default=8501, show_default=True, help="Port on localhost.")
@home_option
def serve(port: int, home: str | None) -> None:
    """Open the dashboard (streamlit run app.py) on localhost."""
    import os
    import subprocess

    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.is_file():
        _err.print(f"Error: the dashboard's app.py is not next to afterburn_core ({app}); run from a source checkout")
        sys.exit(2)
    environment = dict(os.environ)
    if home:
        environment["AFTERBURN_HOME"] = home
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", "localhost", "--server.port", str(port)]
    sys.exit(subprocess.call(command, cwd=app.parent, env=environment))
