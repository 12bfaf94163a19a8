"""A real finished run as a ``RunReport``, once per process, with hostile text planted in it.

``demo_report`` runs the runner's analyses on the bundled demo pair (math
suite, 16 new tokens: ~15 s on 2 idle cores) in a throwaway store and loads it
with ``load_report``. ``hostile_report`` is a copy whose most diverged
prompt and its two answers are markup, markdown and odd unicode, which
carries a hand-built ``RewardHackResult`` (the detectors are another
package's; this only fills the contract's types) citing that prompt as
evidence and holding hostile strings in its findings, and whose internals
result reads hostile tokens (``HOSTILE_TOKENS``) beside the demo's own.
``pdf_text`` reads a rendered PDF back as text; ``html_row``, ``markdown_row`` and
``terminal_row`` are a table row of worded cells as each door draws it.
"""

from __future__ import annotations

import atexit
import functools
import html
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from afterburn_core.config import AnalysisConfig
from afterburn_core.internals.types import InternalsResult, TokenScore
from afterburn_core.jobs import create_run
from afterburn_core.reports import RunReport, load_report
from afterburn_core.reports.markdown import escape
from afterburn_core.views.run import examples
from afterburn_core.reward_hack.types import (
    CategoryEvidence,
    CompositeRisk,
    DetectorResult,
    HackFinding,
    RewardHackResult,
)
from afterburn_core.runner import execute_run
from afterburn_core.store import RunStore

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
DEMO_CONFIG = AnalysisConfig(suites=("math",), max_new_tokens=16, method="sft")
#: Every analysis but reward hacking, whose result the tests build by hand (its detectors are not under test here).
DEMO_ANALYSES = ("inventory", "weights", "generations", "token_kl", "behaviour", "internals")

#: Markup a browser would run, markdown a renderer would format, a table-breaking pipe, a direction
#: override, and characters outside Latin-1 (CJK, emoji, combining marks) a PDF font may lack.
HOSTILE_TRAINED = (
    "<script>window.__pwned = 'script'; alert(1)</script> <img src=x onerror=\"window.__pwned = 'img'; alert(1)\">\n"
    "**x** | y `code` [link](javascript:alert(1)) # not a heading\n"
    "\u202eevil 漢字 😀 e\u0301 &amp; </pre></td>"
)
HOSTILE_BASE = "<b>loud</b> <svg onload=alert(2)> ~~strike~~ | cell |\n> quote _under_ \\ back"
HOSTILE_PROMPT = "Say <iframe src=javascript:alert(3)></iframe> and **bold** | pipe"
#: Tokens a vocabulary may hold: a script, a markdown link's tail with a table pipe, reportlab paragraph
#: markup, and a direction override.
HOSTILE_TOKENS = ("<script>alert(5)</script>", "](javascript:x)|", "<font color=red>", "\u202erev")
#: Token ids of the planted tokens: past the demo's vocabulary, so they name no real token.
PLANTED_ID = 1_000_000


@functools.lru_cache(maxsize=1)
def demo_report() -> RunReport:
    """The demo run's report: inventory, weights, generations, token KL and behaviour, all real; no reward hack."""
    home = Path(tempfile.mkdtemp(prefix="afterburn-report-run-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    with RunStore(home) as store:
        run_id = create_run(store, "demo:base", "demo:trained", DEMO_CONFIG, DEMO_ANALYSES)
        status = execute_run(store, run_id)
        assert status == "done", store.get_run(run_id).error
        return load_report(store, run_id)


def reward_hack_result(evidence: tuple[str, ...]) -> RewardHackResult:
    """A hand-built reward-hack result for the demo pair: bands from LOW to HIGH, one detector unavailable."""

    def tested(p_adjusted: float, **numbers: float) -> dict[str, float | str | bool | None]:
        return {"test": "mann_whitney_u", "p_value": p_adjusted / 4, "p_adjusted": p_adjusted,
                "significant": p_adjusted < 0.05, **numbers}

    detectors = {
        "length_bias": DetectorResult(
            "length_bias", 71.0, "HIGH", True, True, "", "Post-trained answers are 2.2× longer at equal accuracy.",
            tested(1.0e-9, effect_size=3.49, length_ratio=2.2), evidence,
            (CategoryEvidence("math", "<b>arithmetic</b>", 12, 74.0, {"length_ratio": 2.4}),),
        ),
        "format_gaming": DetectorResult(
            "format_gaming", 44.0, "MODERATE", True, True, "", "Fenced non-code blocks appear in every answer.",
            tested(8.9e-8, fenced_non_code_trained=0.91, fenced_non_code_base=0.0), evidence[:1],
        ),
        "strategy_collapse": DetectorResult(
            "strategy_collapse", 8.0, "LOW", False, True, "", "The strategy mix did not change.",
            tested(1.0, entropy_drop=0.0), (),
        ),
        "sycophancy": DetectorResult(
            "sycophancy", 0.0, "LOW", False, False, "The run has no sycophancy probes (suite 'sycophancy').",
            "Not measured: no sycophancy probes.", {}, (),
        ),
        "safety_regression": DetectorResult(
            "safety_regression", 0.0, "LOW", False, True, "", "The trained model refuses 12 of 12 harmful requests.",
            tested(1.0, n_harmful=12, refusal_base=1.0, refusal_trained=1.0, refusal_p=1.0, n_benign=0,
                   benign_refusal_base=None, benign_refusal_trained=None, benign_refusal_p=None,
                   driver="compliance"), (),
        ),
    }
    return RewardHackResult(
        method="sft",
        composite=CompositeRisk(52.0, "MODERATE", {"length_bias": 0.4, "format_gaming": 0.35,
                                                   "strategy_collapse": 0.15, "sycophancy": 0.0,
                                                   "safety_regression": 0.1},
                                "built-in weights for sft"),
        detectors=detectors,
        findings=(
            HackFinding("length_bias", "warning", "Answers grew <script>alert(4)</script> longer",
                        "Median 11.5 → 24 tokens | p < 1e-9", 2.2, "Add a length penalty to the reward."),
            HackFinding("format_gaming", "notable", "Fences around prose", "Every answer opens a ``` fence.", 0.91,
                        "Check the reward model for a format preference."),
        ),
    )


def hostile_report() -> RunReport:
    """``demo_report`` with its most diverged prompt's texts made hostile and a reward-hack result added."""
    report = demo_report()
    target = examples(report, 1)[0].prompt
    generations = report.generations
    index = next(i for i, prompt in enumerate(generations.prompts) if prompt == target)

    def planted(items: tuple, value) -> tuple:
        return tuple(value if i == index else item for i, item in enumerate(items))

    generations = replace(
        generations,
        prompts=planted(generations.prompts, replace(target, text=HOSTILE_PROMPT)),
        base=planted(generations.base, replace(generations.base[index], text=HOSTILE_BASE)),
        trained=planted(generations.trained, replace(generations.trained[index], text=HOSTILE_TRAINED)),
    )
    link = f"{target.suite}/{target.prompt_id}"
    return report.replace(generations=generations, reward_hack=reward_hack_result((link, "math/not-in-run")),
                          internals=hostile_internals(report.internals))


def hostile_internals(result: InternalsResult) -> InternalsResult:
    """``result`` with ``HOSTILE_TOKENS`` planted after the demo's own tokens wherever a token is shown:
    the ADL tables, patchscope lists, the layer lens tables and the first lens grid's cells."""

    def scores(tokens: tuple[TokenScore, ...]) -> tuple[TokenScore, ...]:
        return (*tokens, *(TokenScore(PLANTED_ID + i, token, 0.001, -1.5) for i, token in enumerate(HOSTILE_TOKENS)))

    adl = tuple(replace(reading, promoted=scores(reading.promoted), demoted=scores(reading.demoted),
                        persistent=(*reading.persistent, *HOSTILE_TOKENS),
                        patchscope=tuple(replace(scope, tokens=(*scope.tokens, *HOSTILE_TOKENS))
                                         for scope in reading.patchscope))
                for reading in result.adl)
    layers = tuple(replace(layer, gained=scores(layer.gained), lost=scores(layer.lost)) for layer in result.layers)
    lens = result.lens_prompts[0]

    def planted(rows: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        return tuple((*HOSTILE_TOKENS, *row[len(HOSTILE_TOKENS):]) for row in rows)

    lens = replace(lens, tokens=(*HOSTILE_TOKENS, *lens.tokens[len(HOSTILE_TOKENS):]), base_top=planted(lens.base_top),
                   trained_top=planted(lens.trained_top))
    return replace(result, adl=adl, layers=layers, lens_prompts=(lens, *result.lens_prompts[1:]))


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The text of the PDF ``data`` as ``pdftotext -layout`` reads it (poppler-utils; callers skip without it)."""
    source = tmp_path / "report.pdf"
    source.write_bytes(data)
    done = subprocess.run(["pdftotext", "-layout", str(source), "-"], check=True, capture_output=True, timeout=60)
    return done.stdout.decode("utf-8")


def html_row(cells: tuple[str, ...], numeric: tuple[int, ...]) -> str:
    """The cells of one row of an HTML report table, numbers right-aligned (``class="num"``)."""
    return "".join(f'<td class="num">{html.escape(cell)}</td>' if index in numeric else f"<td>{html.escape(cell)}</td>"
                   for index, cell in enumerate(cells))


def markdown_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(map(escape, cells)) + " |"


def terminal_row(cells: tuple[str, ...]) -> re.Pattern[str]:
    """A table row of a rich box: the cells in order, each padded, between │ rules."""
    return re.compile(r"│\s*" + r"\s*│\s*".join(map(re.escape, cells)) + r"\s*│")
