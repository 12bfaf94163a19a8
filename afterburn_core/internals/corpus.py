"""The bundled neutral corpus: ordinary prose unrelated to any fine-tune, read by the activation-difference lens.

Why unrelated text: a narrow fine-tune shifts the residual stream on the first
tokens of ANY input, and that shift read through the unembedding names what the
fine-tune was about (Minder et al. 2025, "Narrow finetuning leaves clearly
readable traces in activation differences"). Chat prompts or the suites would
mix in the prompt's own content; this corpus (``data/neutral_corpus.jsonl``,
written for the project, rules in ``data/README.md``) holds none.

Contract: ``neutral_corpus() -> Corpus`` (cached): the passages in file order,
its version and the SHA-256 of the file's bytes, which enters the internals
cache key, so editing the corpus makes a new run. ``Corpus.sample(n)`` takes
``n`` passages spread evenly over the file (topics are interleaved), all of
them for ``n == 0``, never one of the last ``HELDOUT_PASSAGES`` (``Corpus.heldout``: the steering
check's held-out text). Cost: reads a ~60 KB file once per process.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CORPUS_FILE = Path(__file__).parent / "data" / "neutral_corpus.jsonl"
CORPUS_NAME = "neutral"
#: Bumped when the corpus's rules change (not for every edit: the content hash tracks those).
CORPUS_VERSION = 1
#: Passages kept out of every sample, for the steering check's perplexity (text the difference was not read on):
#: 32 short passages are ~800 tokens, enough for a perplexity that moves by less than the steering bound's
#: tolerance between reruns, few enough that the lens keeps 90 % of the corpus.
HELDOUT_PASSAGES = 32


@dataclass(frozen=True)
class Corpus:
    name: str
    version: int
    sha256: str
    passages: tuple[str, ...]

    @property
    def heldout(self) -> tuple[str, ...]:
        """The last ``HELDOUT_PASSAGES`` passages: never sampled, read only by the steering check."""
        return self.passages[-HELDOUT_PASSAGES:]

    def sample(self, count: int) -> tuple[str, ...]:
        """``count`` passages spread evenly over the corpus less the held-out ones (all of those for 0 or more
        than it holds)."""
        readable = self.passages[:-HELDOUT_PASSAGES]
        total = len(readable)
        if count <= 0 or count >= total:
            return readable
        return tuple(readable[(index * total) // count] for index in range(count))


@lru_cache(maxsize=1)
def neutral_corpus() -> Corpus:
    data = CORPUS_FILE.read_bytes()
    passages = tuple(json.loads(line)["text"] for line in data.decode("utf-8").splitlines() if line.strip())
    return Corpus(CORPUS_NAME, CORPUS_VERSION, hashlib.sha256(data).hexdigest(), passages)
