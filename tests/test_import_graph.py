"""The package's import graph: no import circles, and no private names taken across modules.

Every module of ``src/augsens`` is parsed with :mod:`ast` (nothing is imported), and every ``import`` and
``from ... import`` it holds is an edge, wherever it stands: at module level, inside a function or under
``if TYPE_CHECKING:``.  A deferred import only hides a circle until the first call, and an annotation-only
one still means that neither module can be read, tested or moved without the other.

An edge goes to the module named (relative names resolved against the importing module's package); a
``from pkg import name`` goes to ``pkg`` and, when ``name`` is a submodule, to ``pkg.name`` too, since
Python runs ``pkg/__init__.py`` before it looks ``name`` up.  The circles are the strongly connected
components of that graph with more than one module (or a module importing itself), found with
Tarjan's algorithm.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "augsens"


@dataclass(frozen=True)
class Import:
    """One import statement: the ``module`` named and, for ``from module import a, b``, the names."""

    module: str
    names: tuple[str, ...]  # empty for ``import module``
    bound: tuple[str, ...]  # the local names the statement binds (``as`` names where given)
    line: int


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` (the folder holding the package): dotted name -> file."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imports_of(name: str, path: Path) -> list[Import]:
    """The imports of module ``name`` (file ``path``), relative ones resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # the package a relative import starts from: the module itself for a package's __init__
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                Import(alias.name, (), (alias.asname or alias.name.partition(".")[0],), node.lineno)
                for alias in node.names
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = tuple(alias.name for alias in node.names)
            bound = tuple(alias.asname or alias.name for alias in node.names)
            found.append(Import(module, names, bound, node.lineno))
    return found


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """``module -> {imported module of the package: first line}`` for every module of ``package``."""
    files = module_files(root, package)
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        edges: dict[str, int] = {}
        for imp in imports_of(name, path):
            targets = [imp.module] + [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in files]
            for target in targets:
                if target in files and target != name:
                    edges.setdefault(target, imp.line)
        graph[name] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (iterative, so deep graphs need no recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import circles: components of more than one module, and modules importing themselves."""
    return sorted(c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]])


def describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    """One circle as its modules and the edges inside it (``a:12 -> b`` = line 12 of ``a`` imports ``b``)."""
    inside = set(component)
    edges = [f"{a}:{line} -> {b}" for a in component for b, line in sorted(graph[a].items()) if b in inside]
    return " <-> ".join(component) + "\n    " + "\n    ".join(edges)


def private_imports(root: Path, package: str) -> list[str]:
    """``module:line`` for each private name (``_x``, not dunder) one module takes from another module.

    Both ``from augsens.x import _name`` and ``mod._name`` on a module bound by an import count.
    """
    files = module_files(root, package)
    found = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules: dict[str, str] = {}  # local name -> module of the package it is bound to
        for imp in imports_of(name, path):
            if not imp.names:  # ``import a.b`` binds ``a``; ``import a.b as m`` binds ``m`` to ``a.b``
                target = imp.module if imp.bound[0] != imp.module.partition(".")[0] else imp.bound[0]
                if target in files and target != name:
                    modules[imp.bound[0]] = target
                continue
            for n, local in zip(imp.names, imp.bound, strict=True):
                sub = f"{imp.module}.{n}"
                if sub in files:
                    modules[local] = sub
                elif _private(n) and imp.module in files and imp.module != name:
                    found.append(f"{name}:{imp.line} imports {sub}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and _private(node.attr)
                and f"{modules[node.value.id]}.{node.attr}" not in files
            ):
                found.append(f"{name}:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_package_has_no_import_circles() -> None:
    graph = import_graph(SRC, PACKAGE)
    assert len(graph) > 100 and "augsens.core.estimate.sobol" in graph  # the walk saw the whole package
    found = cycles(graph)
    assert not found, f"{len(found)} import circle(s):\n" + "\n".join(describe(c, graph) for c in found)


def test_no_module_takes_a_private_name_from_another() -> None:
    found = private_imports(SRC, PACKAGE)
    assert not found, "private names used across modules:\n" + "\n".join(found)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_finds_circles_through_deferred_relative_and_package_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .a import f\n",
            # a -> b only inside a function: still an edge
            "pkg/a.py": "def f():\n    from pkg import b\n    return b\n",
            # b -> the package (whose __init__ imports a): the circle pkg -> pkg.a -> pkg.b -> pkg
            "pkg/b.py": "from . import c\n",
            "pkg/c.py": "import os\n",
            # d <-> e through relative imports one level up; f <-> h through an annotation-only import
            "pkg/sub/__init__.py": "",
            "pkg/sub/d.py": "from ..sub.e import g\n",
            "pkg/sub/e.py": "from typing import TYPE_CHECKING\nimport pkg.sub.d\ng = 1\n",
            "pkg/sub/f.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.sub.h\n",
            "pkg/sub/h.py": "import pkg.sub.f\nfrom pkg.sub.e import _hidden\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg": 2, "pkg.b": 2}
    assert graph["pkg.b"] == {"pkg": 1, "pkg.c": 1}
    assert graph["pkg.sub.f"] == {"pkg.sub.h": 3}
    assert cycles(graph) == [
        ["pkg", "pkg.a", "pkg.b"],
        ["pkg.sub.d", "pkg.sub.e"],
        ["pkg.sub.f", "pkg.sub.h"],
    ]
    assert "pkg.b:1 -> pkg" in describe(["pkg", "pkg.a", "pkg.b"], graph)
    assert private_imports(tmp_path, "pkg") == ["pkg.sub.h:2 imports pkg.sub.e._hidden"]


def test_the_checker_finds_private_attributes_of_imported_modules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "_x = 1\n__version__ = '1'\n",
            "pkg/b.py": "from pkg import a\nimport pkg.a as m\nprint(a._x, m._x, a.__version__)\n",
        },
    )
    assert private_imports(tmp_path, "pkg") == ["pkg.b:3 uses pkg.a._x", "pkg.b:3 uses pkg.a._x"]
    assert cycles(import_graph(tmp_path, "pkg")) == []


if __name__ == "__main__":  # the circles and private names of the package, for reading
    g = import_graph(SRC, PACKAGE)
    print("\n".join(describe(c, g) for c in cycles(g)) or "no circles")
    print("\n".join(private_imports(SRC, PACKAGE)) or "no private names across modules")
    sys.exit(0)
