"""The peers: install them in their own venv, run them on the pair, read what they found.

Contract:

- ``ensure_peers_venv(venv_dir, log) -> Path`` — the venv's ``bin/``, created if
  missing: ``torch==2.13.0`` first (the CPU wheel; a bare ``torch`` would pull
  CUDA), then ``afterburn==0.6.3`` and ``modeldelta==0.4.4`` under a constraint
  that keeps that torch.
- ``discover_clis(bin_dir) -> dict`` — each peer's ``--help``, checked for the
  options this benchmark passes (so a changed CLI fails here, with its help).
- ``run_peer(peer, bin_dir, pair, out_dir, timeout_s) -> dict`` — one measured run
  (``harness.run_measured``) and a verdict: how far it got (its own progress
  lines, when stopped), and whether it ranks the planted edits first.

The verdicts, at each peer's own granularity:

- afterburn 0.6.3 ranks *layers*, not tensors (``top_changed_layers``), and
  checks one norm per layer for a "significant LayerNorm shift" (the first
  ``*layernorm.weight`` it finds, so ``input_layernorm``: the planted
  ``post_attention_layernorm`` is never looked at). Its verdict says whether
  the two planted layers are its top two and whether the planted norm is flagged.
- modeldelta 0.4.4 ranks tensors by ``frob_norm_relative`` but skips every
  tensor under 1000 elements (``min_params``), so the 896-element norm is
  never seen. Its verdict gives the planted projection's rank.

It does not build pairs or time our engine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import run_measured, tail

TORCH_PIN = "torch==2.13.0"
PEER_PINS = ("afterburn==0.6.3", "modeldelta==0.4.4")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Peer:
    name: str
    version: str
    executable: str
    help_args: tuple[str, ...]
    required_options: tuple[str, ...]

    def command(self, bin_dir: Path, base: str, trained: str, output: Path) -> list[str]:
        executable = str(bin_dir / self.executable)
        if self.name == "afterburn":
            return [executable, "weight-diff", "--base", base, "--trained", trained, "--device", "cpu", "-o", str(output)]
        return [executable, base, trained, "-o", str(output)]


PEERS = (
    Peer("afterburn", "0.6.3", "afterburn", ("weight-diff", "--help"), ("--base", "--trained", "--device", "--output")),
    Peer("modeldelta", "0.4.4", "modeldelta", ("--help",), ("MODEL_A", "MODEL_B", "--output")),
)


def _installed_versions(python: Path) -> dict[str, str]:
    probe = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for name in ('torch', 'afterburn', 'modeldelta'):\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([str(python), "-c", probe], check=False, capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _wanted(versions: dict[str, str]) -> bool:
    return (
        versions.get("torch", "").startswith(TORCH_PIN.split("==")[1])
        and all(versions.get(pin.split("==")[0]) == pin.split("==")[1] for pin in PEER_PINS)
    )


def ensure_peers_venv(venv_dir: Path, log=print) -> Path:
    """The peers' venv ``bin/``; created and filled when missing or holding other versions."""
    venv_dir = Path(venv_dir)
    python = venv_dir / "bin" / "python"
    if python.exists() and _wanted(_installed_versions(python)):
        return venv_dir / "bin"
    log(f"installing the peers into {venv_dir} (torch first, then {', '.join(PEER_PINS)}) …")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH_PIN], check=True)
    constraints = venv_dir / "constraints.txt"
    # The constraint makes pip fail instead of replacing the CPU torch by a CUDA one.
    constraints.write_text(TORCH_PIN + "\n")
    subprocess.run([*pip, "-c", str(constraints), *PEER_PINS], check=True)
    versions = _installed_versions(python)
    if not _wanted(versions):
        raise RuntimeError(f"the peers' venv holds {versions}, not {TORCH_PIN} + {', '.join(PEER_PINS)}")
    return venv_dir / "bin"


def discover_clis(bin_dir: Path) -> dict[str, str]:
    """Each peer's help text, after checking it names the options we pass."""
    helps = {}
    for peer in PEERS:
        result = subprocess.run(
            [str(bin_dir / peer.executable), *peer.help_args], check=False, capture_output=True, text=True, env=peer_env()
        )
        missing = [option for option in peer.required_options if option not in result.stdout]
        if result.returncode != 0 or missing:
            raise RuntimeError(
                f"{peer.name} {' '.join(peer.help_args)} exited {result.returncode} or lacks {missing}:\n"
                + result.stdout + result.stderr
            )
        helps[peer.name] = result.stdout
    return helps


def peer_env() -> dict[str, str]:
    env = dict(os.environ)
    # No network here: make the hub libraries say so at once instead of retrying.
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    # rich only draws afterburn's progress bar on a terminal; forcing it puts the
    # layer it is on into the log, so a stopped run still says how far it got.
    env.update({"FORCE_COLOR": "1", "COLUMNS": "160"})
    return env


def _last_progress(peer: Peer, log_text: str) -> str | None:
    text = ANSI.sub("", log_text)
    if peer.name == "modeldelta":
        # modeldelta prints "  [k/n] Ns — name" every 20 tensors (n counts the skipped ones).
        hits = re.findall(r"\[(\d+)/(\d+)\]\s+(\d+)s", text)
        return f"{hits[-1][0]}/{hits[-1][1]} tensors at {hits[-1][2]} s" if hits else None
    hits = re.findall(r"Layer: (\S+)\s.*?(\d+)%", text)
    return f"on {hits[-1][0]} ({hits[-1][1]}% of layer groups)" if hits else None


def judge_afterburn(report: dict, planted: dict) -> dict:
    """afterburn 0.6.3's JSON report → its verdict on the planted edits (layer granularity)."""
    layers = {name: f"layer_{name.split('.')[2]}" for name in (planted["planted_projection"], planted["planted_norm"])}
    weight_diff = report.get("weight_diff", {})
    top = [layer["layer_name"] for layer in weight_diff.get("top_changed_layers", [])]
    shifts = weight_diff.get("layernorm_shifts", [])
    norm_layer = layers[planted["planted_norm"]]
    norm_flagged = any(shift["layer_name"] == norm_layer and shift["is_significant"] for shift in shifts)
    top_two = set(top[:2]) == set(layers.values())
    return {
        "granularity": "layer",
        "top_changed_layers": top,
        "planted_layers_top_two": top_two,
        "planted_norm_flagged": norm_flagged,
        "norm_shifts_flagged": sum(1 for shift in shifts if shift["is_significant"]),
        "planted_first": top_two and norm_flagged,
        "note": (
            f"top-2 layers {'are' if top_two else 'are not'} the planted ones ({', '.join(top[:2])}); "
            f"x1.5 norm {'flagged' if norm_flagged else 'not flagged'}; reports layers, not tensors"
        ),
    }


def judge_modeldelta(report: dict, planted: dict) -> dict:
    """modeldelta 0.4.4's JSON report → its verdict (tensor granularity, norms skipped)."""
    modules = sorted(report.get("modules", []), key=lambda module: module["frob_norm_relative"], reverse=True)
    order = [module["name"] for module in modules]

    def rank(name: str) -> int | None:
        return order.index(name) + 1 if name in order else None

    ranks = {"projection": rank(planted["planted_projection"]), "norm": rank(planted["planted_norm"])}
    return {
        "granularity": "tensor",
        "tensors_reported": len(modules),
        "tensors_skipped": report.get("n_skipped"),
        "planted_ranks": ranks,
        "planted_first": sorted(value for value in ranks.values() if value is not None) == [1, 2],
        "note": (
            f"o_proj rank {ranks['projection']}; norm "
            + (f"rank {ranks['norm']}" if ranks["norm"] else "skipped (< 1000 elements)")
        ),
    }


def run_peer(peer: Peer, bin_dir: Path, pair: dict, out_dir: Path, timeout_s: float) -> dict:
    """Run ``peer`` on the pair once, measured; returns the measurement and its verdict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{peer.name}-L{pair['layers']}.json"
    output.unlink(missing_ok=True)
    log_path = out_dir / f"{peer.name}-L{pair['layers']}.log"
    measurement = run_measured(
        peer.command(bin_dir, pair["base"], pair["trained"], output), log_path, timeout_s, env=peer_env()
    )
    log_text = Path(log_path).read_text(errors="replace")
    row = {"tool": f"{peer.name} {peer.version}", "measurement": measurement, "progress": _last_progress(peer, log_text)}
    if measurement.timed_out:
        row["verdict"] = {"planted_first": None, "note": f"stopped at {timeout_s:.0f} s, {row['progress'] or 'no progress printed'}"}
    elif not measurement.ok or not output.exists():
        row["verdict"] = {"planted_first": None, "note": f"failed (exit {measurement.returncode}); see {log_path}"}
        row["error_tail"] = tail(log_path)
    else:
        report = json.loads(output.read_text())
        judge = judge_afterburn if peer.name == "afterburn" else judge_modeldelta
        row["verdict"] = judge(report, pair)
    return row
