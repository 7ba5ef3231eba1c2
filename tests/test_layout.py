"""The package's modules depend on each other one way: no import cycle, however deep the import.

Every ``import`` statement counts, at module level, inside functions and under ``TYPE_CHECKING``:
an import moved into a function still ties the two modules together, it only hides the cycle
until the function runs. Importing ``a.b`` runs ``a/__init__.py`` first, but that edge is not
counted: a package that re-exports its submodules would otherwise be a cycle with each of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import videogen

PACKAGE_ROOT = Path(videogen.__file__).parent


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package in ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that the import statements anywhere in ``path`` name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: "from . import x", "from ..a import b"
                anchor = package.split(".")[: package.count(".") + 2 - node.level]
                base = ".".join([*anchor, base] if base else anchor)
            # "from a import b" imports the module a.b when there is one, else a name of a
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # "import a.b.name" of a function: module a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through each group of modules that import each other."""
    cycles = []
    for group in _strongly_connected(graph):
        if len(group) > 1:
            cycles.append(_cycle_within(graph, set(group)))
    return cycles


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's groups, iteratively (no recursion limit on a deep package)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _cycle_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest way from the group's first module back to itself (breadth first)."""
    start = min(group)
    paths = {child: [start, child] for child in sorted(graph[start] & group)}
    frontier = list(paths)
    while start not in paths:
        node = frontier.pop(0)
        for child in sorted(graph[node] & group):
            if child not in paths:
                paths[child] = [*paths[node], child]
                frontier.append(child)
    return paths[start]


def test_no_import_cycle() -> None:
    cycles = import_cycles(import_graph(PACKAGE_ROOT))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    """The check itself: the shape of the old convert/sv3d <-> loading cycle is found."""
    package = tmp_path / "pkg"
    (package / "convert").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "convert" / "__init__.py").write_text("from pkg.convert.sv3d import convert\n")
    (package / "convert" / "sv3d.py").write_text("def convert():\n    from pkg.loading import locate\n")
    (package / "loading.py").write_text("def locate():\n    from .convert import sv3d\n")
    (package / "other.py").write_text("import pkg.loading\n")
    assert import_cycles(import_graph(package)) == [["pkg.convert.sv3d", "pkg.loading", "pkg.convert.sv3d"]]
