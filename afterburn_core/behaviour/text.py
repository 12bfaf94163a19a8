"""Low-level text helpers every behaviour classifier shares: quotes, fences, code, sentences.

Owns: the one Markdown fence parser (``fenced_blocks``), the one "is this
code?" rule (``looks_like_code``), the text with code blocks cut out
(``without_code``), sentence splitting and word tokens. Classifiers
(``formats``, ``strategy``, ``answers``, ``refusal``, ``reasoning``) build on
these so that "a fence", "code" and "a sentence" mean the same thing in every
view. Does not classify anything itself. Cost: a few regex passes, linear in
the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Curly quotes and the Unicode minus are what chat models emit for ' and -; rules are written for ASCII.
_NORMALIZE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2212": "-"})

# A fence opens at a line start with ``` or ~~~ (CommonMark), an optional info string (the
# language), and closes at a line starting with the same fence; an unclosed fence runs to the end
# (a generation cut by max_new_tokens).
_FENCE_RE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)(?:^[ \t]*(?P=fence)|\Z)",
    re.MULTILINE | re.DOTALL,
)

#: Info strings that name a programming / data language: the block is code whatever it holds.
CODE_LANGUAGES = frozenset({
    "python", "py", "python3", "javascript", "js", "typescript", "ts", "java", "c", "cpp", "c++",
    "csharp", "cs", "c#", "go", "golang", "rust", "rs", "ruby", "rb", "php", "swift", "kotlin",
    "scala", "r", "julia", "matlab", "bash", "sh", "shell", "zsh", "powershell", "sql", "haskell",
    "lua", "perl", "json", "yaml", "yml", "toml", "xml", "html", "css", "jsx", "tsx",
})
#: Info strings that declare prose: the block is not code whatever it holds.
NON_CODE_LANGUAGES = frozenset({"text", "txt", "plain", "plaintext", "markdown", "md", "output", "none"})

# Lines only code has. One of them is enough; plain prose, arithmetic ("8 * 5 = 40."), a city
# ("Paris") or a refusal matches none. "x = 5" alone is deliberately *not* code (it is algebra).
_CODE_LINE_PATTERNS = (
    r"^\s*(?:async\s+)?def\s+\w+\s*\(.*\)\s*(?:->.*)?:\s*$",
    r"^\s*class\s+\w+.*:\s*$",
    r"^\s*(?:import\s+[\w.]+|from\s+[\w.]+\s+import\b)",
    r"^\s*(?:return|yield|raise|assert)\b.*\S",
    r"^\s*print\s*\(",
    r"^\s*(?:for|while|if|elif|with|try|except|else)\b[^\n]*:\s*$",
    r"^\s*(?:function\s+\w+\s*\(|(?:const|let|var)\s+\w+\s*=|console\.log\s*\()",
    r"^\s*#include\b",
    r"^\s*(?:public|private|static|fn|func|void|int)\s+\w+.*[({;]\s*$",
    r"[;{]\s*$",
    r"^\s*}\s*;?\s*$",
    r"^\s*[A-Za-z_][\w.]*\s*=\s*[A-Za-z_][\w.]*\(.*\)\s*$",
    r"^\s*[A-Za-z_][\w.]*\([^()\n]*\)\s*;?\s*$",
    r"^\s*>>>\s",
)
_CODE_LINE_RE = re.compile("|".join(f"(?:{p})" for p in _CODE_LINE_PATTERNS), re.MULTILINE)

_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD_RE = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class FencedBlock:
    """One fenced block: its info string's first word (lower case, '' if none), its body, its span."""

    language: str
    body: str
    start: int
    end: int

    @property
    def is_code(self) -> bool:
        """True when the block holds code (see ``looks_like_code``)."""
        return looks_like_code(self.body, self.language)


def normalize(text: str) -> str:
    """The text with curly quotes and the Unicode minus made ASCII."""
    return text.translate(_NORMALIZE)


def fenced_blocks(text: str) -> list[FencedBlock]:
    """Every fenced block of ``text`` in order (an unclosed last fence runs to the end)."""
    blocks = []
    for match in _FENCE_RE.finditer(text):
        info = match.group("info").strip().split()
        language = info[0].lower() if info else ""
        blocks.append(FencedBlock(language, match.group("body"), match.start(), match.end()))
    return blocks


def looks_like_code(body: str, language: str = "") -> bool:
    """Whether a fenced block holds code.

    Rule: a code language tag (``CODE_LANGUAGES``) -> code; a prose tag
    (``NON_CODE_LANGUAGES``) -> not code; no tag or another one -> code when
    at least one line has a shape only code has (a ``def``, an ``import``, a
    call statement, a line ending in ``;`` or ``{``, ...). A fence around
    "Paris" or "8 * 5 = 40." is therefore not code.
    """
    language = language.lower()
    if language in CODE_LANGUAGES:
        return True
    if language in NON_CODE_LANGUAGES:
        return False
    return bool(_CODE_LINE_RE.search(body))


def without_code(text: str) -> str:
    """``text`` with every code block removed and non-code fences unwrapped (their body kept).

    What prose classifiers read: numbers, refusals and agreement inside a
    program are not the model's words, but a sentence a model wrapped in a
    fence is.
    """
    pieces, position = [], 0
    for block in fenced_blocks(text):
        pieces.append(text[position:block.start])
        if not block.is_code:
            pieces.append("\n" + block.body + "\n")
        else:
            pieces.append("\n")
        position = block.end
    pieces.append(text[position:])
    return "".join(pieces)


def without_fences(text: str) -> str:
    """``text`` with every fenced block removed, code or not (for Markdown-structure rules)."""
    pieces, position = [], 0
    for block in fenced_blocks(text):
        pieces.append(text[position:block.start] + "\n")
        position = block.end
    pieces.append(text[position:])
    return "".join(pieces)


def sentences(text: str) -> list[str]:
    """Non-empty sentences: split after . ! ? and at line breaks (fence lines dropped)."""
    parts = (part.strip() for part in _SENTENCE_SPLIT_RE.split(text))
    return [part for part in parts if part and not part.startswith(("```", "~~~"))]


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters, digits, apostrophes)."""
    return _WORD_RE.findall(normalize(text).lower())
