"""How long ``afterburn diagnose`` takes on the bundled demo pair, per stage, and how fast a finished run reopens.

Issue 7's speed targets: the whole diagnosis of the demo pair (here with its
HTML, JSON, Markdown and PDF reports written too) in < 60 s on 2 CPU cores, and reopening it (same references, same config: every stage a
cache hit) in < 1 s. Each run is the real CLI in its own process
(``benchmarks/harness.py``: wall time including interpreter start and
imports, and that process's peak RSS) on a fresh ``$AFTERBURN_HOME``; the
per-stage seconds are the ones the store stamped (``StageProgress.seconds``).
"Reopen" is measured twice: the CLI again (a new process, so Python and
torch imports included), and in-process (``Diagnoser(...).run()`` on a warm
interpreter: what the dashboard and the API pay).

Usage: ``.venv/bin/python benchmarks/diagnose.py [--repeats N] [--method sft]``.
Writes ``benchmarks/results/diagnose-<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import run_measured

from afterburn_core.api import Diagnoser
from afterburn_core.store import RunStore

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE / ".work" / "diagnose"
#: Issue 7's targets.
FULL_TARGET_S = 60.0
REOPEN_TARGET_S = 1.0
TIMEOUT_S = 900
REPORT_EXTENSIONS = (".html", ".json", ".md", ".pdf")


def _cli(home: Path, method: str, log: Path, reports: bool):
    """``afterburn diagnose`` on the demo pair; with ``reports`` it also writes all four report formats."""
    command = [sys.executable, "-m", "afterburn_core", "diagnose", "--base", "demo", "--trained", "demo",
               "--method", method, "--home", str(home)]
    if reports:
        command += [argument for extension in REPORT_EXTENSIONS for argument in ("-o", str(home / f"report{extension}"))]
    return run_measured(command, log, TIMEOUT_S, env={**os.environ, "AFTERBURN_HOME": str(home)})


def _stage_seconds(home: Path) -> dict[str, float | None]:
    with RunStore(home) as store:
        newest = store.list_runs(limit=1)[0]
        return {stage.stage: stage.seconds for stage in newest.stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="fresh full runs (default 2; the best is kept)")
    parser.add_argument("--method", default="sft")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    full_runs = []
    for repeat in range(args.repeats):
        home = Path(tempfile.mkdtemp(prefix="home-", dir=WORK))
        measured = _cli(home, args.method, WORK / f"full-{repeat}.log", reports=True)
        if not measured.ok:
            sys.exit(f"diagnose failed (exit {measured.returncode}); see {measured.log_path}")
        full_runs.append((measured, _stage_seconds(home), home))
        print(f"full run {repeat + 1}: {measured.wall_s:.1f} s", flush=True)
    best, stages, home = min(full_runs, key=lambda run: run[0].wall_s)
    reopen_cli = _cli(home, args.method, WORK / "reopen-cli.log", reports=False)
    diagnoser = Diagnoser("demo", "demo", method=args.method, home=home)
    diagnoser.run()  # warm the interpreter (imports) once
    warm = []
    for _ in range(5):
        started = time.perf_counter()
        diagnoser.run()
        warm.append(time.perf_counter() - started)
    result = {
        "date": dt.datetime.now().isoformat(timespec="minutes"),
        "cpu_count": os.cpu_count(), "load_average_at_start": load,
        "full_runs_wall_s": [run[0].wall_s for run in full_runs],
        "full_wall_s": best.wall_s, "full_peak_rss_gib": best.peak_rss_gib, "stage_seconds": stages,
        "reopen_cli_wall_s": reopen_cli.wall_s, "reopen_in_process_s": statistics.median(warm),
    }
    lines = [
        f"# `afterburn diagnose` on the demo pair, {result['date']}", "",
        (f"Command: `.venv/bin/python benchmarks/diagnose.py --repeats {args.repeats} --method {args.method}`; "
         f"{os.cpu_count()} CPU cores, load average at start {load[0]:.2f}. Best of {args.repeats} fresh runs "
         f"({', '.join(f'{w:.1f}' for w in result['full_runs_wall_s'])} s)."), "",
        "| stage | seconds |", "| --- | ---: |",
        *[f"| {stage} | {seconds:.2f} |" if seconds is not None else f"| {stage} | — |"
          for stage, seconds in stages.items()],
        f"| **whole process** (imports, every stage, the summary, the four reports) | **{best.wall_s:.1f}** |", "",
        "| target | measured | wanted | met? |", "| --- | ---: | ---: | --- |",
        (f"| full diagnosis + 4 reports, fresh store | {best.wall_s:.1f} s | < {FULL_TARGET_S:.0f} s | "
         f"{'yes' if best.wall_s < FULL_TARGET_S else 'no'} |"),
        (f"| reopen, in process (`Diagnoser.run()`, median of 5) | {result['reopen_in_process_s']:.3f} s | "
         f"< {REOPEN_TARGET_S:.0f} s | {'yes' if result['reopen_in_process_s'] < REOPEN_TARGET_S else 'no'} |"),
        (f"| reopen, a new CLI process (interpreter + imports included) | {reopen_cli.wall_s:.2f} s | — | "
         "(reported) |"),
        "", f"Peak RSS of the full run: {best.peak_rss_gib:.2f} GiB.",
    ]
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"diagnose-{dt.date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
