"""Every bound Afterburn puts on untrusted input, in one place, each with its reason.

Checkpoints, suite files, configs and model outputs come from strangers
(``docs/security.md`` is the threat model). Each input has a named bound here;
hitting one raises the caller's ``BadInput`` subclass with one line that names
the file, the limit and its value, and the CLI exits 2. The modules that read
the input import their bound from here so ``docs/security.md`` can list them
all from one file.

It owns the bounds and the small parsers that enforce structure-independent
ones (JSON nesting depth); it leaves to each reader what the input means.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

#: Deepest nesting of arrays / objects in any JSON we parse (safetensors headers, config.json,
#: shard indexes, JSONL suite lines, stored run configs). Real files nest 3-6 deep (a
#: transformers config with rope_scaling inside text_config); CPython's parser recurses per
#: level and raises RecursionError near 1000, so 64 leaves ample room and fails cleanly first.
MAX_JSON_DEPTH = 64

# -- Chat templates (a checkpoint's Jinja, rendered by afterburn_core.generation.chat_template) --
# Measured on 2 shared CPU cores with the real templates in tests/chat_templates/ (ChatML,
# Llama-3, Llama-3.2 with tools, Qwen2.5 with tools, Gemma, Mistral): compiling takes 2-25 ms,
# rendering one user turn < 0.1 ms, and the process grows by < 1 MB.
#: Wall-clock seconds a chat template gets to compile and render all of a run's prompts for one
#: model (plus MAX_CHAT_TEMPLATE_SECONDS_PER_PROMPT each): 400× the slowest real compile, and a
#: template that loops forever (nested ``range(100000)``) costs a run seconds, not the machine.
MAX_CHAT_TEMPLATE_SECONDS = 10.0
#: Extra seconds per prompt rendered: 100× the slowest real render, so a suite of 10 000 prompts
#: is never cut short by the fixed budget above.
MAX_CHAT_TEMPLATE_SECONDS_PER_PROMPT = 0.01
#: Characters one rendered prompt may have. Real templates add 30-2 000 characters to a suite's
#: user turn; 1 000 000 characters is ~250 000 tokens, past the context window of any model one
#: machine diffs, so no real prompt is refused and a runaway one is stopped before tokenizing.
MAX_CHAT_TEMPLATE_CHARS = 1_000_000
#: Memory the rendering process may allocate beyond what it inherited (Linux address-space
#: limit): 500× what real templates use, while ``'x' * 10**9`` or ``'x'|center(10**9)`` fail
#: with MemoryError instead of taking the machine's memory (today they abort the run).
MAX_CHAT_TEMPLATE_MEMORY_BYTES = 512 * 2**20


class JsonTooDeep(ValueError):
    """A JSON text nests deeper than ``MAX_JSON_DEPTH``; raised before the parser recurses."""


def json_depth_problem(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``text`` nests too deep to parse, or ``None`` when it is within ``limit``.

    Vectorised (numpy), so the 71 MB header of 10^6 tensors is scanned in 2.5 s on 2 busy cores: escape pairs
    (``\\\\``, ``\\"``) are dropped left to right as the JSON tokenizer reads them, so every
    quote left opens or closes a string; a bracket counts only outside strings (an even
    number of quotes before it), and the depth is the running sum of opens minus closes.
    It does not validate the JSON; the parser does that after.
    """
    import numpy as np

    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else bytes(text)
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    codes = np.frombuffer(data, dtype=np.uint8)
    # Parity of the quotes so far (xor-accumulate: several times faster than a cumulative sum here).
    outside = np.bitwise_xor.accumulate((codes == ord('"')).view(np.uint8)) == 0
    opens = ((codes == ord("[")) | (codes == ord("{"))) & outside
    closes = ((codes == ord("]")) | (codes == ord("}"))) & outside
    steps = opens[opens | closes].astype(np.int32) * 2 - 1  # +1 per open, -1 per close, in order
    depth = np.cumsum(steps)
    if depth.size and int(depth.max()) > limit:
        return f"nests deeper than {limit} levels"
    return None


def load_json(text: str | bytes, limit: int = MAX_JSON_DEPTH, **options: Callable[..., Any]) -> Any:
    """``json.loads`` with a nesting bound: raises ``JsonTooDeep`` (a ``ValueError``) past ``limit``.

    ``options`` are passed to ``json.loads`` (``object_pairs_hook``, ``parse_float``, …).
    """
    problem = json_depth_problem(text, limit)
    if problem is not None:
        raise JsonTooDeep(problem)
    return json.loads(text, **options)


# -- Checkpoints (afterburn_core.checkpoints: resolution and the tensor index, from headers only) --
#: Tensors one checkpoint may hold, over all its shards. The largest public checkpoints hold
#: ~1.1 k (Llama-3.1-405B: 126 layers × 9 + 3), ~92 k (DeepSeek-V3: 58 MoE layers of 256 fp8
#: experts, each weight with its scale tensor) and ~140 k (Kimi-K2: 384 experts in 60 MoE layers)
#: tensors; 500 000 is 3.5× the largest, while one 75 MB header of 10⁶ one-byte tensors (under
#: safetensors' 100 MB header cap) took 6 s to resolve and 100 s to inventory before this bound.
MAX_TENSORS = 500_000
#: Weight files (shards) one checkpoint may have. Real sharded checkpoints ship tens to a few
#: hundred (DeepSeek-V3: 163, Llama-3.1-405B: 191); each costs a header read and a fingerprint
#: (up to ~3 MiB read), so 2 000 — 10× the largest — keeps resolution to seconds of I/O.
MAX_WEIGHT_FILES = 2_000
#: Characters of an untrusted value (a tensor or shard name, a JSON value) quoted in an error
#: message: enough to recognise any real tensor name (the longest in peft adapters of
#: multimodal models run ~120 characters), short enough that a 100 MB name stays one line.
MAX_QUOTED_CHARS = 160
#: Where Linux reports the memory a process can take (``available_memory_bytes``).
_MEMINFO = "/proc/meminfo"


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr`` of an untrusted value for a one-line message, at most about ``limit`` characters.

    Strings are cut before ``repr`` (so a 100 MB name costs nothing), containers are shown
    by their first items; ``repr`` escapes newlines and control characters.
    """
    import reprlib

    if isinstance(value, str):
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = limit
    shortener.maxlist = shortener.maxtuple = shortener.maxdict = 8
    shortener.maxlevel = 3
    # repr() of an int past 4 300 digits raises ValueError (Python's int-str limit): give its size.
    shortener.repr_int = lambda number, _level: (  # type: ignore[method-assign]
        repr(number) if number.bit_length() < 4 * limit else f"<a {number.bit_length()}-bit integer>")
    text = shortener.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def available_memory_bytes() -> int | None:
    """Memory a process can take now without swapping, or ``None`` where the platform cannot say.

    Linux: ``MemAvailable`` of /proc/meminfo (free memory plus reclaimable cache); elsewhere
    the free physical pages ``os.sysconf`` reports (macOS and the BSDs), a lower estimate.
    """
    import os

    try:
        with open(_MEMINFO, encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


# -- Suite and settings files (afterburn_core.yaml_input, generation.suites, generation.suite_checks, config) --
#: Deepest nesting of lists / mappings in a YAML suite or settings file. A suite nests 4 deep
#: (suite → prompts → prompt → tags) and a settings file 2; libyaml stops at 1 000 levels, but
#: PyYAML's constructor recurses ~3 Python frames per level and would hit the recursion limit
#: long before that, so the bound is the JSON one: ample room, a clean refusal first.
MAX_YAML_DEPTH = MAX_JSON_DEPTH
#: Nodes that YAML aliases (``*name``) may add when expanded. A suite that shares a few keys
#: through ``<<: *defaults`` across all its 5 000 prompts adds ~5 nodes a prompt (25 000);
#: "billion laughs" (nine aliases of nine aliases … nine levels deep) adds 9⁹ and would hang every
#: later walk, ``repr`` or copy of the data. 100 000 extra nodes cost milliseconds to walk.
MAX_YAML_ALIAS_NODES = 100_000
#: Characters of an integer written in a suite (YAML or JSONL) or settings file. Python refuses to
#: print an int of more than 4 300 digits (a ValueError inside any message that quotes it); the
#: longest literal under this bound (1 000 hex digits) has ~1 200 decimal digits. Settings are
#: ≤ 10 digits, suite answers ≤ 200 characters.
MAX_INT_CHARS = 1000
#: Bytes of ``.afterburn.yaml`` read. A settings file holds a dozen short lines (< 1 KiB); a larger
#: file is not one, and reading a big or endless file (``--config /dev/zero``) would never end.
MAX_CONFIG_FILE_BYTES = 64 * 1024
#: Memory RE2 may use to compile one ``regex:`` check of a suite (its own default, made explicit):
#: a 200-character pattern needs a few KiB; past this RE2 refuses the pattern as too large.
REGEX_MAX_MEM = 8 * 1024 * 1024
