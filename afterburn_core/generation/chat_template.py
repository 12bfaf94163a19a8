"""A checkpoint's chat template rendered as untrusted code: in a child process, under bounds.

Contract: ``render_chat_template(tokenizer, texts, checkpoint=...) -> list[str]``
gives, for each text, exactly what ``tokenizer.apply_chat_template([one user
turn], tokenize=False, add_generation_prompt=True)`` gives, or raises
``BadCheckpoint`` with one line naming the checkpoint, the template's file and
the limit hit (``afterburn_core.limits``): the time limit (compile + all prompts),
the characters of one rendered prompt, the memory of the rendering process, or
any error the template raises (Jinja sandbox refusals, syntax errors, undefined
names, ``raise_exception(...)``, type errors, runaway recursion).

Why a child process and not a stricter sandbox in this one: a chat template is
Jinja code from the checkpoint's author. transformers already compiles it in an
``ImmutableSandboxedEnvironment`` (no attribute escapes), but the sandbox bounds
neither time nor size: nested ``range(100000)`` loops never end, and
``'x' * 10**10``, ``10 ** (10 ** 10)`` or ``'{:>999999999}'.format(1)`` are single C
calls that no tracer or signal handler can interrupt. Only a process can be
stopped from outside whatever it runs, and only an address-space limit stops an
allocation before it takes the machine. Rendering in the child with
transformers' own ``apply_chat_template`` also keeps prompts byte-identical to
transformers' by construction (its globals, filters, ``strftime_now``, trimming),
where a re-implemented environment would have to track every release.

Cost: one child per call; ``generate`` calls it once per model with every
prompt of the run (500 prompts: 0.11 s, against 0.04 s in-process). The parent
kills the child at the deadline; the child also caps its own CPU time just past
it, so a child orphaned by a SIGKILLed parent still ends. On Linux the child is
forked (the tokenizer is inherited, nothing is copied) and its address space is
limited to what it inherited plus ``MAX_CHAT_TEMPLATE_MEMORY_BYTES``. Elsewhere
(macOS, where forking a process that has loaded system frameworks is unsafe, and
Windows, which has no fork) the child is spawned: a fresh interpreter that
unpickles the tokenizer (importing transformers, seconds, bounded by
``CHILD_START_SECONDS`` and not charged to the template), with the same time and
size bounds but no memory bound, since neither kernel enforces ``RLIMIT_AS``;
there a huge allocation is stopped by the time limit or by the system (and on
Windows, which has no CPU limit either, a child orphaned by a killed parent
runs until it finishes or is killed).

It leaves tokenizing the rendered prompts and the plain fallback for tokenizers
without a template to ``generator``.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from afterburn_core.errors import BadCheckpoint
from afterburn_core.limits import (
    MAX_CHAT_TEMPLATE_CHARS,
    MAX_CHAT_TEMPLATE_MEMORY_BYTES,
    MAX_CHAT_TEMPLATE_SECONDS,
    MAX_CHAT_TEMPLATE_SECONDS_PER_PROMPT,
)

#: How the rendering child starts: fork on Linux (cheap, the tokenizer is inherited), spawn
#: elsewhere (see the module docstring for why not fork on macOS).
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
#: Seconds a spawned child gets to start and unpickle the tokenizer before the template's own
#: time starts: importing transformers took 6 s on 2 shared cores here; 20× that. A fork is ready at once.
CHILD_START_SECONDS = 120.0
#: Characters of a template's own error message quoted in ours: enough for any real Jinja message
#: (they run 30-120 characters), short enough that a template cannot fill the terminal with one.
ERROR_EXCERPT_CHARS = 200
#: Where transformers reads a folder's chat template from, in its order of precedence.
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")


@dataclass(frozen=True)
class TemplateLimits:
    """The bounds one rendering runs under; the defaults are ``afterburn_core.limits``'."""

    #: Seconds for compiling the template and rendering the first prompt, and every prompt after.
    seconds: float = MAX_CHAT_TEMPLATE_SECONDS
    #: Seconds added to ``seconds`` per prompt rendered.
    seconds_per_prompt: float = MAX_CHAT_TEMPLATE_SECONDS_PER_PROMPT
    #: Characters one rendered prompt may have.
    max_chars: int = MAX_CHAT_TEMPLATE_CHARS
    #: Bytes the child may allocate beyond what it started with (Linux only).
    memory_bytes: int = MAX_CHAT_TEMPLATE_MEMORY_BYTES

    def seconds_for(self, prompts: int) -> float:
        """The wall-clock budget for rendering ``prompts`` prompts."""
        return self.seconds + self.seconds_per_prompt * prompts

    def describe_time(self) -> str:
        """The time limit as the user reads it in an error."""
        return f"{self.seconds:g} s + {self.seconds_per_prompt:g} s per prompt"


def template_file(tokenizer) -> str:
    """The file the tokenizer's chat template came from (its folder when none of ``TEMPLATE_FILES`` is there)."""
    folder = Path(str(getattr(tokenizer, "name_or_path", "") or "."))
    return next((str(folder / name) for name in TEMPLATE_FILES if (folder / name).is_file()), str(folder))


def render_chat_template(
    tokenizer, texts: Sequence[str], *, checkpoint: str, limits: TemplateLimits = TemplateLimits()
) -> list[str]:
    """Each text as one user turn through the tokenizer's chat template, ready for the answer.

    ``checkpoint`` is the reference errors name. Raises ``BadCheckpoint`` when the
    template errs or passes a limit (see the module docstring).
    """
    texts = list(texts)
    if not texts:
        return []
    where = f"the chat template of {checkpoint} ({template_file(tokenizer)})"
    context = multiprocessing.get_context(START_METHOD)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_render_in_child, args=(sender, tokenizer, texts, limits), name="afterburn-chat-template"
    )
    child.start()
    sender.close()  # the child holds the only writing end, so its death reads as EOF here
    try:
        return _receive(receiver, child, len(texts), limits, where)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
        child.close()


def _receive(receiver, child, count: int, limits: TemplateLimits, where: str) -> list[str]:
    """The child's renderings, in order; every way it can fail becomes one ``BadCheckpoint`` line."""
    if not receiver.poll(CHILD_START_SECONDS):
        raise BadCheckpoint(f"{where}: the process rendering it did not start within {CHILD_START_SECONDS:g} s.")
    _message(receiver, child, where)  # "ready": the template's time starts now
    budget = limits.seconds_for(count)
    deadline = time.monotonic() + budget
    rendered: list[str] = []
    while len(rendered) < count:
        if not receiver.poll(max(deadline - time.monotonic(), 0)):
            raise BadCheckpoint(
                f"{where} did not finish rendering {count} prompt{'s' if count != 1 else ''} within {budget:g} s "
                f"(limit {limits.describe_time()}; real templates take milliseconds); fix or replace the template."
            )
        kind, payload = _message(receiver, child, where)
        if kind == "rendered":
            rendered.append(payload)
        elif kind == "too_long":
            raise BadCheckpoint(
                f"{where} rendered {payload:,} characters for one prompt, over the limit of {limits.max_chars:,} "
                "characters; fix or replace the template."
            )
        elif kind == "memory":
            raise BadCheckpoint(
                f"{where} needed more than the limit of {limits.memory_bytes // 2**20:,} MiB of memory to render; "
                "fix or replace the template."
            )
        else:
            raise BadCheckpoint(f"{where} fails: {payload}; fix or replace the template.")
    return rendered


def _message(receiver, child, where: str) -> tuple[str, object]:
    """The child's next message; its death before sending one is an error naming how it ended."""
    try:
        return receiver.recv()
    except EOFError:
        child.join()
        code = child.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        raise BadCheckpoint(f"{where}: the process rendering it {how} before finishing.") from None


def _render_in_child(sender, tokenizer, texts: list[str], limits: TemplateLimits) -> None:
    """Child side: bound itself, say ready, then send ("rendered", text) per prompt or one failure."""
    _bound_this_process(limits.memory_bytes, limits.seconds_for(len(texts)))
    sender.send(("ready", None))
    try:
        for text in texts:
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
            if len(rendered) > limits.max_chars:
                sender.send(("too_long", len(rendered)))
                return
            sender.send(("rendered", rendered))
    except MemoryError:
        sender.send(("memory", None))
    except Exception as error:  # noqa: BLE001 - whatever the template raises is the checkpoint's fault, reported
        sender.send(("error", _describe(error)))
    finally:
        sender.close()


def _describe(error: Exception) -> str:
    """``Type: first line of the message (line N)``, cut to ``ERROR_EXCERPT_CHARS``."""
    lines = str(error).strip().splitlines()
    message = lines[0].rstrip(".") if lines else ""  # ours goes on after it
    if len(message) > ERROR_EXCERPT_CHARS:
        message = message[:ERROR_EXCERPT_CHARS] + "…"
    line_number = getattr(error, "lineno", None)
    at_line = f" (line {line_number})" if isinstance(line_number, int) else ""
    return f"{type(error).__name__}: {message}{at_line}" if message else f"{type(error).__name__}{at_line}"


def _bound_this_process(extra_bytes: int, seconds: float) -> None:
    """Cap this process's address space at its current size + ``extra_bytes`` (Linux only), and
    its CPU time at what it used so far + ``seconds`` + 1 (where ``resource`` exists).

    The parent kills the child at its wall-clock deadline first (a single thread's CPU time never
    runs ahead of the clock); the CPU limit is for a parent that died (SIGKILL) before it could:
    the kernel then ends the orphaned child instead of letting an endless template run on.
    """
    try:
        import resource
    except ImportError:  # Windows: the parent's deadline is the only bound
        return
    used = resource.getrusage(resource.RUSAGE_SELF)
    _lower(resource, resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime + seconds) + 1)
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            current = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # no /proc (macOS, whose kernel ignores RLIMIT_AS anyway): see the module docstring
        return
    _lower(resource, resource.RLIMIT_AS, current + extra_bytes)


def _lower(resource, which: int, value: int) -> None:
    """Set the soft limit ``which`` to ``value`` unless it is already lower (never above the hard limit)."""
    soft, hard = resource.getrlimit(which)
    limit = min(bound for bound in (value, soft, hard) if bound != resource.RLIM_INFINITY)
    resource.setrlimit(which, (limit, hard))
