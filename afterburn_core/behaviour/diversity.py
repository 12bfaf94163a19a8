"""Lexical diversity of a set of answers: distinct-n and repeated openings.

- ``distinct_n(texts, n)``: unique word n-grams / all word n-grams over the
  set (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
  Conversation Models"); NaN when the set has no n-gram;
- ``repeated_opening_share(texts)``: the share of answers whose first
  ``OPENING_WORDS`` words another answer of the set opens with too.

Both are properties of a *set*, so a statistical test resamples sets
(``statistics.set_metric_shift``), and ``DiversityIndex`` precomputes
per-answer n-gram ids and opening ids once so a resample costs array work
only. Does not judge whether low diversity is bad (``reward_hack`` does).
Cost: one tokenization per answer; O(answers x distinct n-grams) memory
for the index.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from afterburn_core.behaviour.text import words

#: Words that make an opening. Four catch templated openers ("great question let me", "sure here
#: is the") while answers that open on the prompt's own numbers ("8 * 5 = 40") stay distinct.
OPENING_WORDS = 4


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The word n-grams of one token list."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over ``texts`` (NaN when there is none)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        counts.update(ngrams(words(text), n))
    total = sum(counts.values())
    return len(counts) / total if total else math.nan


def opening(text: str) -> tuple[str, ...]:
    """The first ``OPENING_WORDS`` words of an answer (fewer when it is shorter)."""
    return tuple(words(text)[:OPENING_WORDS])


def repeated_opening_share(texts: Sequence[str]) -> float:
    """Share of ``texts`` whose opening another text shares (NaN for an empty set; empty answers ignored)."""
    openings = [opening(text) for text in texts]
    openings = [o for o in openings if o]
    if not openings:
        return math.nan
    counts = Counter(openings)
    return sum(1 for o in openings if counts[o] > 1) / len(openings)


class DiversityIndex:
    """Per-answer n-gram incidence and opening ids for a fixed list of answers, for fast resampling.

    ``distinct(rows, n)`` and ``repeated_openings(rows)`` take ``rows`` of
    shape (resamples, set_size): indices into the answers, one set per row.
    """

    def __init__(self, texts: Sequence[str], orders: Sequence[int] = (1, 2)) -> None:
        tokens = [words(text) for text in texts]
        self.incidence: dict[int, np.ndarray] = {}
        self.totals: dict[int, np.ndarray] = {}
        for n in orders:
            per_text = [ngrams(t, n) for t in tokens]
            vocabulary = {gram: i for i, gram in enumerate(sorted({g for grams in per_text for g in grams}))}
            present = np.zeros((len(texts), max(1, len(vocabulary))), dtype=bool)
            for row, grams in enumerate(per_text):
                present[row, [vocabulary[g] for g in grams]] = True
            self.incidence[n] = present
            self.totals[n] = np.array([len(grams) for grams in per_text], dtype=float)
        openings = [tuple(t[:OPENING_WORDS]) for t in tokens]
        ids = {o: i for i, o in enumerate(sorted(set(openings)))}
        self.opening_ids = np.array([ids[o] if o else -1 for o in openings], dtype=int)

    def distinct(self, rows: np.ndarray, n: int) -> np.ndarray:
        """distinct-n of each row's set, shape (resamples,); NaN where a set has no n-gram."""
        rows = np.atleast_2d(rows)
        present = self.incidence[n]
        unique = np.zeros(rows.shape[0])
        for r, row in enumerate(rows):
            unique[r] = present[row].any(axis=0).sum()
        total = self.totals[n][rows].sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, unique / np.where(total > 0, total, 1), np.nan)

    def repeated_openings(self, rows: np.ndarray) -> np.ndarray:
        """Repeated-opening share of each row's set, shape (resamples,)."""
        rows = np.atleast_2d(rows)
        shares = np.full(rows.shape[0], np.nan)
        for r, row in enumerate(rows):
            ids = self.opening_ids[row]
            ids = ids[ids >= 0]
            if ids.size:
                _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
                shares[r] = float((counts[inverse] > 1).mean())
        return shares
