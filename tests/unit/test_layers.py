"""Import rules over rov_router/ (an ``ast`` walk, nothing imported): the layers of the flow
``wire -> session -> payload update -> store -> revalidation -> RIB/policy -> outputs``.

* no import cycle between modules (lazy imports inside functions count too; imports under
  ``if TYPE_CHECKING:`` do not);
* ``rtr/`` and ``rpki/`` import nothing of the layers above them;
* ``rtr/`` reaches the store only through the payload seam (``rpki.payload``), never the
  concrete store (``rpki.store``, which loads pytricia); ``rpki.payload`` imports nothing;
* ``bgp/`` (sessions and the ExaBGP codec) imports nothing of ``rtr/`` or ``rpki/``;
* ``ops/`` and ``ui/`` read the router only through the status view (``rov_router.status``);
* no test module imports another test module (shared helpers live in ``tests/support``).

A violation fails unless ``KNOWN`` lists it (with the change that removes it); a listed one
that has gone only warns, so the entry can then be deleted.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

from tests.support.env import REPO

PKG = REPO / "rov_router"

#: lower layers and what they must not import
LOWER = ("rov_router.rtr", "rov_router.rpki")
UPPER = (
    "rov_router.app",
    "rov_router.bgp",
    "rov_router.cli",
    "rov_router.commands",
    "rov_router.lab",
    "rov_router.ops",
    "rov_router.router",
    "rov_router.status",
    "rov_router.ui",
    "rov_router.web",
)
#: what ops/ and ui/ may import of rov_router besides their own package
OUTPUT_ALLOWED = ("rov_router.status",)

#: (importer, imported) allowed for now, each with the change that removes it; a listed one
#: that has gone only warns.  Empty: the commands split, the status view and the route model
#: removed the cycle and the crossings these rules found when they were written.
KNOWN: dict[str, set[tuple[str, ...]]] = {}


def _name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, level: int, importer: str, is_pkg: bool) -> str:
    if not level:
        return mod
    base = importer.split(".") if is_pkg else importer.split(".")[:-1]
    base = base[: len(base) - level + 1]
    return ".".join(base + ([mod] if mod else []))


def _imports(tree: ast.AST, name: str, is_pkg: bool, files: dict[str, Path]) -> set[str]:
    out: set[str] = set()
    todo = [tree]
    while todo:
        for ch in ast.iter_child_nodes(todo.pop()):
            if isinstance(ch, ast.If) and "TYPE_CHECKING" in ast.unparse(ch.test):
                continue
            if isinstance(ch, ast.Import):
                out.update(a.name for a in ch.names)
            elif isinstance(ch, ast.ImportFrom):
                m = _resolve(ch.module or "", ch.level, name, is_pkg)
                for a in ch.names:
                    sub = f"{m}.{a.name}"
                    out.add(sub if sub in files else m)
            todo.append(ch)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the modules of the same top-level package it imports."""
    top = root.name
    files = {_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        out = _imports(tree, name, path.name == "__init__.py", files)
        graph[name] = {
            m for m in out if (m == top or m.startswith(top + ".")) and m in files and m != name
        }
    return graph


def _under(mod: str, prefixes: tuple[str, ...]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PKG)


def _check(rule: str, found: set[tuple[str, ...]]) -> None:
    known = KNOWN.get(rule, set())
    new = found - known
    assert not new, f"forbidden imports ({rule}): " + ", ".join(" -> ".join(t) for t in sorted(new))
    stale = known - found
    if stale:
        warnings.warn(
            f"tests/unit/test_layers.py KNOWN[{rule!r}] lists imports that are gone: "
            + ", ".join(" -> ".join(t) for t in sorted(stale)),
            stacklevel=2,
        )


def test_the_graph_sees_relative_lazy_and_package_imports(graph):
    assert "rov_router.rtr.pdu" in graph["rov_router.rtr.session"]  # from . import pdu as P
    assert "rov_router.rtr.transport.tls" in graph["rov_router.rtr.transport.connect"]  # lazy
    assert "rov_router.rtr.transport.options" in graph["rov_router.config"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle(graph):
    _check("cycle", {tuple(comp) for comp in _cycles(graph)})


def test_rtr_and_rpki_import_nothing_above_them(graph):
    found = {
        (a, b) for a, deps in graph.items() if _under(a, LOWER) for b in deps if _under(b, UPPER)
    }
    _check("lower", found)


def test_rtr_talks_to_the_store_only_through_the_payload_seam(graph):
    found = {
        (a, b)
        for a, deps in graph.items()
        if _under(a, ("rov_router.rtr",))
        for b in deps
        if b == "rov_router.rpki.store"
    }
    found |= {("rov_router.rpki.payload", b) for b in graph["rov_router.rpki.payload"]}
    _check("payload", found)


def test_bgp_imports_nothing_of_rtr_or_rpki(graph):
    found = {
        (a, b)
        for a, deps in graph.items()
        if _under(a, ("rov_router.bgp",))
        for b in deps
        if _under(b, LOWER)
    }
    _check("bgp", found)


def test_ops_and_ui_read_only_the_status_view(graph):
    found = set()
    for a, deps in graph.items():
        for pkg in ("rov_router.ops", "rov_router.ui"):
            if _under(a, (pkg,)):
                found |= {
                    (a, b)
                    for b in deps
                    if not _under(b, (pkg, *OUTPUT_ALLOWED)) and b != "rov_router"
                }
    _check("output", found)


def test_no_test_module_imports_another_test_module():
    tests = REPO / "tests"
    graph = import_graph(tests)
    found = {
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if b.rsplit(".", 1)[-1].startswith("test_") or b.rsplit(".", 1)[-1] == "conftest"
    }
    assert not found, ", ".join(f"{a} -> {b}" for a, b in sorted(found))
