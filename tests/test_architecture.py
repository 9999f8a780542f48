"""The package's shape: no import cycles (deferred imports included), no module over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "skdim"
MAX_LINES = 500
#: The layers of docs/architecture.rst, lowest first; a module imports only from
#: its own layer or lower ones. Modules not listed are estimators.
LAYERS = {
    "featurize": {
        "skdim._version",
        "skdim._elements",
        "skdim._cell",
        "skdim._primitive",
        "skdim._supercell",
        "skdim._pairs",
        "skdim._featurize_settings",
        "skdim._parallel",
        "skdim._counter",
        "skdim._structure_files",
        "skdim.featurize",
        "skdim.datasets",
        "skdim.overlap",
    },
    "data": {"skdim.data", "skdim._inputs", "skdim._shards", "skdim.store"},
    "nn": {"skdim.nn"},  # and its submodules
    "estimators": set(),
    "cli": {"skdim.cli", "skdim._cli_support", "skdim.__main__"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(module: str, path: Path) -> set[str]:
    """The skdim modules ``module`` imports anywhere in its source (functions too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


def import_graph() -> dict[str, set[str]]:
    return {module: imported(module, path) for module, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_sees_deferred_and_relative_imports():
    graph = import_graph()
    assert "skdim.featurize" in graph["skdim.data"]  # at the top
    assert "skdim.store" in graph["skdim.cli"]  # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_over_500_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"split these modules (over {MAX_LINES} lines): {too_long}"


def layer(module: str) -> int:
    names = list(LAYERS)
    for index, name in enumerate(names):
        if module in LAYERS[name] or (name == "nn" and module.startswith("skdim.nn.")):
            return index
    return names.index("estimators")


def test_layers_import_only_downwards():
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if layer(target) > layer(module)
    ]
    assert upward == [], "see docs/architecture.rst"
    assert all(name in MODULES for names in LAYERS.values() for name in names)
