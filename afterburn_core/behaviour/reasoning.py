"""Chain-of-thought markers of one answer: depth, self-correction, verification.

Owns three counts, each a set of word-boundary regexes over the answer's
prose (code blocks cut out, ``text.without_code``):

- ``cot_depth``: reasoning links, i.e. inferential connectives ("so",
  "therefore", "because", "then", "first,", "which means", …). An
  announcement such as "Let me think about this carefully." is *not* a link:
  it promises reasoning without doing any (it is the demo's filler);
- ``self_corrections``: "wait", "actually", "let me re-check", "I made a
  mistake", … counted only *after the first sentence*: a self-correction
  revises the model's own earlier words, while an opening "Actually, 7 + 5 =
  12" corrects the user's premise (the demo base's polite correction);
- ``verifications``: "let's verify", "check:", "double-check", "plugging
  back in", ….

Does not decide the strategy (``strategy`` uses ``cot_depth``) or judge
whether the reasoning is right. Cost: a few regex passes, linear in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from afterburn_core.behaviour.text import normalize, sentences, without_code

# "so" only where it links clauses (", so", "So …", "and so"), never "so many" / "I think so".
_CONNECTIVE_PATTERNS = (
    r"\bfirst(?:ly)?\s*,",
    r"\b(?:second(?:ly)?|third(?:ly)?|next|finally|lastly)\s*,",
    r"(?:^|[.,;:!?]\s*|\band\s+)then\b",
    r"(?:^|[.,;:!?]\s*|\band\s+)so\b(?!\s+(?:much|many|far|that's|on)\b)",
    r"\btherefore\b",
    r"\bthus\b",
    r"\bhence\b",
    r"\bbecause\b",
    r"\bsince\b",
    r"\bconsequently\b",
    r"\b(?:which|this|that) (?:means|gives|implies)\b",
    r"\bit follows\b",
    r"\bwe get\b",
)
_CONNECTIVE_RE = re.compile("|".join(f"(?:{p})" for p in _CONNECTIVE_PATTERNS), re.IGNORECASE | re.MULTILINE)

_SELF_CORRECTION_RE = re.compile(
    r"\bwait\b\s*[,.!]|\bactually\b|\bhmm+\b|\bon second thought\b|\bi made an? (?:mistake|error)\b"
    r"|\bi was wrong\b|\bthat'?s (?:wrong|incorrect|not right)\b|\blet me (?:re-?check|re-?calculate|"
    r"re-?compute|reconsider|re-?examine|correct (?:that|this|myself))\b|\bcorrection\s*:|\boops\b"
    r"|\bscratch that\b|\bno,? wait\b",
    re.IGNORECASE,
)
_VERIFICATION_RE = re.compile(
    r"\blet(?:'s| us| me) (?:verify|check|confirm|double-check)\b|\bdouble[- ]check(?:ing|ed)?\b"
    r"|\b(?:check|verify|verification|sanity check)\s*:|\bto (?:verify|confirm|check)\b"
    r"|\bplugging (?:it |this |that )?back\b|\bsubstitut(?:e|ing) back\b|\bchecks out\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ReasoningMarkers:
    """The three counts for one answer."""

    cot_depth: int
    self_corrections: int
    verifications: int


def cot_depth(text: str) -> int:
    """Reasoning links in the answer's prose (0 for a bare answer, 1 for "X, so Y")."""
    return len(_CONNECTIVE_RE.findall(without_code(normalize(text))))


def self_corrections(text: str) -> int:
    """Self-correction markers after the answer's first sentence."""
    parts = sentences(without_code(normalize(text)))
    return sum(len(_SELF_CORRECTION_RE.findall(part)) for part in parts[1:])


def verifications(text: str) -> int:
    """Verification markers anywhere in the answer's prose."""
    return len(_VERIFICATION_RE.findall(without_code(normalize(text))))


def reasoning_markers(text: str) -> ReasoningMarkers:
    """All three counts at once."""
    return ReasoningMarkers(cot_depth(text), self_corrections(text), verifications(text))
