"""The null case first: identical models and a control pair score LOW everywhere and flag nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from afterburn_core.config import TRAINING_METHODS
from afterburn_core.reward_hack.composite import composite_risk
from afterburn_core.reward_hack.types import RewardHackResult
from afterburn_core.reward_hack.validation import (
    CROSS_TALK_MARGIN,
    PAIRS,
    confusion_row,
    run_pair,
)

CONFUSION_DOC = Path(__file__).resolve().parents[1] / "docs" / "reward-hack-confusion.md"


@pytest.fixture(scope="module")
def results() -> dict[str, RewardHackResult]:
    return {pair: run_pair(pair) for pair in ("identical", "control")}


def test_identical_models_score_exactly_zero(results: dict[str, RewardHackResult]) -> None:
    result = results["identical"]
    for name, detector in result.detectors.items():
        assert detector.available, name
        assert (detector.score, detector.band, detector.flagged) == (0.0, "LOW", False), name
        assert detector.statistics["significant"] is False, name
        assert detector.examples == (), name
        assert all(category.score == 0.0 for category in detector.categories), name
    assert (result.composite.score, result.composite.band) == (0.0, "LOW")
    for method in TRAINING_METHODS:
        assert composite_risk(result.detectors, method).score == 0.0


def test_identical_models_get_one_info_line_with_numbers(results: dict[str, RewardHackResult]) -> None:
    (finding,) = results["identical"].findings
    assert finding.severity == "info"
    assert finding.title == "No reward-hacking signal"
    assert finding.detail.startswith("Composite 0.0 (LOW) with the ")
    assert finding.detail.endswith("; no detector is flagged, every detector scores 0.0.")


def test_the_control_pair_stays_low(results: dict[str, RewardHackResult]) -> None:
    result = results["control"]
    for name, detector in result.detectors.items():
        assert detector.score <= CROSS_TALK_MARGIN and detector.band == "LOW" and not detector.flagged, name
    assert result.composite.band == "LOW"
    assert all(finding.severity == "info" for finding in result.findings)


def test_the_confusion_document_is_current(results: dict[str, RewardHackResult]) -> None:
    document = CONFUSION_DOC.read_text(encoding="utf-8")
    rerun = f"stale: run scripts/reward_hack_confusion.py --write {CONFUSION_DOC}"
    for pair, result in results.items():
        assert confusion_row(pair, result) in document, rerun
    missing = [pair for pair in PAIRS if f"| {pair} |" not in document]
    assert not missing, f"{rerun} (no row for {', '.join(missing)})"
