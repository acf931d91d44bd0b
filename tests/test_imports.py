"""No import cycle anywhere in the project: the layer contracts (.importlinter) see only imports between layers,
so a circle inside a package (or through a function-level import) needs its own check. grimp (import-linter's
graph) reads every import statement, function-level ones included; imports only for type checkers are left out."""
from __future__ import annotations

import sys
from pathlib import Path

import grimp

from conftest import ROOT

PACKAGES = ("gpu_slicing", "components", "tools", "policy")


def cycles(*packages: str, path: Path = ROOT) -> list[list[str]]:
    """The import circles among the modules of `packages`: each strongly connected component of more than one
    module (or a module importing itself), sorted."""
    sys.path.insert(0, str(path))
    try:
        graph = grimp.build_graph(*packages, cache_dir=None, exclude_type_checking_imports=True)
    finally:
        sys.path.remove(str(path))
    edges = {m: graph.find_modules_directly_imported_by(m) & graph.modules for m in graph.modules}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in edges[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for m in sorted(edges):
        if m not in order:
            visit(m)
    return sorted(found)


def test_no_import_cycle():
    assert cycles(*PACKAGES) == []


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / "circle_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b, d\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("import circle_probe.a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    assert cycles("circle_probe", path=tmp_path) == [["circle_probe.a", "circle_probe.b", "circle_probe.c"]]
