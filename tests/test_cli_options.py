"""The CLI's settings options, generated from ``AnalysisConfig``'s fields and the analyses each verb runs.

No model runs here: the verbs' API functions are replaced by a recorder, so
each test sees exactly the settings a command line hands the API.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from afterburn_core import api
from afterburn_core.analyses import config_fields_for
from afterburn_core.cli import main
from afterburn_core.config import AnalysisConfig

FIELDS = {f.name: f for f in dataclasses.fields(AnalysisConfig)}
VERBS = {verb.replace("_", "-"): kinds for verb, kinds in api.VERB_ANALYSES.items()}


def options_of(command: str) -> dict[str, click.Option]:
    """A command's options by their Python name (a setting's is its config field's)."""
    return {param.name: param for param in main.commands[command].params if isinstance(param, click.Option)}


@pytest.mark.parametrize("command", VERBS)
def test_every_setting_a_verb_reads_is_an_option_with_the_field_help(command: str) -> None:
    options = options_of(command)
    read = config_fields_for(VERBS[command])

    assert read, f"{command} reads no settings"
    for name in read:
        assert name in options, f"{command} has no option for {name}"
        assert options[name].help.startswith(FIELDS[name].metadata["help"])
    for name in set(FIELDS) - set(read):
        assert name not in options, f"{command} has an option for {name}, which its analyses do not read"


def test_each_verb_takes_what_its_analyses_read_and_nothing_else() -> None:
    assert set(config_fields_for(VERBS["weight-diff"])) == {"device", "threads", "seed", "spectrum_top_k", "exact_spectra"}
    assert {"method", "reward_hack_weights"} & set(options_of("behaviour")) == set()
    assert {"suites", "method", "max_new_tokens"} & set(options_of("weight-diff")) == set()
    assert set(options_of("diagnose")) >= set(FIELDS)


def test_flag_names_from_before_the_generation_still_name_their_fields() -> None:
    weight_options = options_of("weight-diff")
    assert "--exact" in weight_options["exact_spectra"].opts and "--no-exact" in weight_options["exact_spectra"].secondary_opts
    assert weight_options["spectrum_top_k"].opts == ["--top-k"]
    assert options_of("hack-check")["max_new_tokens"].opts == ["--max-new-tokens"]


def test_help_shows_each_default_and_the_choices() -> None:
    shown = CliRunner().invoke(main, ["hack-check", "--help"], terminal_width=200).output
    assert "--max-new-tokens INTEGER" in shown and "[default: 128]" in shown
    assert "--method [unknown|sft|dpo|rlhf|rlvr|grpo|lora]" in shown
    assert "--reward-hack-weights NAME=NUMBER" in shown


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict:
    """What the verb functions of the API were called with (each returns nothing to print)."""
    calls: dict = {}

    def record(verb: str):
        def called(base, trained, *, config, home, progress, on_start, **settings):
            calls[verb] = {"config": config, "settings": settings, "effective": config.replace(**settings)}
            raise SystemExit(0)  # stop before printing: there is no result
        return called

    for verb in api.VERB_ANALYSES:
        monkeypatch.setattr(api, verb, record(verb))
    return calls


def run(*args: str, cwd: Path) -> click.testing.Result:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_only_the_settings_given_reach_the_api(recorded: dict, tmp_path: Path) -> None:
    result = run("hack-check", "--base", "a", "--trained", "b", "--suites", "math,code", "--suites", "safety",
                 "--max-new-tokens", "64", "--reward-hack-weights", "length_bias=0.5,sycophancy=1",
                 "--trust-remote-code", cwd=tmp_path)

    assert result.exit_code == 0, result.output
    assert recorded["hack_check"]["settings"] == {
        "suites": ("math", "code", "safety"), "max_new_tokens": 64,
        "reward_hack_weights": {"length_bias": 0.5, "sycophancy": 1.0}, "trust_remote_code": True,
    }


def test_the_config_file_holds_where_no_option_is_given(recorded: dict, tmp_path: Path) -> None:
    (tmp_path / ".afterburn.yaml").write_text("exact_spectra: true\nspectrum_top_k: 8\nseed: 3\n")

    assert run("weight-diff", "--base", "a", "--trained", "b", "--seed", "5", cwd=tmp_path).exit_code == 0
    effective = recorded["weight_diff"]["effective"]
    assert (effective.exact_spectra, effective.spectrum_top_k, effective.seed) == (True, 8, 5)

    assert run("weight-diff", "--base", "a", "--trained", "b", "--no-exact", cwd=tmp_path).exit_code == 0
    assert recorded["weight_diff"]["effective"].exact_spectra is False


def test_a_malformed_weight_is_a_usage_error(recorded: dict, tmp_path: Path) -> None:
    result = run("hack-check", "--base", "a", "--trained", "b", "--reward-hack-weights", "length_bias", cwd=tmp_path)

    assert result.exit_code == 2 and not recorded
    assert "'length_bias' is not NAME=NUMBER (e.g. length_bias=0.4)" in result.output


def every_option_name() -> set[str]:
    names = {"--help", "--version"}
    commands = list(main.commands.values())
    while commands:
        command = commands.pop()
        commands.extend(getattr(command, "commands", {}).values())
        names.update(name for param in command.params for name in (*param.opts, *param.secondary_opts))
    return names


CORE = Path(api.__file__).parent
@pytest.mark.parametrize("module", [path.relative_to(CORE).as_posix() for path in sorted(CORE.rglob("*.py"))])
def test_every_option_a_message_names_exists(module: str) -> None:
    # serve passes streamlit its own options (--server.port), and llama.cpp's tools are cited with theirs
    # (llama-perplexity --kl-divergence, llama-gguf-split --merge); those are not ours.
    lines = [line for line in (CORE / module).read_text(encoding="utf-8").splitlines()
             if "--server." not in line and "llama-" not in line]
    named = set(re.findall(r"(?<!var\()(?<![\w-])--[a-z][a-z-]*[a-z](?![\w:-])", "\n".join(lines)))  # not CSS's var(--x), --x:
    assert named - every_option_name() == set()
