"""How Afterburn's thread choice fares beside other work: the demo weight diff and a short diagnose, alone and
beside competing jobs, against the same command with one thread under the same load.

Issue 20's target: beside one or two competitors, the automatic thread count
within 1.3× of the one-thread run (totals over repeated runs, since the
interference is intermittent), and no slower than the previous default (every
core) on a quiet machine. Each measured command is the real CLI in its own
process (``harness.run_measured``: wall time with interpreter start and
imports) on a fresh ``$AFTERBURN_HOME``, in three variants:

- ``auto``: no option (what users get);
- ``one``: ``--threads 1`` with ``OMP_NUM_THREADS=1`` (the reference);
- ``all``: ``--threads N``, N = the CPUs this process may use (torch's default before issue 20).

Loads, each started before its measurements and stopped after them:
``alone``; ``torch``: a default-threaded CPU-bound torch job (a 1024² matmul
loop); ``afterburn``: a second Afterburn analysis generating text (``afterburn
behaviour`` on the demo pair, fresh store, in a loop); ``both``. Within a
repeat the variants run in rotating order so a load's drift falls on all of
them. The pair is the bundled demo, so the benchmark builds nothing.

Usage: ``.venv/bin/python benchmarks/contention.py [--repeats N] [--loads alone,torch,afterburn,both]``.
Writes ``benchmarks/results/contention-<date>.{md,json}``; logs in ``benchmarks/.work/contention/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine_facts, run_measured

from afterburn_core.threads import usable_cpus

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE / ".work" / "contention"
#: Issue 20's target: automatic threads at most this many times the one-thread run under the same load.
TARGET_RATIO = 1.3
#: A measured run taking longer is stopped and reported as such (the issue saw 304 s for a 16 s diagnose).
TIMEOUT_S = 900
PAIR = ("--base", "demo:base", "--trained", "demo:trained")
#: The short diagnose: one suite, short answers, a small internals sample (about 20 s alone on 2 cores).
SHORT_DIAGNOSE = ("--suites", "math", "--max-new-tokens", "32", "--internals-passages", "8")
COMMANDS = {"weight-diff": ("weight-diff", *PAIR), "diagnose": ("diagnose", *PAIR, *SHORT_DIAGNOSE)}
VARIANTS = ("auto", "one", "all")
LOADS = ("alone", "torch", "afterburn", "both")
#: The competing torch job: torch's default threads, never idle.
TORCH_JOB = textwrap.dedent("""
    import torch
    matrix = torch.randn(1024, 1024)
    while True:
        matrix = torch.tanh(matrix @ matrix)
""")
#: The competing Afterburn analysis: text generation on the demo pair, again and again, each on a fresh store.
AFTERBURN_JOB = textwrap.dedent("""
    import subprocess, sys, tempfile
    while True:
        with tempfile.TemporaryDirectory() as home:
            subprocess.run([sys.executable, "-m", "afterburn_core", "behaviour", "--base", "demo:base",
                            "--trained", "demo:trained", "--suites", "math,reasoning", "--max-new-tokens", "64",
                            "--home", home], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
""")
COMPETITORS = {"alone": (), "torch": (TORCH_JOB,), "afterburn": (AFTERBURN_JOB,), "both": (TORCH_JOB, AFTERBURN_JOB)}
#: Seconds a load runs before the first measurement, so it is computing (imports done) when timing starts.
LOAD_WARMUP_S = 8.0


def _start(job: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", job], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End a competitor and whatever it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _measure(command: str, variant: str, log: Path) -> float | None:
    """Seconds one fresh-store run of ``command`` took in ``variant``; None when it failed or was stopped."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=WORK))
    arguments = [sys.executable, "-m", "afterburn_core", *COMMANDS[command], "--home", str(home)]
    environment = {**os.environ, "AFTERBURN_HOME": str(home)}
    if variant == "one":
        arguments += ["--threads", "1"]
        environment["OMP_NUM_THREADS"] = "1"
    elif variant == "all":
        arguments += ["--threads", str(usable_cpus())]
    try:
        measured = run_measured(arguments, log, TIMEOUT_S, env=environment)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return measured.wall_s if measured.ok else None


def _run_load(load: str, repeats: int) -> dict[str, dict[str, list[float | None]]]:
    """Every command in every variant ``repeats`` times under ``load``: seconds by command, then variant."""
    times: dict[str, dict[str, list[float | None]]] = {command: {v: [] for v in VARIANTS} for command in COMMANDS}
    competitors = [_start(job) for job in COMPETITORS[load]]
    try:
        if competitors:
            time.sleep(LOAD_WARMUP_S)
        for repeat in range(repeats):
            for command in COMMANDS:
                order = VARIANTS[repeat % len(VARIANTS):] + VARIANTS[:repeat % len(VARIANTS)]
                for variant in order:
                    seconds = _measure(command, variant, WORK / "logs" / f"{load}-{command}-{variant}-{repeat}.log")
                    times[command][variant].append(seconds)
                    shown = "failed or stopped" if seconds is None else f"{seconds:.1f} s"
                    print(f"{load:9} {command:11} {variant:4} run {repeat + 1}: {shown}", flush=True)
    finally:
        for process in competitors:
            _stop(process)
    return times


def _total(values: list[float | None]) -> float | None:
    return None if None in values else sum(values)


def _cell(seconds: float | None) -> str:
    return "stopped" if seconds is None else f"{seconds:.1f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "—" if numerator is None or denominator is None else f"{numerator / denominator:.2f}×"


def _table(results: dict) -> list[str]:
    lines = ["| load | command | auto: median / total s | one thread: median / total s | all cores: median / total s "
             "| auto ÷ one (totals) | all ÷ one (totals) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for load, by_command in results.items():
        for command, by_variant in by_command.items():
            cells, totals = [], {}
            for variant in VARIANTS:
                values = by_variant[variant]
                totals[variant] = _total(values)
                median = statistics.median(values) if None not in values else None
                cells.append(f"{_cell(median)} / {_cell(totals[variant])}")
            lines.append(f"| {load} | {command} | {' | '.join(cells)} | {_ratio(totals['auto'], totals['one'])} | "
                         f"{_ratio(totals['all'], totals['one'])} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command and variant per load (3)")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated, from {', '.join(LOADS)}")
    args = parser.parse_args()
    loads = [load.strip() for load in args.loads.split(",") if load.strip()]
    unknown = [load for load in loads if load not in LOADS]
    if unknown:
        sys.exit(f"unknown load {unknown[0]!r}; choose from {', '.join(LOADS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    results = {load: _run_load(load, args.repeats) for load in loads}
    date = dt.datetime.now().isoformat(timespec="minutes")
    lines = [
        f"# Afterburn beside other work, {date}", "",
        (f"Command: `.venv/bin/python benchmarks/contention.py --repeats {args.repeats} --loads {','.join(loads)}`; "
         f"{facts['cpu_count']} CPU cores ({usable_cpus()} usable), load average at start "
         f"{facts['load_average'][0]:.2f}. Wall seconds of the whole CLI process on a fresh store, "
         f"{args.repeats} runs per cell; ratios of totals. Target: auto ÷ one ≤ {TARGET_RATIO}."), "",
        *_table(results),
    ]
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"contention-{dt.date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"date": date, "machine": facts, "repeats": args.repeats,
                                                     "seconds": results}, indent=1))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
