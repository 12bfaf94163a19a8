"""Rich terminal views of results, for the CLI: progress bars, the inventory, the weight diff.

It draws what ``afterburn_core.views`` returns (the ranked tensors, the
detectors in registry order); every value it prints goes through
``views.text.safe_text`` (numbers through a format), so ``[bold]`` in a tensor
name stays text and an escape sequence cannot reach the terminal. What other
code prints while a verb runs (a library's warning naming a tensor or a path)
goes through ``views.text.plain_text`` (``plain_streams``). It computes nothing.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from afterburn_core.types import InventoryResult
from afterburn_core.views.internals_causal import AMPLIFICATION_NOTE, LOCALIZATION_NOTE, PART_TITLES, CausalTable, causal_view
from afterburn_core.views.reward_hack import detectors as ordered_detectors
from afterburn_core.views import weights_detail
from afterburn_core.views.text import plain_text, safe_text
from afterburn_core.views.weights import display_names, rank_90_text, ranked_tensors, top_tensors
from afterburn_core.weights.types import WeightDiffResult


class _PlainStream(io.TextIOBase):
    """A text stream that writes what it is given through ``plain_text``: escape sequences removed,
    other invisible characters spelled (carriage returns kept, for a library's download bar)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes a stream with bytes to tell binary from text
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._stream.write(plain_text(text, keep="\n\t\r"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self._stream, "errors", None) or "strict"


@contextlib.contextmanager
def plain_streams(*consoles: Console) -> Iterator[None]:
    """While open, whatever is written to ``sys.stdout`` / ``sys.stderr`` goes through ``plain_text``.

    That is what code other than ours prints (transformers' load report lists unexpected
    tensor names and the folder; Python warnings; log lines), which no ``safe_text`` call
    can reach. ``consoles`` keep the real streams meanwhile: what they print is ours, its
    values already through ``safe_text``, its colours wanted.
    """
    stdout, stderr = sys.stdout, sys.stderr
    for console in consoles:
        console.file = stderr if console.stderr else stdout
    sys.stdout, sys.stderr = _PlainStream(stdout), _PlainStream(stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        for console in consoles:
            console.file = None  # follow sys.stdout / sys.stderr again, as a Console made without a file does


class StageBars:
    """A rich bar per stage, fed by the runner's progress callback; shown from the first report on, so
    input refused before any stage prints its error alone."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def __enter__(self) -> Callable[[str, int, int, str], None]:
        self._progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.fields[message]}"),
            TimeElapsedColumn(), console=self._console, transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        return self._update

    def _update(self, stage: str, done: int, total: int, message: str) -> None:
        if not self._tasks:
            self._progress.start()
            # On a terminal rich now sends what others print to its console, above the bars, turning escape
            # sequences into styles as it goes (an OSC title, a NUL pass): what it gets is made plain first.
            self._streams = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = _PlainStream(sys.stdout), _PlainStream(sys.stderr)
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(safe_text(stage), total=max(total, 1), message="")
        self._progress.update(self._tasks[stage], completed=done, total=max(total, 1), message=safe_text(message))

    def __exit__(self, *exc_info: object) -> None:
        if self._tasks:
            sys.stdout, sys.stderr = self._streams
            self._progress.stop()


def print_inventory(console: Console, inventory: InventoryResult) -> None:
    """The verdict, both checkpoints side by side (the view's rows), and the tensors that do not pair up."""
    from afterburn_core.views.inventory import inventory_view

    view = inventory_view(inventory)
    console.print(safe_text(view.verdict), highlight=False, markup=False)
    table = Table(title="Checkpoints")
    for column in ("", "base", "trained"):
        table.add_column(column)
    for label, base, trained in zip(view.labels, view.base, view.trained):
        table.add_row(safe_text(label), safe_text(base), safe_text(trained))
    console.print(table)
    console.print(safe_text(" · ".join(f"{label}: {value}" for label, value in view.counts)), highlight=False, markup=False)
    for base_entry, trained_entry in inventory.shape_changed:
        console.print(f"  shape {safe_text(base_entry.display_name)}: {safe_text(list(base_entry.shape))} → "
                      f"{safe_text(list(trained_entry.shape))}", highlight=False)


def print_weight_diff(console: Console, result: WeightDiffResult) -> None:
    """Profile, findings, the most changed tensors, and what sits on one side only."""
    console.print(
        f"Weight profile: [bold]{safe_text(result.diagnosis.profile)}[/]  ·  {len(result.tensors):,} tensors  ·  "
        f"top 10 % hold {result.concentration.top_decile_share:.0%} of ‖ΔW‖²  ·  Gini {result.concentration.gini:.2f}"
        f"  ·  {result.seconds:.1f} s on {safe_text(result.device)}",
        highlight=False,
    )
    for finding in result.diagnosis.findings:
        console.print(f"  • [bold]{safe_text(finding.title)}[/]: {safe_text(finding.detail)}", highlight=False)
    table = Table(title=f"Most changed tensors (of {len(ranked_tensors(result).tensors):,} compared)")
    for column in ("tensor", "status", "shape", "‖ΔW‖/‖W‖", "‖ΔW‖", "cos", "rank 90 %", "low-rank"):
        table.add_column(column, justify="left" if column in ("tensor", "status") else "right")
    for tensor in top_tensors(result):
        table.add_row(
            safe_text(tensor.display_name), safe_text(tensor.status), safe_text("×".join(map(str, tensor.shape))),
            f"{tensor.relative_change:.4g}", f"{tensor.frob_norm_delta:.4g}",
            f"{tensor.cosine_similarity:.6f}" if tensor.cosine_similarity is not None else "",
            safe_text(rank_90_text(tensor)), {True: "yes", False: "no", None: ""}[tensor.low_rank],
        )
    console.print(table)
    one_sided = [t for t in result.tensors if t.status in ("base_only", "trained_only", "resized", "tied")]
    names = display_names(result.tensors)
    for tensor in one_sided:
        extra = f" (+{tensor.added_rows:,} rows)" if tensor.status == "resized" else (
            f" (tied to {safe_text(names.get(tensor.tied_to, tensor.tied_to))})" if tensor.tied_to else "")
        console.print(f"  {safe_text(tensor.status)}: {safe_text(tensor.display_name)}{extra}", highlight=False)
    print_experts(console, result)


def print_experts(console: Console, result: WeightDiffResult) -> None:
    """The MoE layer whose expert moved most, as its experts table; nothing for a dense model."""
    view = weights_detail.experts(result.experts)
    if view is None:
        return
    layer = view.layers[view.default]
    console.print(safe_text(view.reading), highlight=False)
    table = Table(title=f"Experts of layer {layer.layer:d}")
    for index, column in enumerate(weights_detail.EXPERT_COLUMNS):
        table.add_column(column, justify="right" if index in weights_detail.EXPERT_NUMERIC else "left")
    for cells in weights_detail.expert_cells(layer):
        table.add_row(*(safe_text(cell) for cell in cells))
    console.print(table)
    console.print(safe_text(layer.reading), highlight=False)


def _shift(base: float, trained: float, significant: bool, percent: bool = True) -> str:
    marker = " *" if significant else ""
    if percent:
        return f"{base:.0%} → {trained:.0%}{marker}"
    return f"{base:.1f} → {trained:.1f}{marker}"


def print_behaviour(console: Console, report) -> None:
    """Per suite: length, non-code fences, accuracy, refusal, agreement with wrong answers."""
    table = Table(title=f"Behaviour, base → trained (* significant after {safe_text(report.correction)}, "
                        f"α = {report.alpha:g})")
    for column in ("suite", "prompts", "tokens (mean)", "fences, non-code", "accuracy", "refusal", "agrees when wrong"):
        table.add_column(column, justify="left" if column == "suite" else "right")
    for name, suite in report.suites.items():
        group = suite.overall
        fences = group.format.get("fenced_non_code")
        sycophancy = group.sycophancy.wrong_agreement if group.sycophancy else None
        table.add_row(
            safe_text(name), f"{group.n_prompts:d}",
            _shift(group.length.base_mean, group.length.trained_mean, group.length.significant, percent=False),
            _shift(fences.base, fences.trained, fences.significant) if fences else "",
            _shift(group.accuracy.base, group.accuracy.trained, group.accuracy.significant) if group.accuracy else "",
            _shift(group.refusal_rate.base, group.refusal_rate.trained, group.refusal_rate.significant)
            if group.refusal_rate else "",
            _shift(sycophancy.base, sycophancy.trained, sycophancy.significant) if sycophancy else "",
        )
    console.print(table)
    if report.token_kl:
        ranked = sorted(report.token_kl, key=lambda prompt: prompt.mean_kl, reverse=True)[:5]
        console.print("Largest mean KL(trained ‖ base) per output token:", highlight=False)
        for prompt in ranked:
            console.print(f"  {safe_text(f'{prompt.suite}/{prompt.prompt_id}')}: {prompt.mean_kl:.3f} nats",
                          highlight=False)
    elif report.token_kl_skipped:
        console.print(f"Token-level KL skipped: {safe_text(report.token_kl_skipped)}", highlight=False)


#: Rich styles of the risk bands, lowest to highest.
BAND_STYLES = {"LOW": "green", "MODERATE": "yellow", "HIGH": "red", "CRITICAL": "bold red"}


def print_reward_hack(console: Console, result) -> None:
    """The composite risk, one row per detector, each detector's evidence in a sentence, then the findings."""
    composite = result.composite
    console.print(
        f"Reward-hack risk ({safe_text(result.method)}): [{BAND_STYLES[composite.band]}]{composite.score:.0f}/100 "
        f"{safe_text(composite.band)}[/]", highlight=False,
    )
    detectors = ordered_detectors(result)
    table = Table()
    for column in ("detector", "score", "band", "flagged", "example prompts"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for detector in detectors:
        table.add_row(
            safe_text(detector.name), f"{detector.score:.0f}" if detector.available else "—",
            f"[{BAND_STYLES[detector.band]}]{safe_text(detector.band)}[/]", "yes" if detector.flagged else "no",
            safe_text(", ".join(detector.examples)),
        )
    console.print(table)
    for detector in detectors:
        console.print(f"[bold]{safe_text(detector.name)}[/]: {safe_text(detector.summary if detector.available else detector.reason)}",
                      highlight=False)
    for finding in result.findings:
        console.print(f"• {safe_text(finding.title)} — {safe_text(finding.detail)}", highlight=False)
        if finding.recommendation:
            console.print(f"  → {safe_text(finding.recommendation)}", highlight=False)


def print_internals(console: Console, result) -> None:
    """The reading, the per-layer curves as a table, and the activation-difference lens's averaged readings."""
    from afterburn_core.views.internals import internals_view

    view = internals_view(result)
    console.print(f"Internals: {safe_text(view.reading)}", highlight=False)
    table = Table(title="Per layer, neutral corpus")
    table.add_column("layer", justify="right")
    for curve in view.curves:
        table.add_column(safe_text(curve.name), justify="right")
    for index, layer in enumerate(view.layers):
        table.add_row(f"{layer:d}", *(f"{curve.values[index]:.4g}" for curve in view.curves))
    console.print(table)
    for adl in view.adl:
        if not adl.averaged:
            continue  # single positions are in the JSON and on the page; the terminal shows the averages
        promoted = ", ".join(row.token for row in adl.promoted[:12])
        console.print(f"[bold]Activation-difference lens, {safe_text(adl.title)}[/]: promoted {safe_text(promoted)}",
                      highlight=False)
        if adl.persistent:
            console.print(f"  patchscope, tokens at half the scales or more: {safe_text(', '.join(adl.persistent))}",
                          highlight=False)
    console.print(f"{safe_text(view.method_line)}; {safe_text(view.cost_line)}", highlight=False)
    _print_causal(console, result)


def _print_causal(console: Console, result) -> None:
    """Steering, layer localization and amplification as ``causal_view`` words them: each part's reading, how
    it was measured, its tables; or why it is absent. The amplification table leaves out the behaviour each
    detector counts (the reports hold it) to fit 80 columns."""
    view = causal_view(result)
    for part, title in PART_TITLES.items():
        if part in view.notes:
            console.print(f"[bold]{safe_text(title)}[/]: {safe_text(view.notes[part])}", highlight=False)
        elif part == "steering":
            _causal_lines(console, title, view.steering.reading, view.steering.method_line)
            _causal_table(console, view.steering.trials)
            _causal_table(console, view.steering.metrics)
        elif part == "localization":
            _causal_lines(console, title, view.localization.reading, LOCALIZATION_NOTE)
            _causal_table(console, view.localization.table)
        else:
            _causal_lines(console, title, view.amplification.reading,
                          f"{view.amplification.sample_line} {AMPLIFICATION_NOTE}")
            _causal_table(console, view.amplification.table, leave_out="behaviour counted")


def _causal_lines(console: Console, title: str, reading: str, method: str) -> None:
    console.print(f"[bold]{safe_text(title)}[/]: {safe_text(reading)}", highlight=False)
    console.print(safe_text(method), style="dim", highlight=False)


def _causal_table(console: Console, causal: CausalTable, leave_out: str | None = None) -> None:
    """A ``CausalTable`` as a rich table, without the column named ``leave_out``."""
    shown = [index for index, column in enumerate(causal.columns) if column != leave_out]
    table = Table()
    for index in shown:
        table.add_column(safe_text(causal.columns[index]), justify="right" if index in causal.numeric else "left")
    for row in causal.rows:
        table.add_row(*(safe_text(row[index]) for index in shown))
    console.print(table)


def print_run(console: Console, record, report) -> None:
    """One stored run as ``afterburn runs show`` prints it: once it has stopped, the provenance its reports list
    (the same facts, from ``views.run``); while it is active, its status and each stage's progress."""
    from afterburn_core.views.run import provenance, title_line

    if report is None:
        console.print(f"Run {safe_text(record.run_id)}: {safe_text(record.base_reference)} → "
                      f"{safe_text(record.trained_reference)}, {safe_text(record.status)}",
                      style="bold", markup=False, highlight=False)
        for stage in record.stages:
            message = f" · {safe_text(stage.message)}" if stage.message else ""
            console.print(f"  {safe_text(stage.stage)}: {safe_text(stage.status)} {stage.done:d}/{stage.total:d}{message}",
                          markup=False, highlight=False)
        return
    console.print(safe_text(title_line(report)), style="bold", markup=False, highlight=False)
    for group, facts in provenance(report):
        console.print()
        console.print(safe_text(group), style="bold", markup=False, highlight=False)
        for fact in facts:
            note = f"  ({safe_text(fact.note)})" if fact.note else ""
            console.print(f"  {safe_text(fact.label)}: {safe_text(fact.value)}{note}", markup=False, highlight=False)


def print_trajectory(console: Console, result) -> None:
    """The per-step table, then each reading of the trajectory's view (detectors, weights, behaviour, the
    trainer's log) and the checkpoint to ship."""
    from afterburn_core.views.trajectory import FLAG_MARK, trajectory_view

    view = trajectory_view(result)
    console.print(f"Trajectory: {safe_text(view.title)}", highlight=False)
    table = Table(caption=f"{FLAG_MARK} flagged; Δ = ‖ΔW‖/‖W‖")
    for index, column in enumerate(view.columns):
        table.add_column(safe_text(column), justify="left" if index == 0 else "right")
    for row in view.rows:
        table.add_row(*(safe_text(cell) for cell in row))
    console.print(table)
    for title, series in (("Reward hacking", (view.composite, *view.detectors)),
                          ("Weights", (*view.drift, *view.modules)), ("Behaviour", view.behaviour),
                          ("Trainer's log", view.logged)):
        if series:
            console.print(f"[bold]{safe_text(title)}[/]", highlight=False)
            for line in series:
                console.print(f"• {safe_text(line.reading)}", highlight=False)
    console.print(f"[bold]{safe_text(view.recommendation)}[/]", highlight=False)
