"""Word-level diff of two answers: what the Prompts page and reports show between base and trained.

``word_diff(base, trained)`` splits both texts on whitespace and aligns the
word lists with ``difflib.SequenceMatcher`` (autojunk off: short answers with
repeated words must not lose them to the junk heuristic). It returns runs of
words, each ``equal``, ``removed`` (only in base) or ``added`` (only in
trained), in reading order; a replaced run comes out as its removal then its
addition. Whitespace is not preserved (a diff of words, not of layout).

It leaves to others: rendering and escaping (the page), token-level
comparison (``generation.scorer``). Cost: O(n·m) worst case in words, for
answers of a few hundred words well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

DiffOp = Literal["equal", "removed", "added"]


@dataclass(frozen=True)
class DiffRun:
    """Consecutive words that share one fate: kept, only in base, or only in trained."""

    op: DiffOp
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def word_diff(base: str, trained: str) -> tuple[DiffRun, ...]:
    """The runs that turn ``base``'s words into ``trained``'s (see the module docstring)."""
    base_words, trained_words = base.split(), trained.split()
    matcher = SequenceMatcher(a=base_words, b=trained_words, autojunk=False)
    runs: list[DiffRun] = []
    for tag, base_start, base_end, trained_start, trained_end in matcher.get_opcodes():
        if tag == "equal":
            runs.append(DiffRun("equal", tuple(base_words[base_start:base_end])))
            continue
        if base_end > base_start:
            runs.append(DiffRun("removed", tuple(base_words[base_start:base_end])))
        if trained_end > trained_start:
            runs.append(DiffRun("added", tuple(trained_words[trained_start:trained_end])))
    return tuple(runs)


def changed_share(runs: tuple[DiffRun, ...]) -> float:
    """Share of all words (base's plus trained's) that are not kept: 0 identical, 1 nothing shared."""
    kept = sum(2 * len(run.words) for run in runs if run.op == "equal")
    total = kept + sum(len(run.words) for run in runs if run.op != "equal")
    return 0.0 if total == 0 else 1.0 - kept / total
