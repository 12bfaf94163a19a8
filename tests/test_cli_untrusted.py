"""What strangers wrote reaches the terminal as text, and ``-o`` writes only the file named.

A hostile checkpoint (escape sequences, an OSC title, BEL, NUL, U+202E and rich
markup in its folder, tensor names, architecture and config values) and a
hostile suite go through every verb that prints, each a real ``afterburn``
subprocess; the output must hold no terminal control character, show ``[x]``
as typed, and end with exit 0 or 2, never a traceback. A static check keeps
the CLI's own prints honest: every value they interpolate goes through
``safe_text``.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
from cli_helpers import afterburn

from afterburn_core.errors import BadInput
from afterburn_core.files import write_file
from afterburn_core.views.text import plain_text, safe_text

#: Every trick at once: an OSC window title, a screen clear, a bell, a right-to-left override and rich markup.
HOSTILE = "\x1b]0;OWNED\x07\x1b[2J\x07\u202e[x][/][bold]"
#: The same without what a file name cannot hold ("/" makes a folder, which is fine: it stays in the path).
HOSTILE_PATH_PART = "evil\x1b]0;OWNED\x07[x][bold]\u202e"
#: Characters that must never reach a terminal from data.
RAW_CONTROLS = ("\x1b", "\x07", "\x00", "\u202e")


@pytest.fixture(scope="module")
def hostile_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny base and a 'trained' copy whose folder, config and tensor names carry ``HOSTILE``."""
    from checkpoint_factories import build_tiny_llama
    from safetensors.torch import load_file, save_file
    import torch

    root = tmp_path_factory.mktemp("hostile")
    base = build_tiny_llama(root / "base", seed=0)
    trained = build_tiny_llama(root / HOSTILE_PATH_PART / "[x][/]", seed=1)
    config = json.loads((trained / "config.json").read_text())
    config["architectures"] = [f"LlamaForCausalLM{HOSTILE}"]
    config["note"] = HOSTILE + "\x00"
    (trained / "config.json").write_text(json.dumps(config))
    tensors = load_file(trained / "model.safetensors")
    tensors[f"model.layers.0.{HOSTILE}\x00.weight"] = torch.zeros(4, 4)
    save_file(tensors, trained / "model.safetensors", metadata={"format": "pt"})
    return base, trained


@pytest.fixture(scope="module")
def hostile_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite whose name, category and prompt carry ``HOSTILE`` (as YAML escapes, so the file is valid)."""
    spelled = json.dumps(HOSTILE)  # a JSON string is a YAML double-quoted string
    path = tmp_path_factory.mktemp("suite") / "hostile.yaml"
    path.write_text(
        f"name: hostile\nversion: 1\nprompts:\n"
        f"  - {{id: p1, category: {spelled}, text: {json.dumps('Say ' + HOSTILE)}, expected_answer: '1'}}\n"
    )
    return path


def _assert_clean(result, *, literal: str | None = "[x]") -> None:
    shown = result.stdout + result.stderr
    assert result.returncode in (0, 2), shown
    assert "Traceback" not in shown, shown
    for char in RAW_CONTROLS:
        assert char not in shown, f"{char!r} reached the terminal: {shown!r}"
    if literal is not None:
        assert literal in shown, shown


def test_every_verb_prints_a_hostile_checkpoint_as_text(afterburn_home: Path, hostile_pair, hostile_suite,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, trained = map(str, hostile_pair)
    pair = ("--base", base, "--trained", trained)
    quick = ("--suites", "math", "--max-new-tokens", "4")

    _assert_clean(afterburn("inspect", trained))
    _assert_clean(afterburn("inspect", trained, "--json"), literal=None)
    _assert_clean(afterburn("weight-diff", *pair))
    victim = tmp_path / "victim.md"
    victim.write_text("keep me")
    (tmp_path / "report.md").symlink_to(victim)  # reports followed the link before
    diagnosed = afterburn("diagnose", *pair, *quick, "-o", str(tmp_path / "report.md"))
    _assert_clean(diagnosed)
    assert victim.read_text() == "keep me" and (tmp_path / "report.md").read_text().startswith("#")
    assert "LOAD REPORT" in diagnosed.stderr  # transformers' own report named the tensor: made plain too
    _assert_clean(afterburn("behaviour", *pair, *quick), literal=None)
    # On a terminal, rich redirects what libraries print while its bars show (transformers' load report
    # names the tensor again when a new token budget loads the models): still plain, though rich's own
    # colour and cursor sequences are there.
    with monkeypatch.context() as terminal:
        terminal.setenv("TTY_COMPATIBLE", "1")  # rich's switch: the output is a terminal
        on_terminal = afterburn("behaviour", *pair, "--suites", "math", "--max-new-tokens", "3")
    assert on_terminal.returncode == 0 and "LOAD REPORT" in on_terminal.stderr, on_terminal.stderr
    for injected in ("\x1b]", "OWNED", "\x1b[2J", "\x07", "\x00", "\u202e"):
        assert injected not in on_terminal.stdout + on_terminal.stderr, injected
    _assert_clean(afterburn("hack-check", *pair, *quick), literal=None)
    _assert_clean(afterburn("hack-check", *pair, "--suites", str(hostile_suite), "--max-new-tokens", "4"),
                  literal=None)
    listed = afterburn("runs", "list")
    _assert_clean(listed)
    run_id = diagnosed.stderr.split("run ", 1)[1].split()[0]
    _assert_clean(afterburn("runs", "show", run_id), literal=None)
    _assert_clean(afterburn("runs", "delete", run_id), literal=None)


def test_markup_and_escapes_in_a_refused_reference_are_text(afterburn_home: Path) -> None:
    missing = afterburn("inspect", "/tmp/nope[/]")  # a MarkupError traceback before
    _assert_clean(missing, literal="/tmp/nope[/]")
    assert missing.returncode == 2 and missing.stderr.startswith("Error: no folder or file at /tmp/nope[/]")

    retitle = afterburn("weight-diff", "--base", "demo", "--trained", "/tmp/x\x1b]0;OWNED\x1b\\[x]")
    _assert_clean(retitle)
    assert retitle.stderr.startswith("Error: no folder or file at /tmp/x[x]")


def test_a_symlink_at_the_output_is_replaced_not_followed(afterburn_home: Path, tiny_pair, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = out / "victim.txt"
    victim.write_text("keep me")
    report = out / "report.json"
    report.symlink_to(victim)
    planted = out / ".report.json.partial"  # the fixed temporary name -o used before
    planted.symlink_to(victim)

    result = afterburn("weight-diff", "--base", str(tiny_pair[0]), "--trained", str(tiny_pair[1]), "-o", str(report))

    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "keep me"
    assert not report.is_symlink() and json.loads(report.read_text())["schema_version"] >= 1
    assert planted.is_symlink()  # not opened, not replaced
    assert sorted(path.name for path in out.iterdir()) == [".report.json.partial", "report.json", "victim.txt"]


def test_write_file_replaces_a_link_and_names_what_it_cannot_write(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "report.md"
    link.symlink_to(elsewhere)  # a link to a folder: replaced by the file, the folder untouched

    write_file(link, b"# report\n")

    assert link.read_bytes() == b"# report\n" and not link.is_symlink() and elsewhere.is_dir()
    assert (link.stat().st_mode & 0o777) == 0o666 & ~_umask()
    with pytest.raises(BadInput, match=r"^cannot write .*/missing/r\.md: No such file or directory$"):
        write_file(tmp_path / "missing" / "r.md", b"x")
    with pytest.raises(BadInput, match=r"^cannot write .*/elsewhere: Is a directory$"):
        write_file(elsewhere, b"x")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["elsewhere", "report.md"]  # no temporary left


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_safe_and_plain_text_leave_no_control_character() -> None:
    shown = safe_text(HOSTILE + "\x00")
    assert not any(char in shown for char in RAW_CONTROLS)
    assert shown == "\\x07\\u202e\\[x]\\[/]\\[bold]\\x00"  # the OSC title and the clear are gone, the rest spelled
    assert plain_text("a\x1b[31mred\x1b[0m\tb\nc\x1b") == "ared\tb\nc\\x1b"


# --- every printed value through safe_text ------------------------------------------------------------

CORE = Path(__file__).resolve().parent.parent / "afterburn_core"
#: Calls that draw text on the terminal; their arguments are checked.
_DRAWING_CALLS = {"print", "add_row", "add_task", "echo", "Table"}
#: Helpers whose result is made of formatted numbers only (checked by reading them: terminal._shift).
_NUMBER_HELPERS = {"_shift"}


def _is_safe(node: ast.AST, safe_names: frozenset[str] = frozenset()) -> bool:
    """Whether an expression printed on the terminal can only hold text we wrote or ``safe_text`` made."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_is_safe(part, safe_names) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        # A format spec (:.1f, :,) formats a number; a constant's capitalised dict lookup picks our own style.
        return node.format_spec is not None or _is_safe(node.value, safe_names) or (
            isinstance(node.value, ast.Subscript) and isinstance(node.value.value, ast.Name)
            and node.value.value.id.isupper())
    if isinstance(node, ast.IfExp):
        return _is_safe(node.body, safe_names) and _is_safe(node.orelse, safe_names)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict):  # {True: "yes", ...}[flag]
        return all(_is_safe(value, safe_names) for value in node.value.values)
    if isinstance(node, ast.Starred):
        return _is_safe(node.value, safe_names)
    if isinstance(node, ast.GeneratorExp):
        return _is_safe(node.elt, safe_names)
    if isinstance(node, ast.Name):
        # A rich Table (its cells are checked where they are added), or a name only ever given safe values.
        return node.id == "table" or node.id in safe_names
    if isinstance(node, ast.Call):
        function = node.func
        name = function.id if isinstance(function, ast.Name) else ast.unparse(function)
        # json.dumps escapes every control character (ensure_ascii) and rich never reads what click echoes.
        return name in ("safe_text", "json.dumps", *_NUMBER_HELPERS)
    return False


def _safe_names(tree: ast.AST) -> frozenset[str]:
    """Names every assignment of which in ``tree`` gives a safe value (found by growing the set to a fixpoint)."""
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned.setdefault(node.targets[0].id, []).append(node.value)
    safe: frozenset[str] = frozenset()
    while True:
        grown = frozenset(name for name, values in assigned.items() if all(_is_safe(v, safe) for v in values))
        if grown == safe:
            return safe
        safe = grown


@pytest.mark.parametrize("module", ["cli.py", "terminal.py"])
def test_every_printed_value_goes_through_safe_text(module: str) -> None:
    unsafe = []
    tree = ast.parse((CORE / module).read_text(encoding="utf-8"))
    safe_names = _safe_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        if name not in _DRAWING_CALLS:
            continue
        values = list(node.args) + [keyword.value for keyword in node.keywords if keyword.arg in ("title", "message")]
        unsafe += [f"{module}:{value.lineno}: {ast.unparse(value)}" for value in values if not _is_safe(value, safe_names)]
    assert unsafe == []
