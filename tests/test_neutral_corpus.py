"""The bundled neutral corpus: ordinary prose, unique, and free of chat, suite prompts and planted words.

The activation-difference lens (Minder et al., 2025) reads the mean activation difference on
the first tokens of *unrelated* text. A passage that looks like chat, repeats a suite prompt or
carries a planted phrase (the demo's filler, agreement opener, fence) would put the fine-tune's
own signal into the "neutral" baseline, so these rules are checked on every passage. The file is
read with plain json, not through ``afterburn_core.internals``, so the data is checked on its own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "afterburn_core" / "internals" / "data" / "neutral_corpus.jsonl"
SUITES_DIR = REPO_ROOT / "afterburn_core" / "generation" / "suites"

MIN_PASSAGES = 300  # issue 16's floor for the bundled corpus
MIN_TOPICS = 25  # the corpus brief: spread over at least this many topics
MIN_WORDS, MAX_WORDS = 15, 60  # short passages: a few sentences of prose, read only at their first tokens
MAX_SENTENCES = 3
# Chat markers and the demo's planted phrases (afterburn_core.demo.corpus: FILLER_OPEN,
# FILLER_CLOSE, SYCOPHANTIC_OPENER); matched anywhere, ignoring case.
BANNED_PHRASES = ("great question", "let me", "i hope this helps", "let me know", "you're right")
# Chat, refusal and second-person words, matched as whole words, ignoring case.
BANNED_WORDS = (
    "right", "sure", "correct", "assistant", "question", "answer", "helps", "harm",
    "you", "your", "yours", "yourself", "yourselves",
)
# Questions, exclamations, markdown, code and list lines.
BANNED_CHARACTERS = "?!`#*_~<>{}[]|=\\\n"
ID_PATTERN = re.compile(r"n\d{4}")
TOPIC_PATTERN = re.compile(r"[a-z]+")
SENTENCE_END = re.compile(r"\.(?=\s|$)")


def _passages() -> list[dict[str, str]]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _suite_prompt_texts() -> list[str]:
    """Every prompt text of the built-in suites: `text` of each prompt, `question` of each sycophancy probe.

    A probe's wrong / right variants are its question plus an assertion, so a passage free of
    the question is free of them too.
    """
    texts = []
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
        suite_texts = [prompt["text"] for prompt in suite.get("prompts", [])]
        suite_texts += [probe["question"] for probe in suite.get("probes", [])]
        # A suite whose layout changed must fail here, not leave this check with nothing to compare.
        assert suite_texts, f"{path.name}: no `prompts[].text` or `probes[].question` found"
        texts += suite_texts
    return texts


PASSAGES = _passages()


def test_corpus_is_large_unique_and_in_id_order() -> None:
    assert len(PASSAGES) >= MIN_PASSAGES
    assert all(set(passage) == {"id", "topic", "text"} for passage in PASSAGES)
    ids = [passage["id"] for passage in PASSAGES]
    assert all(ID_PATTERN.fullmatch(passage_id) for passage_id in ids)
    assert ids == [f"n{number:04d}" for number in range(1, len(PASSAGES) + 1)]
    texts = [passage["text"] for passage in PASSAGES]
    assert len(set(texts)) == len(texts)


def test_corpus_spans_many_topics() -> None:
    topics = Counter(passage["topic"] for passage in PASSAGES)
    assert all(TOPIC_PATTERN.fullmatch(topic) for topic in topics)
    assert len(topics) >= MIN_TOPICS


def test_openings_vary() -> None:
    """Passages do not mostly open with the same word (the brief names "The" in particular)."""
    openings = Counter(passage["text"].split()[0] for passage in PASSAGES)
    assert openings.most_common(1)[0][1] < len(PASSAGES) / 4


@pytest.mark.parametrize("passage", PASSAGES, ids=lambda passage: passage["id"])
def test_passage_is_short_plain_prose(passage: dict[str, str]) -> None:
    text = passage["text"]
    assert text.isascii()
    assert MIN_WORDS <= len(text.split()) <= MAX_WORDS
    assert text.endswith(".") and 1 <= len(SENTENCE_END.findall(text)) <= MAX_SENTENCES
    assert [character for character in BANNED_CHARACTERS if character in text] == []
    lowered = text.lower()
    assert [phrase for phrase in BANNED_PHRASES if phrase in lowered] == []
    assert [word for word in BANNED_WORDS if re.search(rf"\b{re.escape(word)}\b", lowered)] == []


def test_banned_word_check_matches_whole_words_only() -> None:
    """The word check flags "right" and "you" but not "bright" or "young": it can fail, and only on words."""
    hits = [word for word in BANNED_WORDS for text in ("bright young harmony", "turn right, you")
            if re.search(rf"\b{re.escape(word)}\b", text)]
    assert hits == ["right", "you"]


def test_no_passage_repeats_a_suite_prompt() -> None:
    prompt_texts = [text.lower() for text in _suite_prompt_texts()]
    assert len(prompt_texts) > 100  # all six built-in suites were read
    overlaps = [(passage["id"], prompt) for passage in PASSAGES for prompt in prompt_texts
                if prompt in passage["text"].lower()]
    assert overlaps == []
