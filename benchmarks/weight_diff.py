"""Weight-diff benchmark: ours against the floors and the peers on a Qwen2.5-0.5B-shaped pair, in one run.

Run it with the project's venv from the repository root:

    .venv/bin/python benchmarks/weight_diff.py            # full: 24 layers, peers, ~15-20 min on 2 cores
    .venv/bin/python benchmarks/weight_diff.py --quick    # smoke: 4 layers, no peers, ~2 min

It builds the pair if missing (``make_pair.py``), installs the peers if missing
(``peers.py``), warms the page cache, then runs every step as its own process
(``harness.run_measured``: wall time and that process's peak RSS), interleaved
so that the load of a shared machine falls on floors and ours alike:

    --repeats times (3): read floor, cheap floor, randomized floor, ours (default)
    --exact-repeats times (3): fp64 Gram floor, ours --exact
    --peer-repeats times (2): afterburn 0.6.3, modeldelta 0.4.4 (each with --peer-timeout)
    ours (default) on the twin of equal width with fewer layers (flat-RSS check)
    [ours through the CLI, when ``python -m afterburn_core weight-diff`` exists]

Every repeated step reports its best wall time (the same statistic for the
floors, ours and the peers: on a shared machine other work only ever adds
time) and its largest peak RSS. It prints a markdown table and
each target with its measured ratio and whether it is met, and writes
``benchmarks/results/weight_diff-<date>[-quick].json`` and ``.md``. Targets
come from the issue; nothing here is tuned to flatter us: a missed target is
printed as missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import GIB, machine_facts, run_measured, tail, warm_page_cache
from make_pair import ensure_pair
from report import evaluate_targets, render_markdown

REPO = HERE.parent
#: Our default top_k (compare_weights' default); the randomized floor uses q = k + 10 with it.
DEFAULT_TOP_K = 32
#: Generous: ours --exact on the 24-layer pair is expected near the Gram floor (~7 min here).
OURS_TIMEOUT_S = 1800


def log(message: str) -> None:
    print(message, flush=True)


def _step(name: str, kind: str, command: list[str], log_dir: Path, timeout_s: float, env=None, json_path=None) -> dict:
    log(f"-> {name}")
    measurement = run_measured(command, log_dir / f"{name.replace(' ', '_').replace('/', '_')}.log", timeout_s, env=env)
    row = {"tool": name, "kind": kind, "measurement": measurement, "output": None}
    if measurement.ok and json_path and Path(json_path).exists():
        row["output"] = json.loads(Path(json_path).read_text())
    elif not measurement.ok:
        row["error_tail"] = tail(measurement.log_path)
        log(f"   FAILED ({'timeout' if measurement.timed_out else f'exit {measurement.returncode}'}):\n{row['error_tail']}")
    log(f"   {measurement.wall_s:8.1f} s   peak RSS {measurement.peak_rss_gib:5.2f} GiB")
    return row


def floor_step(step: str, pair: dict, log_dir: Path, top_k: int, tag: str) -> dict:
    out = log_dir / f"floor-{step}-{tag}.json"
    command = [
        sys.executable, str(HERE / "floors.py"), step,
        str(Path(pair["base"]) / "model.safetensors"), str(Path(pair["trained"]) / "model.safetensors"),
        "--top-k", str(top_k), "--json", str(out),
    ]
    return _step(f"floor {step} {tag}", "floor", command, log_dir, OURS_TIMEOUT_S, json_path=out)


def ours_step(pair: dict, log_dir: Path, top_k: int, exact: bool, tag: str) -> dict:
    out = log_dir / f"ours-{'exact' if exact else 'default'}-{tag}.json"
    command = [
        sys.executable, str(HERE / "run_ours.py"), pair["base"], pair["trained"],
        "--top-k", str(top_k), "--planted", str(Path(pair["root"]) / "planted.json"), "--json", str(out),
    ] + (["--exact"] if exact else [])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return _step(f"ours {'--exact' if exact else 'default'} {tag}", "ours", command, log_dir, OURS_TIMEOUT_S, env, out)


def ours_cli_available() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "afterburn_core", "weight-diff", "--help"], check=False, capture_output=True, text=True, cwd=REPO
    )
    return result.returncode == 0 and "--trained" in result.stdout


def ours_cli_step(pair: dict, log_dir: Path, tag: str) -> dict:
    out = log_dir / f"ours-cli-{tag}.json"
    command = [sys.executable, "-m", "afterburn_core", "weight-diff", "--base", pair["base"], "--trained", pair["trained"], "-o", str(out)]
    # A fresh store, so the CLI computes instead of answering from a cached run.
    env = dict(os.environ, PYTHONPATH=str(REPO), AFTERBURN_HOME=str(log_dir / f"afterburn-home-{tag}"))
    row = _step(f"ours CLI {tag}", "ours-cli", command, log_dir, OURS_TIMEOUT_S, env, out)
    if row["output"] is not None:
        row["output"] = {"planted_first": _cli_planted_first(row["output"], pair)}
    return row


def _cli_planted_first(report, pair: dict) -> bool | None:
    """The top-2 of the CLI's per-tensor records (its ``tensors`` list; else any dicts with name + relative_change)."""
    records: list[dict] = []
    if isinstance(report, dict) and isinstance(report.get("tensors"), list):
        report = report["tensors"]

    def walk(node):
        if isinstance(node, dict):
            if "name" in node and isinstance(node.get("relative_change"), (int, float)):
                records.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    if not records:
        return None
    top = [record["name"] for record in sorted(records, key=lambda r: r["relative_change"], reverse=True)[:2]]
    wanted = (pair["planted_projection"], pair["planted_norm"])
    return all(any(name == w or w.endswith("." + name) or name.endswith("." + w) for name in top) for w in wanted)


def best_of(rows: list[dict]) -> dict:
    """One row for repeated runs: best wall time, largest peak RSS, every run kept."""
    done = [row for row in rows if row["measurement"].ok] or rows
    best = min(done, key=lambda row: row["measurement"].wall_s)
    merged = dict(best)
    merged["tool"] = best["tool"] if best["kind"] == "peer" else best["tool"].rsplit(" ", 1)[0]
    merged["wall_s"] = best["measurement"].wall_s
    merged["peak_rss_gib"] = max(row["measurement"].peak_rss_gib for row in rows)
    merged["runs"] = [{"wall_s": row["measurement"].wall_s, "peak_rss_gib": row["measurement"].peak_rss_gib, "ok": row["measurement"].ok} for row in rows]
    return merged


def single(row: dict) -> dict:
    row = dict(row)
    row["tool"] = row["tool"].rsplit(" ", 1)[0] if row["kind"] != "peer" else row["tool"]
    row["wall_s"] = row["measurement"].wall_s
    row["peak_rss_gib"] = row["measurement"].peak_rss_gib
    return row


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24, help="layers of the main pair (24 = Qwen2.5-0.5B)")
    parser.add_argument("--twin-layers", type=int, default=None, help="layers of the flat-RSS twin (default 4, or 2 with --quick)")
    parser.add_argument("--skip-peers", action="store_true", help="do not install or run afterburn 0.6.3 / modeldelta 0.4.4")
    parser.add_argument("--peer-timeout", type=float, default=900, help="seconds before a peer is stopped")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the fast group (read, cheap, randomized floors, ours default)")
    parser.add_argument("--exact-repeats", type=int, default=3, help="runs of the exact pair (fp64 Gram floor, ours --exact)")
    parser.add_argument("--peer-repeats", type=int, default=2, help="runs of each peer (a stopped peer is not rerun)")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="our top_k; the randomized floor uses q = k + 10")
    parser.add_argument("--no-exact", action="store_true", help="skip the fp64 Gram floor and ours --exact")
    parser.add_argument("--no-cli", action="store_true", help="skip timing `afterburn weight-diff` (ours, through the CLI)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 layers, no peers, one repeat")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work", help="pairs, venv, logs (gitignored)")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results", help="where the .json and .md go")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.skip_peers, args.repeats, args.exact_repeats = 4, True, 1, 1
    if args.twin_layers is None:
        args.twin_layers = 4 if args.layers > 4 else 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    run_id = started.strftime("%Y%m%d-%H%M%S")
    log_dir = args.work_dir / "logs" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    log(f"weight-diff benchmark {run_id}: {args.layers} layers, logs in {log_dir}; machine {facts}")

    pair = asdict(ensure_pair(args.work_dir, args.layers, log=log))
    twin = asdict(ensure_pair(args.work_dir, args.twin_layers, log=log))
    peers_bin = None
    if not args.skip_peers:
        from peers import PEERS, discover_clis, ensure_peers_venv, run_peer

        peers_bin = ensure_peers_venv(args.work_dir / "peers-venv", log=log).resolve()
        discover_clis(peers_bin)
    with_cli = not args.no_cli and ours_cli_available()
    files = [Path(p) / "model.safetensors" for p in (pair["base"], pair["trained"])]
    log(f"page cache warmed in {warm_page_cache(files):.1f} s")

    fast: dict[str, list[dict]] = {"read": [], "cheap": [], "lowrank": [], "ours": []}
    for repeat in range(1, args.repeats + 1):
        tag = f"run{repeat}"
        for step in ("read", "cheap", "lowrank"):
            fast[step].append(floor_step(step, pair, log_dir, args.top_k, tag))
        fast["ours"].append(ours_step(pair, log_dir, args.top_k, exact=False, tag=tag))
    rows = {
        "floor_read": best_of(fast["read"]),
        "floor_cheap": best_of(fast["cheap"]),
        "floor_lowrank": best_of(fast["lowrank"]),
        "ours_default": best_of(fast["ours"]),
    }
    if not args.no_exact:
        gram_runs, exact_runs = [], []
        for repeat in range(1, args.exact_repeats + 1):
            gram_runs.append(floor_step("gram", pair, log_dir, args.top_k, f"run{repeat}"))
            exact_runs.append(ours_step(pair, log_dir, args.top_k, exact=True, tag=f"run{repeat}"))
        rows["floor_gram"], rows["ours_exact"] = best_of(gram_runs), best_of(exact_runs)
    if peers_bin is not None:
        peer_runs: dict[str, list[dict]] = {peer.name: [] for peer in PEERS}
        for repeat in range(1, args.peer_repeats + 1):
            for peer in PEERS:
                if any(run["measurement"].timed_out for run in peer_runs[peer.name]):
                    continue  # a stopped peer is not rerun: it would only cost another timeout
                log(f"-> {peer.name} {peer.version} run{repeat} (stopped after {args.peer_timeout:.0f} s)")
                row = run_peer(peer, peers_bin, pair, log_dir / f"run{repeat}", args.peer_timeout)
                row["kind"] = "peer"
                log(f"   {row['measurement'].wall_s:8.1f} s   peak RSS {row['measurement'].peak_rss_gib:5.2f} GiB   {row['verdict']['note']}")
                peer_runs[peer.name].append(row)
        for name, runs in peer_runs.items():
            rows[name] = best_of(runs)
    rows["ours_twin"] = single(ours_step(twin, log_dir, args.top_k, exact=False, tag=f"L{args.twin_layers}"))
    if with_cli:
        rows["ours_cli"] = single(ours_cli_step(pair, log_dir, "run1"))

    targets = evaluate_targets(rows, pair, twin, args)
    finished = dt.datetime.now()
    facts_end = machine_facts()
    markdown = render_markdown(rows, targets, pair, twin, args, facts, facts_end, started, finished)
    print()
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"weight_diff-{started:%Y-%m-%d}{'-quick' if args.quick else ''}"
    stem.with_suffix(".md").write_text(markdown)
    payload = {
        "run_id": run_id,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/weight_diff.py", *(argv if argv is not None else sys.argv[1:])]),
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "machine_at_start": facts,
        "machine_at_end": facts_end,
        "pair": pair,
        "twin": twin,
        "rows": {key: _jsonable(row) for key, row in rows.items()},
        "targets": targets,
    }
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    log(f"\nwrote {stem}.md and {stem}.json")
    return 0


def _jsonable(row: dict) -> dict:
    out = {key: value for key, value in row.items() if key != "measurement"}
    measurement = row["measurement"]
    out["measurement"] = asdict(measurement) | {"peak_rss_gib": measurement.peak_rss_bytes / GIB}
    return out


if __name__ == "__main__":
    sys.exit(main())
