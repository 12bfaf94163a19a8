"""The ``afterburn`` command: a thin door into afterburn_core's Python API.

Each verb is an API function with hyphens (``weight-diff`` calls
``api.weight_diff``): it parses its options, calls the function, and prints.
A verb's settings options are generated from the config fields its analyses
read (``cli_options``). Errors from the core (``AfterburnError``) become one
``Error: …`` line on stderr and the error's exit code (2 bad input, 1
analysis failed); nothing else is caught, so a bug still shows its traceback
to the developer who has to fix it. Runs started here land in the same store
the dashboard and the API read.

Every value printed here comes from a path, a checkpoint, a suite, a model or
the store, so each goes through ``views.text.safe_text`` (messages included:
``_error_line``), and while a verb runs, what other code prints passes through
``terminal.plain_streams``: no escape sequence or rich markup in a name
reaches the terminal. ``-o`` files are written by ``files.write_file``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from afterburn_core import __version__, api
from afterburn_core.cli_options import settings_options
from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import AfterburnError, AnalysisFailed, BadInput
from afterburn_core.files import write_file
from afterburn_core.store import RunStore
from afterburn_core.terminal import (
    StageBars, plain_streams, print_behaviour, print_internals, print_inventory, print_reward_hack, print_run,
    print_trajectory, print_weight_diff,
)
from afterburn_core.trajectory import BANDS, DEFAULT_RECOMMEND_BELOW, TRAJECTORY_ANALYSES
from afterburn_core.views.text import safe_text

#: The config file picked up from the working directory when --config is not given.
DEFAULT_CONFIG_FILE = ".afterburn.yaml"
#: The summary's width when stdout is a pipe or a file. rich assumes 80 columns there, which wraps every
#: sentence and squeezes tensor names to "model.…"; this is wide enough that no table squeezes a cell and no
#: sentence wraps, so `| grep`, `| cut` and a saved file read whole names and whole lines.
PIPED_WIDTH = 100_000

_out = Console()
_err = Console(stderr=True)

Result = TypeVar("Result")


def _error_line(message: object) -> None:
    """``Error: message`` on stderr, one line; the message names paths and tensors, so it is shown as text."""
    _err.print(f"[bold red]Error:[/] {safe_text(message)}", highlight=False, soft_wrap=True)


def _translate_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AfterburnError as error:
            _error_line(error)
            sys.exit(error.exit_code)

    return wrapper


HOME_HELP = "Run store folder (default $AFTERBURN_HOME or ~/.cache/afterburn)."


def _home_before_the_verb(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A verb's ``--home``, else the one given before the verb (``afterburn --home X diagnose``), else
    ``$AFTERBURN_HOME`` (read by the group, so a typed ``--home`` anywhere wins over the environment)."""
    return value if value is not None else ctx.find_root().params.get("home")


home_option = click.option("--home", default=None, callback=_home_before_the_verb, help=HOME_HELP)


class _PlainGroup(click.Group):
    """The command group, run inside ``terminal.plain_streams``: click's own usage errors quote what was
    typed, and libraries log tensor names and paths, none of it through ``safe_text``."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with plain_streams(_out, _err):
            _out.width = PIPED_WIDTH if not _out.is_terminal else None
            return super().main(*args, **kwargs)


@click.group(cls=_PlainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="afterburn")
@click.option("--home", envvar="AFTERBURN_HOME", default=None, help=f"{HOME_HELP} Also accepted after the verb.")
def main(home: str | None) -> None:
    """Afterburn: what post-training did to a model — weights, behaviour, reward hacking."""


def _pair_options(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a pair verb, in the order --help shows them: the pair, the settings the API's ``verb``
    reads, the config file and the store."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed((
            click.option("--base", "base_reference", required=True,
                         help="Base model: folder, .safetensors file, hub id[@rev], or 'demo'."),
            click.option("--trained", "trained_reference", required=True,
                         help="Post-trained model or LoRA adapter folder (applied to --base), or 'demo'."),
            settings_options(api.VERB_ANALYSES[verb]),
            click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                         help=f"Settings file (default ./{DEFAULT_CONFIG_FILE} when present); options given override it."),
            home_option,
        )):
            command = option(command)
        return command

    return decorate


def _run_verb(verb: Callable[..., Result], base_reference: str, trained_reference: str, config_path: str | None,
              home: str | None, settings: dict[str, Any]) -> Result:
    """Call the API's ``verb`` on the pair here, with a bar per stage; the settings given override the config
    file's (errors propagate)."""
    def started(run_id: str, store_path: Path) -> None:
        _err.print(f"run [bold]{safe_text(run_id)}[/] in {safe_text(store_path)}", highlight=False)

    config = _load_config(config_path)
    with StageBars(_err) as on_update:
        return verb(base_reference, trained_reference, config=config, home=home, progress=on_update,
                    on_start=started, **settings)


#: Exit code of ``--fail-above`` when the composite reward-hack risk is above the given score
#: (0 ok, 1 analysis failed, 2 bad input are taken).
RISK_ABOVE_EXIT_CODE = 3

_fail_above_option = click.option(
    "--fail-above", type=click.FloatRange(0, 100), default=None, metavar="SCORE",
    help=f"Exit with code {RISK_ABOVE_EXIT_CODE} when the composite reward-hack risk is above SCORE (0-100).",
)


def _json_output_option(schema: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
                        help=f"Write the result as JSON (schema: docs/{schema}) instead of a summary.")


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
               highlight=False, markup=False)
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


def _print_or_write(result: Any, output: str | None, show: Callable[[Console, Any], None]) -> None:
    """``show`` the result on stdout, or write it as JSON to ``output``."""
    from afterburn_core.serde import to_jsonable

    if output is None:
        show(_out, result)
        return
    write_file(output, json.dumps(to_jsonable(result), indent=1, allow_nan=False).encode("utf-8"))
    _err.print(f"wrote {safe_text(output)}", highlight=False)


@main.command()
@_pair_options("diagnose")
@click.option("-o", "--output", "outputs", multiple=True, type=click.Path(dir_okay=False),
              help="Write the report; the extension picks the format: .html, .json, .md or .pdf (repeatable).")
@_fail_above_option
@_translate_errors
def diagnose(base_reference: str, trained_reference: str, settings: dict[str, Any], config_path: str | None,
             home: str | None, outputs: tuple[str, ...], fail_above: float | None) -> None:
    """Run every analysis on a base / trained pair, print the summary, write reports."""
    from afterburn_core.reports import check_report_path

    for output in outputs:
        check_report_path(output)  # a bad extension or folder fails before an hour of work, not after
        _check_output_folder(output)
    run = _run_verb(api.diagnose, base_reference, trained_reference, config_path, home, settings)
    report, behaviour_report = run.report, run.behaviour_report()
    if report.inventory is not None:
        print_inventory(_out, report.inventory)
    if report.weights is not None:
        print_weight_diff(_out, report.weights)
    if behaviour_report is not None:
        print_behaviour(_out, behaviour_report)
    if report.reward_hack is not None:
        print_reward_hack(_out, report.reward_hack)
    if report.internals is not None:
        print_internals(_out, report.internals)
    for output in outputs:
        run.save(output)
        _err.print(f"wrote {safe_text(output)}", highlight=False)
    _check_risk(report.reward_hack, fail_above)


@main.command("hack-check")
@_pair_options("hack_check")
@_json_output_option("reward-hack-schema.md")
@_fail_above_option
@_translate_errors
def hack_check(base_reference: str, trained_reference: str, settings: dict[str, Any], config_path: str | None,
               home: str | None, output: str | None, fail_above: float | None) -> None:
    """Score reward hacking: length bias, format gaming, strategy collapse, sycophancy, and the composite."""
    _check_json_output(output, "hack-check")
    result = _run_verb(api.hack_check, base_reference, trained_reference, config_path, home, settings)
    _print_or_write(result, output, print_reward_hack)
    _check_risk(result, fail_above)


@main.command("weight-diff")
@_pair_options("weight_diff")
@_json_output_option("weight-diff-schema.md")
@_translate_errors
def weight_diff(base_reference: str, trained_reference: str, settings: dict[str, Any], config_path: str | None,
                home: str | None, output: str | None) -> None:
    """Compare two checkpoints tensor by tensor, streamed: metrics, spectra, structure, diagnosis."""
    _check_json_output(output, "weight-diff")
    result = _run_verb(api.weight_diff, base_reference, trained_reference, config_path, home, settings)
    _print_or_write(result, output, print_weight_diff)


@main.command()
@_pair_options("behaviour")
@_json_output_option("behaviour-schema.md")
@_translate_errors
def behaviour(base_reference: str, trained_reference: str, settings: dict[str, Any], config_path: str | None,
              home: str | None, output: str | None) -> None:
    """Run the suites through both models and compare what they say: lengths, formats, strategies, accuracy, KL."""
    _check_json_output(output, "behaviour")
    report = _run_verb(api.behaviour, base_reference, trained_reference, config_path, home, settings)
    _print_or_write(report, output, print_behaviour)


@main.command()
@_pair_options("internals")
@_json_output_option("internals-schema.md")
@_translate_errors
def internals(base_reference: str, trained_reference: str, settings: dict[str, Any], config_path: str | None,
              home: str | None, output: str | None) -> None:
    """Read inside the forward pass: activation differences, differential logit lens, activation-difference lens."""
    _check_json_output(output, "internals")
    result = _run_verb(api.internals, base_reference, trained_reference, config_path, home, settings)
    _print_or_write(result, output, print_internals)


class _BandOrScore(click.ParamType):
    """``--fail-above``'s value: a band (``MODERATE``) or a 0–100 score."""

    name = "BAND|SCORE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | float:
        if isinstance(value, float) or str(value).upper() in BANDS:
            return value if isinstance(value, float) else str(value).upper()
        try:
            score = float(value)
        except ValueError:
            score = -1.0
        if not 0 <= score <= 100:
            self.fail(f"{value!r} is neither a band ({', '.join(BANDS)}) nor a score from 0 to 100", param, ctx)
        return score


def _steps(text: str | None) -> list[int] | None:
    """``--steps 500,1000`` as whole numbers; ``BadInput`` naming the first that is not one."""
    if text is None:
        return None
    steps = [part.strip() for part in text.split(",")]
    for step in steps:
        if not step.isdigit():
            raise BadInput(f"--steps: {step!r} is not a whole number; give one step per checkpoint, "
                           "comma-separated (--steps 500,1000,1500)")
    return [int(step) for step in steps]


def _check_last_checkpoint(result: Any, fail_above: str | float | None) -> None:
    """Exit with ``RISK_ABOVE_EXIT_CODE`` when the last checkpoint's composite is above the band or score."""
    if fail_above is None:
        return
    last = result.checkpoints[-1]
    composite = last.reward_hack.composite
    if isinstance(fail_above, str):
        above, given = BANDS.index(composite.band) > BANDS.index(fail_above), fail_above
    else:
        above, given = composite.score > fail_above, f"{fail_above:g}"
    if above:
        _err.print(f"composite reward-hack risk of the last checkpoint (step {last.step:d}) is {composite.score:.1f} "
                   f"{safe_text(composite.band)}, above --fail-above {safe_text(given)}", highlight=False, markup=False)
        sys.exit(RISK_ABOVE_EXIT_CODE)


@main.command()
@click.option("--base", "base_reference", required=True,
              help="The model the checkpoints were trained from: folder, .safetensors file, hub id[@rev], or 'demo'.")
@click.argument("checkpoints", nargs=-1)
@click.option("--steps", default=None, metavar="STEP,STEP,…",
              help="Each checkpoint's training step (default: from checkpoint-<step> names or trainer_state.json, "
                   "else 1, 2, …).")
@settings_options(TRAJECTORY_ANALYSES)
@click.option("--recommend-below", type=click.Choice(BANDS[1:]),
              default=DEFAULT_RECOMMEND_BELOW, show_default=True,
              help="Recommend the best-accuracy checkpoint among those whose composite risk is below this band.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the trajectory report instead of a summary; the extension picks the format: .html, .json "
                   "(schema: docs/trajectory-schema.md), .md or .pdf.")
@click.option("--fail-above", type=_BandOrScore(), default=None,
              help=f"Exit with code {RISK_ABOVE_EXIT_CODE} when the last checkpoint's composite reward-hack risk is "
                   "above this band (LOW, MODERATE, HIGH) or score (0-100).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help=f"Settings file (default ./{DEFAULT_CONFIG_FILE} when present); options given override it.")
@home_option
@_translate_errors
def trajectory(base_reference: str, checkpoints: tuple[str, ...], steps: str | None, settings: dict[str, Any],
               recommend_below: str, output: str | None, fail_above: str | float | None, config_path: str | None,
               home: str | None) -> None:
    """Diagnose checkpoints of one training run against its base: when each reward hack emerged, how far the
    weights moved, which checkpoint to ship. CHECKPOINTS: folders, a training output folder (its
    checkpoint-<step> folders), owner/name@rev1,rev2 or LoRA adapters, in training order."""
    from afterburn_core.reports import check_report_path
    from afterburn_core.reports.trajectory import write_trajectory_report

    if output is not None:
        check_report_path(output)  # a bad extension or folder fails before the runs, not after
        _check_output_folder(output)
    config = _load_config(config_path)

    def recorded(label: str, run_id: str) -> None:
        _err.print(f"{safe_text(label)}: run [bold]{safe_text(run_id)}[/]", highlight=False)

    with StageBars(_err) as on_update:
        result = api.trajectory(base_reference, checkpoints, steps=_steps(steps), recommend_below=recommend_below,
                                config=config, home=home, progress=on_update, on_run=recorded, **settings)
    if output is None:
        print_trajectory(_out, result)
    else:
        write_trajectory_report(result, output)
        _err.print(f"wrote {safe_text(output)}", highlight=False)
    _check_last_checkpoint(result, fail_above)


def _load_config(config_path: str | None) -> AnalysisConfig:
    if config_path is not None:
        return load_config_file(config_path)
    if Path(DEFAULT_CONFIG_FILE).is_file():
        _err.print(f"using settings from ./{DEFAULT_CONFIG_FILE}", highlight=False, markup=False)
        return load_config_file(DEFAULT_CONFIG_FILE)
    return AnalysisConfig()


@main.command()
@click.argument("reference")
@click.option("--base", "adapter_base", default=None, help="Base model of a LoRA adapter (default: from adapter_config.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved checkpoint as JSON.")
@_translate_errors
def inspect(reference: str, adapter_base: str | None, as_json: bool) -> None:
    """Resolve one model reference and show its files, fingerprint and tensors."""
    from afterburn_core.serde import to_jsonable

    summary = api.inspect(reference, adapter_base)
    if as_json:
        click.echo(json.dumps(to_jsonable(summary), indent=2))
        return
    checkpoint = summary.checkpoint
    _out.print(f"[bold]{safe_text(reference)}[/] → {safe_text(checkpoint.kind)} at {safe_text(checkpoint.root)}",
               highlight=False)
    if checkpoint.revision:
        _out.print(f"revision {safe_text(checkpoint.revision)}", highlight=False)
    if checkpoint.adapter_base is not None:
        _out.print(f"adapter of {safe_text(checkpoint.adapter_base.reference)} ({safe_text(checkpoint.adapter_base.root)})",
                   highlight=False)
    _out.print(
        f"{safe_text(summary.architecture or 'unknown architecture')}: {summary.num_tensors:,} tensors, "
        f"{summary.num_parameters:,} parameters, {summary.size_bytes / 2**20:.1f} MiB", highlight=False,
    )
    _out.print(f"fingerprint {safe_text(checkpoint.fingerprint)}", highlight=False)


@main.group()
def runs() -> None:
    """List, show or delete stored runs."""


@runs.command("list")
@home_option
@_translate_errors
def runs_list(home: str | None) -> None:
    """Every stored run, newest first."""
    records = api.list_runs(home)
    if not records:
        _out.print("no runs yet: start one with `afterburn diagnose --base demo --trained demo`", markup=False)
        return
    table = Table()
    for column in ("run", "status", "base", "trained", "started", "duration"):
        table.add_column(column)
    for record in records:
        table.add_row(
            safe_text(record.run_id), safe_text(record.status), safe_text(record.base_reference),
            safe_text(record.trained_reference), f"{dt.datetime.fromtimestamp(record.created_at):%Y-%m-%d %H:%M}",
            f"{record.duration_s:.1f} s" if record.duration_s is not None else "",
        )
    _out.print(table)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run and every result it holds as one JSON document (the config as an object).")
@home_option
@_translate_errors
def runs_show(run_id: str, as_json: bool, home: str | None) -> None:
    """One run: where its numbers come from (models, status, stages, timings, settings, suites)."""
    from afterburn_core.reports import load_report
    from afterburn_core.serde import to_jsonable

    with RunStore(home) as store:
        record = store.get_run(run_id)
        if as_json:
            document = to_jsonable(record)
            document["config"] = json.loads(document.pop("config_json"))
            results = {kind: store.get_result(key) for kind, key in store.run_result_keys(run_id).items()}
            click.echo(json.dumps({"run": document, "results": results}, indent=2))
            return
        report = None if record.is_active else load_report(store, run_id)
    print_run(_out, record, report)


@runs.command("delete")
@click.argument("run_id")
@home_option
@_translate_errors
def runs_delete(run_id: str, home: str | None) -> None:
    """Forget a run (and results no other run uses)."""
    api.delete_run(run_id, home)
    _out.print(f"deleted run {safe_text(run_id)}", highlight=False)


@main.command()
@click.option("--port", type=int, default=8501, show_default=True, help="Port on localhost.")
@home_option
def serve(port: int, home: str | None) -> None:
    """Open the dashboard (streamlit run app.py) on localhost."""
    import os
    import subprocess

    # An installed wheel carries the dashboard inside the package (setup.py); a checkout has it beside it.
    package = Path(__file__).resolve().parent
    app = next((app for app in (package / "dashboard" / "app.py", package.parent / "app.py") if app.is_file()), None)
    if app is None:
        _error_line(f"the dashboard's app.py is in neither {package / 'dashboard'} nor {package.parent}; "
                    "reinstall afterburn-diagnostics")
        sys.exit(2)
    environment = dict(os.environ)
    if home:
        environment["AFTERBURN_HOME"] = home
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", "localhost", "--server.port", str(port)]
    sys.exit(subprocess.call(command, cwd=app.parent, env=environment))
