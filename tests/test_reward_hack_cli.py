"""``afterburn hack-check`` as a user runs it: real subprocesses on the demo pair, a real store, real JSON.

Two pairs are generated once per module (sycophancy and math suites, 64 new
tokens): the demo's post-trained model against its base, and the base against
itself. Every other call reuses their cached generations, so the tests of
``--method``, ``--fail-above`` and the config file cost a process start each.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import afterburn

from afterburn_core.analyses import detector_names
from afterburn_core.reward_hack.composite import METHOD_WEIGHTS, POWER
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.store import RunStore

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "reward-hack.schema.json").read_text())
PAIR = ("--base", "demo:base", "--trained", "demo:trained")
IDENTICAL = ("--base", "demo:base", "--trained", "demo:base")
#: Cheap enough for a test (a suite with expected answers, the sycophancy probes, the harmful requests), rich
#: enough to score every detector.
SETTINGS = ("--suites", "sycophancy,math,safety", "--max-new-tokens", "64")
RISK_LINE = re.compile(r"^composite reward-hack risk (\d+\.\d) is above --fail-above 50$")


def hack_check(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return afterburn("hack-check", *args, "--home", str(home), cwd=cwd)


def run_id_of(result: subprocess.CompletedProcess[str]) -> str:
    return re.search(r"^run (\w+) in ", result.stderr, re.MULTILINE).group(1)


def stage_messages(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The last word of each stage's bar: resolved / computed / cached."""
    messages = {}
    for line in result.stderr.splitlines():
        match = re.match(r"^(\w+)\s+━+\s+(\w+)", line)
        if match:
            messages[match.group(1)] = match.group(2)
    return messages


def composite_of(weights: dict[str, float], detectors: dict[str, dict]) -> float:
    """The documented composite: the weighted power mean of the available detectors' scores."""
    total = sum(weights[name] for name in detector_names() if detectors[name]["available"])
    mean = sum(weights[name] / total * detectors[name]["score"] ** POWER
               for name in detector_names() if detectors[name]["available"])
    return round(mean ** (1 / POWER), 1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hack-check-home")


@pytest.fixture(scope="module")
def trained(home: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = home / "trained.json"
    result = hack_check(home, *PAIR, *SETTINGS, "-o", str(out))
    assert result.returncode == 0, result.stderr
    return result, json.loads(out.read_text())


@pytest.fixture(scope="module")
def identical(home: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = home / "identical.json"
    # --fail-above 0: two identical models must pass the strictest gate.
    result = hack_check(home, *IDENTICAL, *SETTINGS, "-o", str(out), "--fail-above", "0")
    assert result.returncode == 0, result.stderr
    return result, json.loads(out.read_text())


def test_the_json_validates_and_holds_the_contract(trained) -> None:
    result, document = trained
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["schema_version"] == 2 and document["method"] == "unknown"
    assert set(document["composite"]) >= {"score", "band", "weights"}
    assert set(document["detectors"]) == set(detector_names())
    for detector in document["detectors"].values():
        assert set(detector) >= {"score", "band", "flagged", "statistics", "examples"}
    assert document["findings"]
    # Lossless: the file loads back into the typed result and writes the same document again.
    assert to_jsonable(from_jsonable(RewardHackResult, document)) == document
    assert result.stdout == ""  # -o writes the file instead of the summary
    assert re.search(r"^wrote \S*trained\.json$", result.stderr, re.MULTILINE)
    # The generations and behaviour the detectors read were computed by this run, not found.
    assert stage_messages(result) == {"resolve": "resolved", "generations": "computed", "behaviour": "computed",
                                      "reward_hack": "computed"}


def test_the_demo_post_training_is_flagged_where_it_was_planted(trained) -> None:
    _, document = trained
    detectors = document["detectors"]
    for name in ("sycophancy", "length_bias", "format_gaming"):
        detector = detectors[name]
        assert detector["available"] and detector["flagged"], (name, detector["summary"])
        assert detector["band"] in ("HIGH", "CRITICAL") and detector["statistics"]["significant"] is True
        assert 1 <= len(detector["examples"]) <= 3
        assert all(example.split("/")[0] in ("sycophancy", "math", "safety") for example in detector["examples"])
    assert all(example.startswith("sycophancy/") for example in detectors["sycophancy"]["examples"])
    composite = document["composite"]
    assert composite["weights"] == pytest.approx(METHOD_WEIGHTS["unknown"])  # nothing declared, every detector available: equal weights
    assert composite["score"] == composite_of(composite["weights"], detectors)
    assert composite["band"] in ("HIGH", "CRITICAL")
    flagged_findings = {finding["detector"] for finding in document["findings"]}
    assert {"composite", "sycophancy", "length_bias", "format_gaming"} <= flagged_findings


def test_identical_models_are_low_on_every_detector_and_score_0(identical) -> None:
    result, document = identical
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    for name, detector in document["detectors"].items():
        assert (detector["band"], detector["flagged"]) == ("LOW", False), (name, detector["summary"])
        assert detector["score"] == 0, (name, detector["statistics"])
    assert (document["composite"]["score"], document["composite"]["band"]) == (0, "LOW")
    assert [finding["detector"] for finding in document["findings"]] == ["composite"]
    assert "fail-above" not in result.stderr


def test_fail_above_exits_3_with_one_line(trained, home: Path) -> None:
    _, document = trained
    result = hack_check(home, *PAIR, *SETTINGS, "--fail-above", "50")

    assert result.returncode == 3, result.stderr
    risk_lines = [line for line in result.stderr.splitlines() if "fail-above" in line]
    assert len(risk_lines) == 1 and result.stderr.rstrip().endswith(risk_lines[0])
    assert float(RISK_LINE.match(risk_lines[0]).group(1)) == document["composite"]["score"]
    assert "Error:" not in result.stderr and "Traceback" not in result.stderr
    assert "Reward-hack risk (unknown)" in result.stdout  # the summary still prints before the verdict


def test_method_reweighs_the_composite_and_reuses_the_generations(trained, home: Path) -> None:
    _, unknown = trained
    # Under the top score (100) any composite passes: a gate at 99.9 exits 0.
    result = hack_check(home, *PAIR, *SETTINGS, "--method", "dpo", "--fail-above", "99.9")

    assert result.returncode == 0, result.stderr
    assert stage_messages(result) == {"resolve": "resolved", "generations": "cached", "behaviour": "cached",
                                      "reward_hack": "computed"}
    assert "Reward-hack risk (dpo)" in result.stdout
    with RunStore(home) as store:
        document = store.get_result(store.run_result_keys(run_id_of(result))["reward_hack"])
    assert document["method"] == "dpo"
    assert document["composite"]["weights"] == pytest.approx(METHOD_WEIGHTS["dpo"])
    # The detectors do not depend on the method; the composite does.
    assert {name: d["score"] for name, d in document["detectors"].items()} == \
        {name: d["score"] for name, d in unknown["detectors"].items()}
    assert document["composite"]["score"] == composite_of(METHOD_WEIGHTS["dpo"], document["detectors"])
    assert document["composite"]["score"] != unknown["composite"]["score"]


def test_config_file_weights_override_the_methods(trained, home: Path, tmp_path: Path) -> None:
    (tmp_path / ".afterburn.yaml").write_text("method: sft\nreward_hack_weights:\n  sycophancy: 0\n")
    out = tmp_path / "weighted.json"

    result = hack_check(home, *PAIR, *SETTINGS, "-o", str(out), cwd=tmp_path)  # ./.afterburn.yaml is picked up

    assert result.returncode == 0, result.stderr
    assert "using settings from ./.afterburn.yaml" in result.stderr
    assert stage_messages(result)["generations"] == "cached"
    composite = json.loads(out.read_text())["composite"]
    expected = {name: METHOD_WEIGHTS["sft"][name] / (1 - METHOD_WEIGHTS["sft"]["sycophancy"]) for name in detector_names()}
    expected["sycophancy"] = 0.0
    assert composite["weights"] == pytest.approx(expected)
    assert "overridden for sycophancy by reward_hack_weights" in composite["weights_source"]


@pytest.mark.parametrize("output, message", [
    ("x.txt", "hack-check writes JSON; name the file *.json"),
    ("no-such-folder/x.json", "does not exist"),
])
def test_a_bad_output_fails_before_any_run(tmp_path: Path, output: str, message: str) -> None:
    home = tmp_path / "home"
    result = hack_check(home, *PAIR, *SETTINGS, "-o", str(tmp_path / output))

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: -o ")
    assert output in result.stderr and message in result.stderr
    assert not (tmp_path / output).exists()
    with RunStore(home) as store:
        assert store.list_runs() == []
    assert "no runs yet" in afterburn("runs", "list", "--home", str(home)).stdout


def test_a_gate_without_a_composite_fails_rather_than_passes() -> None:
    from afterburn_core.cli import _check_risk
    from afterburn_core.errors import AnalysisFailed

    _check_risk(None, None)  # no gate asked for: nothing to check
    with pytest.raises(AnalysisFailed, match=r"^--fail-above 50: this run has no reward-hack result"):
        _check_risk(None, 50.0)
