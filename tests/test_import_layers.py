"""Dependencies point one way (DESIGN.md): no core module imports a module of a later stage, and no
two modules import each other, directly or round a circle — counting imports inside functions too,
since a lazy import is still a dependency (it only moves the failure to run time)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "afterburn_core"

#: The stages in the order data flows (DESIGN.md, "Dependencies point one way"); a module may import
#: its own layer and earlier ones. Layer 0 is what every stage stands on: records, config, the
#: registry (which names later modules only as "module:attribute" strings), the store, and the demo
#: pair (its paths, and build code that imports nothing else of the core).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "limits", "files", "yaml_input", "serde", "types", "progress", "device", "threads", "config", "analyses", "store", "demo"),
    ("checkpoints",),
    ("weights", "generation"),
    ("behaviour",),
    ("reward_hack",),
    ("internals", "trajectory"),
    ("views",),
    ("reports",),
    ("stages", "runner", "jobs", "api", "terminal", "cli_options", "cli", "__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except what sits under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every ``afterburn_core`` module this file imports when it runs, at any depth of the file."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("afterburn_core"):
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            # "from pkg import submodule" depends on the submodule; "from pkg import name" on pkg.
            found.update(submodules if len(submodules) == len(node.names) else {node.module, *submodules})
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("afterburn_core"))
    return found & modules


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in CORE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        # A module may read its own packages (their __init__ runs first anyway); the root package is
        # only read for __version__, which every layer may print.
        ancestors = {".".join(name.split(".")[:depth]) for depth in range(1, name.count(".") + 1)}
        graph[name] = _imports(path, set(paths)) - ancestors - {name, "afterburn_core"}
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    return len(LAYERS)  # the package root (public API) sits above everything


def test_every_core_module_has_a_layer() -> None:
    unplaced = sorted(name for name in _graph() if name != "afterburn_core" and _layer(name) == len(LAYERS))
    assert unplaced == []


def test_no_core_module_imports_a_later_stage() -> None:
    graph = _graph()
    backwards = sorted(f"{module} → {target}" for module, targets in graph.items() for target in targets
                       if _layer(target) > _layer(module))
    assert backwards == []


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" → ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
