"""The GPU benchmark's smoke run (``benchmarks/gpu.py --smoke --no-vllm``) as a real subprocess on the CPU.

It builds the tiny Qwen2 pair (sharded), times the floors and ``afterburn weight-diff`` (default and
``--exact``) and prints the report; this checks the weight-diff rows carry finite seconds and ratios, the
planted tensors are found, and the skipped vLLM step says so. About 20 s on two shared cores.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _row(markdown: str, step: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {step} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_gpu_smoke_prints_weight_diff_rows_with_finite_seconds_and_ratios(tmp_path):
    results = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--smoke", "--no-vllm",
         "--work-dir", str(tmp_path / "work"), "--results-dir", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    out = completed.stdout
    assert "| step | wall s | step's own compute s | peak RSS GiB | ÷ its floor |" in out
    for step in ("floor_read", "floor_lowrank", "floor_gram", "ours_default", "ours_exact"):
        wall = float(_row(out, step)[1])
        assert math.isfinite(wall) and wall > 0, step
    for step in ("ours_default", "ours_exact"):
        ratio = _row(out, step)[4]
        assert re.fullmatch(r"\d+\.\d\dx", ratio), ratio
        assert math.isfinite(float(ratio[:-1]))
    assert "| default weight diff ranks the 4 planted tensors first | yes | yes | yes |" in out
    assert re.search(r"\| default weight diff vs lowrank floor \| \d+\.\d\dx \| <= 1\.25x \|", out)
    assert re.search(r"\| --exact spectra vs gram floor \| \d+\.\d\dx \| <= 1\.1x \|", out)
    assert "## Behaviour through vLLM\n\nnot run: --no-vllm\n" in out
    written = json.loads(next(results.glob("gpu-*-smoke.json")).read_text())
    assert written["pair"]["shards"] > 1
    assert written["weights"]["ours_default"]["ok"] is True
