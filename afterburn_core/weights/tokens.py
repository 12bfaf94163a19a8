"""Token ids to readable strings, for the embedding-drift view.

Owns one job: given a checkpoint folder, decode single token ids so a person
can read them. It prefers ``tokenizer.json`` through the ``tokenizers``
library (fast, no transformers import); a folder with only a slow tokenizer
(``tokenizer.model``, ``vocab.json``) falls back to
``transformers.AutoTokenizer`` with ``trust_remote_code=False``. A folder with
no tokenizer, or one that fails to load, still works: every id reads
``#<id>``. Nothing here raises on a bad tokenizer; it is a display aid.

Rendering rules (what ``TokenDecoder.token`` returns):

- text that is printable and not only whitespace is returned as decoded,
  leading spaces kept (``262 -> " th"`` for the byte-level piece ``Ġth``);
- whitespace-only or control text is shown as its Python repr
  (``'\\n'``, ``' '``) so it is visible in a table;
- a piece that is not valid UTF-8 on its own (half of a multi-byte
  character in byte-level BPE) is shown as its bytes, ``<0xE2>``;
- special tokens are shown as their text (``<|im_start|>``);
- ids the tokenizer does not know read ``#<id>``.

Cost: reads one small file; decodes only the ids asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_REPLACEMENT_CHAR = "\ufffd"


@lru_cache(maxsize=1)
def _byte_level_table() -> dict[str, int]:
    """GPT-2's byte-to-unicode map, inverted: printable stand-in character -> byte value."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars, strict=True)}


def _piece_bytes(piece: str) -> bytes | None:
    """The bytes a byte-level BPE piece stands for, or None if it is not one."""
    table = _byte_level_table()
    if not piece or any(char not in table for char in piece):
        return None
    return bytes(table[char] for char in piece)


def render_text(text: str) -> str:
    """Make decoded text visible in a table (see the module docstring's rules)."""
    if text and text.isprintable() and not text.isspace():
        return text
    return repr(text)


class TokenDecoder:
    """Decode single token ids to display strings; never raises."""

    def __init__(
        self,
        decode_one: Callable[[int], str] | None = None,
        piece_of: Callable[[int], str | None] | None = None,
        source: str | None = None,
    ) -> None:
        self._decode_one = decode_one
        self._piece_of = piece_of
        #: Where the vocabulary came from (a file path), or None when there is none.
        self.source = source

    @property
    def available(self) -> bool:
        """True when a tokenizer was loaded (otherwise every id reads ``#<id>``)."""
        return self._decode_one is not None

    def token(self, token_id: int) -> str:
        """The display string of one id (``#<id>`` when it cannot be decoded)."""
        if self._decode_one is None:
            return f"#{token_id}"
        try:
            text = self._decode_one(int(token_id))
        except Exception:  # noqa: BLE001 - a display aid must not fail the analysis
            return f"#{token_id}"
        if text and _REPLACEMENT_CHAR not in text:
            return render_text(text)
        piece = self._piece(token_id)
        if piece is None:
            return f"#{token_id}"
        raw = _piece_bytes(piece)
        if raw is not None:
            try:
                return render_text(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return "".join(f"<0x{byte:02X}>" for byte in raw)
        return render_text(piece)

    def _piece(self, token_id: int) -> str | None:
        if self._piece_of is None:
            return None
        try:
            return self._piece_of(int(token_id))
        except Exception:  # noqa: BLE001 - same as above
            return None


def _from_tokenizer_json(path: Path) -> TokenDecoder:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    size = tokenizer.get_vocab_size(with_added_tokens=True)

    def decode_one(token_id: int) -> str:
        if token_id < 0 or (token_id >= size and tokenizer.id_to_token(token_id) is None):
            raise KeyError(token_id)
        return tokenizer.decode([token_id], skip_special_tokens=False)

    return TokenDecoder(decode_one, tokenizer.id_to_token, str(path))


def _from_transformers(root: Path) -> TokenDecoder:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False)

    def decode_one(token_id: int) -> str:
        if token_id < 0 or token_id >= len(tokenizer):
            raise KeyError(token_id)
        return tokenizer.decode([token_id], skip_special_tokens=False)

    return TokenDecoder(decode_one, tokenizer.convert_ids_to_tokens, str(root))


def load_token_decoder(root: str | Path | None) -> TokenDecoder:
    """The decoder of the tokenizer in ``root``; a ``#<id>`` decoder when there is none or it fails."""
    if root is None:
        return TokenDecoder()
    folder = Path(root)
    if folder.is_file():
        folder = folder.parent
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        try:
            return _from_tokenizer_json(tokenizer_json)
        except Exception as error:  # noqa: BLE001 - fall through to the slow path, then to ids
            log.warning("could not read %s (%s); trying transformers", tokenizer_json, error)
    slow_files = ("tokenizer.model", "vocab.json", "tokenizer_config.json")
    if any((folder / name).is_file() for name in slow_files):
        try:
            return _from_transformers(folder)
        except Exception as error:  # noqa: BLE001 - no readable tokenizer: show ids
            log.warning("no usable tokenizer in %s (%s); tokens shown as ids", folder, error)
    return TokenDecoder()

