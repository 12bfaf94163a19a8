"""The ``afterburn`` command as a user runs it: a real subprocess, real files, real store."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from cli_helpers import afterburn


def test_help_lists_the_commands() -> None:
    result = afterburn("--help")
    assert result.returncode == 0
    for command in ("diagnose", "inspect", "runs", "serve"):
        assert command in result.stdout


def test_diagnose_twice_hits_the_cache_and_lists_the_run(afterburn_home: Path, tiny_pair) -> None:
    base, trained = map(str, tiny_pair)
    # Random weights never stop early: one short suite keeps the run to seconds.
    quick = ("--suites", "math", "--max-new-tokens", "16")
    first = afterburn("diagnose", "--base", base, "--trained", trained, "--method", "sft", *quick)
    assert first.returncode == 0, first.stderr
    assert "LlamaForCausalLM" in first.stdout and "trained only" in first.stdout
    second = afterburn("diagnose", "--base", base, "--trained", trained, "--method", "sft", *quick)
    assert second.returncode == 0 and "cached" in second.stderr
    listed = afterburn("runs", "list")
    assert listed.stdout.count("done") == 2
    run_id = first.stderr.split("run ", 1)[1].split()[0]
    shown = json.loads(afterburn("runs", "show", "--json", run_id).stdout)
    assert shown["run"]["status"] == "done" and shown["results"]["inventory"]["schema_version"] == 2
    assert shown["run"]["config"]["suites"] == ["math"] and "config_json" not in shown["run"]
    # Without --json: the provenance the reports list, as lines a person reads.
    summary = afterburn("runs", "show", run_id).stdout.splitlines()
    assert f"  Run id: {run_id}" in summary and f"  Base reference: {base}" in summary
    assert "  suites: math" in summary and "  max_new_tokens: 16" in summary
    assert "  batch_size: chosen by each model from free memory  (setting 0)" in summary
    assert afterburn("runs", "delete", run_id).returncode == 0
    missing = afterburn("runs", "show", run_id)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("Error: no run with id")


class _Payload:
    """Unpickling this would create a marker file: the attack weights_only must refuse."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_payload_is_refused_with_one_line_and_exit_2(afterburn_home: Path, tmp_path: Path, tiny_pair) -> None:
    import torch

    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "config.json").write_text((tiny_pair[0] / "config.json").read_text())
    marker = tmp_path / "pwned"
    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2), "x": _Payload(marker)}, evil / "pytorch_model.bin",
               pickle_protocol=pickle.HIGHEST_PROTOCOL)
    result = afterburn("diagnose", "--base", str(tiny_pair[0]), "--trained", str(evil))
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "pytorch_model.bin" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_bad_input_exits_2_with_one_line(afterburn_home: Path, tmp_path: Path, tiny_pair) -> None:
    missing = afterburn("diagnose", "--base", str(tmp_path / "no-such-model"), "--trained", str(tiny_pair[1]))
    assert missing.returncode == 2 and "no-such-model" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / ".afterburn.yaml").write_text("method: ppo\n")
    bad_config = afterburn("diagnose", "--base", "a", "--trained", "b", cwd=tmp_path)
    assert bad_config.returncode == 2
    assert "method: 'ppo' is not one of" in bad_config.stderr


def test_inspect_shows_kind_and_fingerprint(tiny_pair) -> None:
    result = afterburn("inspect", str(tiny_pair[0]), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["checkpoint"]["kind"] == "local_dir" and len(summary["checkpoint"]["fingerprint"]) == 64


def test_the_store_may_be_named_before_the_verb_and_a_bare_demo_is_spelled_out(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AFTERBURN_HOME", str(tmp_path / "from-the-environment"))
    home = tmp_path / "typed"
    result = afterburn("--home", str(home), "weight-diff", "--base", "demo", "--trained", "demo")
    assert result.returncode == 0, result.stderr
    assert f"in {home / 'afterburn.sqlite3'}" in result.stderr
    assert not (tmp_path / "from-the-environment").exists()  # a typed --home wins over the environment
    listed = afterburn("--home", str(home), "runs", "list").stdout
    assert "demo:base" in listed and "demo:trained" in listed
    # After the verb it still works, and wins over the one before it.
    again = afterburn("--home", str(tmp_path / "ignored"), "runs", "list", "--home", str(home))
    assert again.stdout == listed and not (tmp_path / "ignored").exists()


def test_piped_output_keeps_whole_names_and_whole_lines(afterburn_home: Path) -> None:
    """stdout is a pipe here: no tensor name squeezed to "model.…", no sentence wrapped at 80 columns."""
    result = afterburn("weight-diff", "--base", "demo", "--trained", "demo")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert any(row.split("│")[1].strip() == "model.layers.1.self_attn.q_proj.weight" for row in rows)
    assert "…" not in result.stdout
    finding = next(line for line in result.stdout.splitlines() if "Outlier tensor: model.layers.2" in line)
    assert finding.rstrip().endswith("(threshold 2.5×).")
