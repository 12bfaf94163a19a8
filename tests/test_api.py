"""The one-call API and ``afterburn diagnose``: two doors into one run store, on the real demo pair.

One ``Diagnoser`` run per module (math suite, 48 new tokens, every analysis)
fills a store; the CLI's ``diagnose`` then runs the same pair and settings
against that store and must find every stage cached. Reports are checked by
structure (magic bytes, parsers), never by snapshot.
"""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
from cli_helpers import afterburn

import afterburn_core
from waits import HANG_S

from afterburn_core import AnalysisConfig
from afterburn_core.api import Diagnoser, DiagnosedRun, load_run
from afterburn_core.errors import BadInput, ConfigError, RunNotFound
from afterburn_core.reports import from_json
from afterburn_core.analyses import analysis_kinds
from afterburn_core.store import RunStore

SETTINGS = {"method": "sft", "suites": ("math",), "max_new_tokens": 48}
CLI_SETTINGS = ("--base", "demo:base", "--trained", "demo:trained", "--method", "sft", "--suites", "math",
                "--max-new-tokens", "48")


class Progress:
    """A progress callback that keeps each stage's last message."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}

    def __call__(self, stage: str, done: int, total: int, message: str) -> None:
        self.last[stage] = message


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> tuple[DiagnosedRun, Progress]:
    progress = Progress()
    return Diagnoser("demo:base", "demo:trained", home=home, **SETTINGS).run(progress=progress), progress


@pytest.fixture(scope="module")
def diagnosis(first_run) -> DiagnosedRun:
    return first_run[0]


def without_timestamp(diagnosis: DiagnosedRun):
    return dataclasses.replace(diagnosis.report, generated_at=0.0)


# --- the Python API ------------------------------------------------------------------------------


def test_run_computes_every_analysis_and_returns_them_typed(first_run, home: Path) -> None:
    diagnosis, progress = first_run
    assert progress.last == {"resolve": "resolved", **{kind: "computed" for kind in analysis_kinds()}}
    assert diagnosis.home == home and diagnosis.report.run.status == "done"
    assert diagnosis.weights is diagnosis.report.weights and diagnosis.weights.tensors
    assert diagnosis.behaviour is diagnosis.report.behaviour and set(diagnosis.behaviour.suites) == {"math"}
    assert diagnosis.reward_hack is diagnosis.report.reward_hack and diagnosis.reward_hack.method == "sft"
    assert all(c.n_tokens <= 48 for c in (*diagnosis.report.generations.base, *diagnosis.report.generations.trained))
    # The demo's planted habits: longer, fenced answers.
    assert diagnosis.reward_hack.detectors["format_gaming"].flagged
    assert diagnosis.reward_hack.detectors["length_bias"].flagged
    with RunStore(home) as store:
        assert [record.run_id for record in store.list_runs()] == [diagnosis.run_id]


def test_the_repr_says_what_ran_without_dumping_the_results(diagnosis: DiagnosedRun) -> None:
    shown = repr(diagnosis)
    assert len(shown) < 300, shown[:300]
    assert diagnosis.run_id in shown and "demo:base → demo:trained" in shown
    assert f"{diagnosis.reward_hack.composite.score:.1f} {diagnosis.reward_hack.composite.band}" in shown


@pytest.mark.parametrize("extension", [".html", ".json", ".md", ".pdf"])
def test_save_writes_each_format(diagnosis: DiagnosedRun, tmp_path: Path, extension: str) -> None:
    path = diagnosis.save(tmp_path / f"report{extension}")

    assert path == tmp_path / f"report{extension}"
    data = path.read_bytes()
    if extension == ".html":
        text = data.decode("utf-8")
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
        assert not re.search(r"<script[^>]+src=", text)  # self-contained: no script is fetched
        assert diagnosis.run_id in text
    elif extension == ".json":
        loaded = from_json(data.decode("utf-8"))
        assert loaded == diagnosis.report
    elif extension == ".md":
        text = data.decode("utf-8")
        assert text.startswith("# Afterburn report: demo:base → demo:trained")
        assert diagnosis.run_id in text and "| --- |" in text
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        pages = pypdf.PdfReader(io.BytesIO(data)).pages
        assert len(pages) >= 2 and "demo:trained" in pages[0].extract_text()


def test_save_refuses_an_extension_it_cannot_write(diagnosis: DiagnosedRun, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"report\.txt: extension '\.txt' names no report format; "
                                       r"use one of \.html, \.json, \.md, \.pdf"):
        diagnosis.save(tmp_path / "report.txt")
    assert not (tmp_path / "report.txt").exists()


def test_load_run_reopens_the_same_report(diagnosis: DiagnosedRun, home: Path) -> None:
    loaded = load_run(diagnosis.run_id, home)

    assert loaded.run_id == diagnosis.run_id and loaded.home == home
    assert without_timestamp(loaded) == without_timestamp(diagnosis)


def test_load_run_of_an_unknown_id_names_it(home: Path) -> None:
    with pytest.raises(RunNotFound, match="no-such-run"):
        load_run("no-such-run", home)


def test_a_second_run_reuses_every_stage(diagnosis: DiagnosedRun, home: Path) -> None:
    progress = Progress()
    again = Diagnoser("demo:base", "demo:trained", home=home, **SETTINGS).run(progress=progress)

    assert progress.last == {"resolve": "resolved", **{kind: "cached" for kind in analysis_kinds()}}
    assert again.run_id != diagnosis.run_id
    assert dataclasses.replace(without_timestamp(again), run=None) == \
        dataclasses.replace(without_timestamp(diagnosis), run=None)


def test_one_analysis_by_name_runs_it_and_what_it_reads(diagnosis: DiagnosedRun, home: Path) -> None:
    progress = Progress()
    only = Diagnoser("demo:base", "demo:trained", home=home, **SETTINGS).run("reward_hack", progress=progress)

    assert list(progress.last) == ["resolve", "generations", "behaviour", "reward_hack"]
    assert only.weights is None and only.reward_hack == diagnosis.reward_hack


# --- settings are checked before any work ------------------------------------------------------


def test_an_unknown_setting_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Diagnoser: unknown setting 'max_tokens'; known settings are .*"
                                          r"max_new_tokens"):
        Diagnoser("demo:base", "demo:trained", home=tmp_path / "home", max_tokens=48)
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("settings, message", [
    ({"method": "ppo"}, "method: 'ppo' is not one of"),
    ({"max_new_tokens": 0}, "max_new_tokens: 0 must be a whole number from 1 to 4096"),
    ({"suites": 3}, "suites"),
    ({"config": 3}, "config must be an AnalysisConfig, a mapping of settings or the path of a .afterburn.yaml"),
])
def test_a_bad_value_is_a_config_error_naming_the_setting(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Diagnoser("demo:base", "demo:trained", **settings)


def test_settings_combine_over_a_config_file_mapping_or_object(tmp_path: Path) -> None:
    config_file = tmp_path / ".afterburn.yaml"
    config_file.write_text("method: dpo\nsuites: [math, code]\nmax_new_tokens: 64\n")
    expected = AnalysisConfig(method="dpo", suites=("math",), max_new_tokens=64)

    for config in (config_file, str(config_file), {"method": "dpo", "max_new_tokens": 64},
                   AnalysisConfig(method="dpo", max_new_tokens=64)):
        assert Diagnoser("demo:base", "demo:trained", config=config, suites="math").config == expected
    # A Path is a model reference like its string.
    assert Diagnoser(tmp_path / "base", "demo:trained").base == str(tmp_path / "base")
    with pytest.raises(BadInput, match="base must be a model reference"):
        Diagnoser(None, "demo:trained")  # type: ignore[arg-type]


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, afterburn_core\n"
        "assert 'torch' not in sys.modules and 'afterburn_core.api' not in sys.modules\n"
        "from afterburn_core import Diagnoser, DiagnosedRun, load_run\n"
        "import afterburn_core.api as api\n"
        "assert (Diagnoser, DiagnosedRun, load_run) == (api.Diagnoser, api.DiagnosedRun, api.load_run)\n"
        "assert 'torch' not in sys.modules, 'the API imports torch before a run'\n"
        "try:\n"
        "    afterburn_core.Nope\n"
        "except AttributeError as error:\n"
        "    assert 'Nope' in str(error)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr
    assert set(afterburn_core.__all__) >= {"Diagnoser", "DiagnosedRun", "load_run"}


# --- afterburn diagnose: the same run from the terminal ----------------------------------------------


def test_cli_diagnose_reuses_the_api_run_and_writes_four_reports(diagnosis: DiagnosedRun, home: Path,
                                                                  tmp_path: Path) -> None:
    result = afterburn("diagnose", *CLI_SETTINGS, "--home", str(home), "-o", "r.html", "-o", "r.json", "-o", "r.md",
                       "-o", "r.pdf", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    bars = dict(re.findall(r"^(\w+)\s+━+\s+(\w+)", result.stderr, re.MULTILINE))
    assert bars == {"resolve": "resolved", **{kind: "cached" for kind in analysis_kinds()}}
    run_id = re.search(r"^run (\w+) in ", result.stderr, re.MULTILINE).group(1)
    # The summary: checkpoints, weights, behaviour and the reward-hack risk.
    for heading in ("Checkpoints", "Weight profile", "Behaviour, base → trained", "Reward-hack risk (sft)"):
        assert heading in result.stdout
    assert [line for line in result.stderr.splitlines() if line.startswith("wrote ")] == \
        ["wrote r.html", "wrote r.json", "wrote r.md", "wrote r.pdf"]
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "r.md").read_text().startswith("# Afterburn report")
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
    report = from_json((tmp_path / "r.json").read_text())
    assert report.run.run_id == run_id and report.run.status == "done"
    assert report.reward_hack == diagnosis.reward_hack and report.weights == diagnosis.weights
    # Both doors' runs are in the one store the dashboard reads.
    listed = afterburn("runs", "list", "--home", str(home))
    assert diagnosis.run_id in listed.stdout and run_id in listed.stdout
    assert load_run(run_id, home).reward_hack == diagnosis.reward_hack


def test_cli_diagnose_fail_above_exits_3_after_writing(diagnosis: DiagnosedRun, home: Path, tmp_path: Path) -> None:
    result = afterburn("diagnose", *CLI_SETTINGS, "--home", str(home), "-o", "r.json", "--fail-above", "50",
                       cwd=tmp_path)

    assert result.returncode == 3, result.stderr
    score = diagnosis.reward_hack.composite.score
    assert result.stderr.rstrip().splitlines()[-1] == f"composite reward-hack risk {score:.1f} is above --fail-above 50"
    assert (tmp_path / "r.json").is_file()  # the report is written before the verdict


@pytest.mark.parametrize("output, message", [
    ("r.txt", "r.txt: extension '.txt' names no report format; use one of .html, .json, .md, .pdf"),
    ("report", "report: no extension names no report format"),
    ("missing/r.pdf", "-o missing/r.pdf: the folder missing does not exist"),
])
def test_cli_diagnose_refuses_a_bad_output_before_running(tmp_path: Path, output: str, message: str) -> None:
    home = tmp_path / "home"
    result = afterburn("diagnose", *CLI_SETTINGS, "--home", str(home), "-o", "r.html", "-o", output, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not home.exists()  # not even the store was opened
    assert not (tmp_path / "r.html").exists()
