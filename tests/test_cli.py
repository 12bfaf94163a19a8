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
    shown = json.loads(afterburn("runs", "show", run_id).stdout)
    assert shown["run"]["status"] == "done" and shown["results"]["inventory"]["schema_version"] == 2
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
