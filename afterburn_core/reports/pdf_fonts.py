"""Fonts for the PDF, and text made drawable in them: every character either has a glyph or is spelled.

The PDF embeds TrueType fonts: DejaVu Sans (and Sans Mono) where the system
has them — they cover Latin, Greek, Cyrillic and the maths the analyses write
(‖ΔW‖, σ, α, →) — else Bitstream Vera, which reportlab ships and so is always
there. A character the chosen font has no glyph for (CJK, emoji, … in a
model's answer) would print as an empty box, so ``drawable`` spells it as
``\\uXXXX`` instead, after ``spell_invisible`` has spelled control and
direction characters; ``markup`` also escapes ``& < >`` for reportlab's
paragraph XML, which every model string goes through before any
``Paragraph``. Fonts are registered once per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import reportlab
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from afterburn_core.views.text import spell_invisible

#: Folders that hold DejaVu on common systems (Debian/Ubuntu, Fedora/Arch, Homebrew, a user install).
DEJAVU_FOLDERS = (
    "/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF",
    "/opt/homebrew/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"),
    str(Path.home() / "Library" / "Fonts"),
)
DEJAVU_FILES = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf",
                "bold_italic": "DejaVuSans-BoldOblique.ttf", "mono": "DejaVuSansMono.ttf"}
VERA_FILES = {"regular": "Vera.ttf", "bold": "VeraBd.ttf", "italic": "VeraIt.ttf", "bold_italic": "VeraBI.ttf",
              "mono": "Vera.ttf"}  # reportlab ships no monospaced Vera; the regular face stands in
FAMILY = "AfterburnSans"
MONO = "AfterburnMono"


@dataclass(frozen=True)
class FontSet:
    """The registered font names and the characters the regular and mono faces can draw."""

    family: str
    bold: str
    mono: str
    source: str
    covered: frozenset[int]
    covered_mono: frozenset[int]


def _files() -> tuple[dict[str, Path], str]:
    for folder in DEJAVU_FOLDERS:
        paths = {role: Path(folder) / name for role, name in DEJAVU_FILES.items()}
        if all(path.is_file() for path in paths.values()):
            return paths, "DejaVu Sans"
    vera = Path(reportlab.__file__).parent / "fonts"
    return {role: vera / name for role, name in VERA_FILES.items()}, "Bitstream Vera (bundled with reportlab)"


@functools.lru_cache(maxsize=1)
def fonts() -> FontSet:
    """Register the report's fonts (once) and say which characters they cover."""
    paths, source = _files()
    faces = {}
    for role, path in paths.items():
        name = MONO if role == "mono" else f"{FAMILY}-{role}"
        faces[role] = TTFont(name, str(path))
        pdfmetrics.registerFont(faces[role])
    # Paragraph markup <b>/<i> picks the family's faces through these mappings.
    for bold, italic, role in ((0, 0, "regular"), (1, 0, "bold"), (0, 1, "italic"), (1, 1, "bold_italic")):
        addMapping(f"{FAMILY}-regular", bold, italic, f"{FAMILY}-{role}")
    return FontSet(f"{FAMILY}-regular", f"{FAMILY}-bold", MONO, source,
                   frozenset(faces["regular"].face.charToGlyph), frozenset(faces["mono"].face.charToGlyph))


def drawable(text: str, *, mono: bool = False, keep: str = "\n") -> str:
    """``text`` with invisible characters and characters the font lacks spelled as escapes."""
    covered = fonts().covered_mono if mono else fonts().covered
    visible = spell_invisible(text, keep=keep)
    return "".join(char if ord(char) in covered or char in keep else _spelled(char) for char in visible)


def _spelled(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def markup(text: str, *, mono: bool = False) -> str:
    """Model or user ``text`` as paragraph markup: drawable, XML-escaped, line breaks kept as ``<br/>``."""
    return xml_escape(drawable(text, mono=mono)).replace("\n", "<br/>")
