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
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from afterburn_core import __version__
from afterburn_core.config import DEVICES, TRAINING_METHODS, AnalysisConfig, load_config_file
from afterburn_core.errors import AfterburnError, BadInput
from afterburn_core.store import RunStore

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


def _store(home: str | None) -> RunStore:
    return RunStore(home)


home_option = click.option(
    "--home", envvar="AFTERBURN_HOME", default=None, help="Run store folder (default $AFTERBURN_HOME or ~/.cache/afterburn)."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="afterburn")
def main() -> None:
    """Afterburn: what post-training did to a model — weights, behaviour, reward hacking."""


@main.command()
@click.option("--base", "base_reference", required=True, help="Base model: folder, .safetensors file, hub id[@rev], or 'demo'.")
@click.option("--trained", "trained_reference", required=True, help="Post-trained model or LoRA adapter folder, or 'demo'.")
@click.option("--method", type=click.Choice(TRAINING_METHODS), default=None, help="How the trained model was post-trained.")
@click.option("--device", type=click.Choice(DEVICES), default=None, help="Where to compute (default auto).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help=f"Settings file (default ./{DEFAULT_CONFIG_FILE} when present).")
@home_option
@_translate_errors
def diagnose(base_reference: str, trained_reference: str, method: str | None, device: str | None,
             config_path: str | None, home: str | None) -> None:
    """Run every analysis on a base / trained pair and print the summary."""
    from afterburn_core.jobs import create_run
    from afterburn_core.runner import execute_run, load_result
    from afterburn_core.types import InventoryResult

    config = _load_config(config_path).replace(
        **{name: value for name, value in (("method", method), ("device", device)) if value is not None}
    )
    with _store(home) as store:
        run_id = create_run(store, base_reference, trained_reference, config)
        _err.print(f"run [bold]{run_id}[/] in {store.path}", highlight=False)
        with _progress_bar() as on_update:
            execute_run(store, run_id, on_update=on_update, raise_errors=True)
        _print_inventory(load_result(store, run_id, InventoryResult))


def _load_config(config_path: str | None) -> AnalysisConfig:
    if config_path is not None:
        return load_config_file(config_path)
    if Path(DEFAULT_CONFIG_FILE).is_file():
        _err.print(f"using settings from ./{DEFAULT_CONFIG_FILE}", highlight=False)
        return load_config_file(DEFAULT_CONFIG_FILE)
    return AnalysisConfig()


class _progress_bar:
    """A rich bar per stage, fed by the runner's progress callback."""

    def __enter__(self) -> Callable[[str, int, int, str], None]:
        self._progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.fields[message]}"),
            TimeElapsedColumn(), console=_err, transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._progress.__enter__()
        return self._update

    def _update(self, stage: str, done: int, total: int, message: str) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=max(total, 1), message="")
        self._progress.update(self._tasks[stage], completed=done, total=max(total, 1), message=message)

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(*exc_info)


def _print_inventory(inventory: Any) -> None:
    table = Table(title="Checkpoints", show_lines=False)
    table.add_column("")
    table.add_column("base")
    table.add_column("trained")
    sides = (inventory.base, inventory.trained)
    rows = (
        ("reference", [s.checkpoint.reference for s in sides]),
        ("kind", [s.checkpoint.kind for s in sides]),
        ("architecture", [s.architecture or "?" for s in sides]),
        ("layers / hidden / vocab", [f"{s.num_layers} / {s.hidden_size} / {s.vocab_size}" for s in sides]),
        ("tensors", [f"{s.num_tensors:,}" for s in sides]),
        ("parameters", [f"{s.num_parameters:,}" for s in sides]),
        ("dtypes", [", ".join(f"{d}: {n:,}" for d, n in sorted(s.parameters_by_dtype.items())) for s in sides]),
        ("fingerprint", [s.checkpoint.fingerprint[:16] for s in sides]),
    )
    for label, values in rows:
        table.add_row(label, *(click.unstyle(v) for v in values))
    _out.print(table)
    _out.print(
        f"{inventory.shared_tensors:,} tensors on both sides, {len(inventory.base_only)} base only, "
        f"{len(inventory.trained_only)} trained only, {len(inventory.shape_changed)} with a new shape, "
        f"{inventory.dtype_changed} with a new dtype",
        highlight=False,
    )
    for base_entry, trained_entry in inventory.shape_changed:
        _out.print(f"  shape {base_entry.name}: {list(base_entry.shape)} → {list(trained_entry.shape)}", highlight=False)


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
    _out.print(f"[bold]{click.unstyle(reference)}[/] → {checkpoint.kind} at {checkpoint.root}", highlight=False)
    if checkpoint.revision:
        _out.print(f"revision {checkpoint.revision}", highlight=False)
    if checkpoint.adapter_base is not None:
        _out.print(f"adapter of {checkpoint.adapter_base.reference} ({checkpoint.adapter_base.root})", highlight=False)
    _out.print(
        f"{summary.architecture or 'unknown architecture'}: {summary.num_tensors:,} tensors, "
        f"{summary.num_parameters:,} parameters, {summary.size_bytes / 2**20:.1f} MiB", highlight=False,
    )
    _out.print(f"fingerprint {checkpoint.fingerprint}", highlight=False)


@main.group()
def runs() -> None:
    """List, show or delete stored runs."""


@runs.command("list")
@home_option
@_translate_errors
def runs_list(home: str | None) -> None:
    """Every stored run, newest first."""
    from afterburn_core.jobs import reap_dead_workers

    with _store(home) as store:
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
            record.run_id, record.status, click.unstyle(record.base_reference), click.unstyle(record.trained_reference),
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

    with _store(home) as store:
        record = store.get_run(run_id)
        results = {kind: store.get_result(key) for kind, key in store.run_result_keys(run_id).items()}
    click.echo(json.dumps({"run": to_jsonable(record), "results": results}, indent=2))


@runs.command("delete")
@click.argument("run_id")
@home_option
@_translate_errors
def runs_delete(run_id: str, home: str | None) -> None:
    """Forget a run (and results no other run uses)."""
    with _store(home) as store:
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
