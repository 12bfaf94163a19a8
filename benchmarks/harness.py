"""Run one benchmark step in its own process and measure it: wall time and that process's peak RSS.

Contract: ``run_measured(command, log_path, timeout_s, env=None) -> Measurement``;
``measured_json_step`` runs a step that writes a JSON result and reads it back.
Peak RSS comes from ``os.wait4`` on that very child (its ``ru_maxrss``, which
also covers any grandchildren it waited for), so every step's number is its
own — ``getrusage(RUSAGE_CHILDREN)`` would be a running maximum over all steps.
The wall time is the whole process (interpreter start and imports included),
the same way for every row, because that is what a user waits for.

On timeout the process group is killed and the measurement says so; its RSS
is the peak up to the kill. stdout and stderr go to ``log_path`` (both), so a
step's own progress lines can be parsed afterwards.

It knows nothing about what the steps compute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3
#: How often a running step is polled; the wall-time resolution of a timeout.
POLL_S = 0.05


@dataclass(frozen=True)
class Measurement:
    """One process run: how long, how much memory, how it ended."""

    wall_s: float
    peak_rss_bytes: int
    returncode: int | None
    timed_out: bool
    log_path: str

    @property
    def peak_rss_gib(self) -> float:
        return self.peak_rss_bytes / GIB

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_measured(
    command: list[str], log_path: Path, timeout_s: float, env: dict[str, str] | None = None
) -> Measurement:
    """Run ``command`` to completion or ``timeout_s``; never raises for a failing command."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout_s:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(POLL_S)
        wall_s = time.perf_counter() - started
    # Popen did not reap the child itself; tell it so it does not try again.
    process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return Measurement(
        wall_s=wall_s,
        peak_rss_bytes=int(usage.ru_maxrss) * 1024,
        returncode=None if timed_out else process.returncode,
        timed_out=timed_out,
        log_path=str(log_path),
    )


def tail(path: str | Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log, for error messages."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def warm_page_cache(paths: list[Path]) -> float:
    """Read files once so the first timed step does not pay for the disk alone; returns seconds."""
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(64 * 1024 * 1024):
                pass
    return time.perf_counter() - started


def machine_facts() -> dict:
    """What the numbers were measured on: cores, load, Python."""
    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }


def log(message: str) -> None:
    print(message, flush=True)


def measured_json_step(name: str, command: list[str], log_dir: Path, json_path: Path, env: dict[str, str],
                       timeout_s: float) -> tuple[Measurement, dict | None]:
    """Run a step that writes ``json_path``: (its measurement, the JSON it wrote, or None with the log's tail
    printed when it failed). A stale file from an earlier run is removed first, so it is never read as this
    run's."""
    log(f"-> {name}")
    json_path.unlink(missing_ok=True)
    measurement = run_measured(command, log_dir / f"{json_path.stem}.log", timeout_s, env=env)
    payload = json.loads(json_path.read_text()) if measurement.ok and json_path.exists() else None
    if payload is None:
        log(f"   FAILED ({'timeout' if measurement.timed_out else f'exit {measurement.returncode}'}):\n{tail(measurement.log_path)}")
    return measurement, payload


#: Where ``scripts/vllm_lane.sh`` builds the vLLM venv by default (vLLM cannot share the main venv).
DEFAULT_VLLM_PYTHON = Path(__file__).resolve().parent.parent / ".venv-vllm" / "bin" / "python"
NO_VLLM = "not run: no vLLM venv (--vllm-python; scripts/vllm_lane.sh builds one)"


def vllm_interpreter(requested: Path | None) -> tuple[Path | None, str | None]:
    """(the vLLM venv's python, None) or (None, why the benchmark's vLLM rows are not run)."""
    if requested is not None:
        if not requested.exists():
            return None, f"not run: --vllm-python {requested} does not exist"
        return requested, None
    if DEFAULT_VLLM_PYTHON.exists():
        return DEFAULT_VLLM_PYTHON, None
    return None, NO_VLLM
