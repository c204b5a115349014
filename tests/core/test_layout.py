"""The floor plan, held to its promises: one error contract, one import path per name, arrows
pointing down, and the top level kept to the shared vocabulary (``docs/design.rst``)."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

import xcalving
from xcalving import errors

PACKAGE = Path(xcalving.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
#: Builtin exceptions (not BaseException-only signals such as KeyboardInterrupt).
BUILTIN_ERRORS = {name for name in dir(builtins) if isinstance(getattr(builtins, name), type)
                  and issubclass(getattr(builtins, name), Exception)}
#: The shared vocabulary at the top level (``__init__.py`` aside): at most 15 modules.
TOP_LEVEL = {"_progress", "accessor", "atomic", "bands", "budget", "errors", "grid", "metrics",
             "plot", "runtime", "safety", "scaling", "testing", "windows", "zones"}
WINGS = {"adapt", "cli", "data", "inference", "io", "model", "train", "vector"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _bare_raises(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    inside = {id(n): f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
              for n in ast.walk(f)}  # the innermost function wins: ast.walk goes outside in
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if not isinstance(exc, ast.Name) or exc.id not in BUILTIN_ERRORS:
            continue
        if exc.id == "AttributeError" and inside.get(id(node)) == "__getattr__":  # the protocol
            continue
        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: raise {exc.id}")
    return found


def _passed_around(path: Path) -> list[str]:
    """Builtin error classes used as values (``error = FileNotFoundError``, then raised)."""
    tree = ast.parse(path.read_text())
    allowed: set[int] = set()
    for node in ast.walk(tree):
        spots: list[ast.AST] = []
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            spots = [node.type]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr",
                                                                            "")) in _CATCHERS:
            spots = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.keyword) and node.arg in ("catch", "keep_on"):
            spots = [node.value]
        elif isinstance(node, ast.ClassDef):
            spots = list(node.bases)
        elif isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            spots = [node.annotation]
        allowed.update(id(n) for spot in spots for n in ast.walk(spot))
    return [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.id} as a value"
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id in BUILTIN_ERRORS - {"Exception"}
            and not issubclass(getattr(builtins, node.id), Warning)
            and isinstance(node.ctx, ast.Load) and id(node) not in allowed
            and not (node.id == "AttributeError" and path.name == "__init__.py")]


_CATCHERS = ("isinstance", "issubclass", "suppress", "raises")


def test_every_raise_is_an_xcalving_error():
    bare = [line for path in SOURCES for line in [*_bare_raises(path), *_passed_around(path)]]
    assert not bare, ("raise an XcalvingError subclass that also subclasses the builtin "
                      "(xcalving.errors), not a bare builtin:\n" + "\n".join(bare))


def test_every_error_subclasses_a_builtin_a_caller_catches():
    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.XcalvingError) and \
                cls is not errors.XcalvingError:
            assert any(issubclass(cls, getattr(builtins, b)) for b in BUILTIN_ERRORS
                       if b != "Exception"), name


def test_a_missing_optional_dependency_names_its_extra():
    with pytest.raises(ImportError, match=r"pip install 'xcalving\[tune\]'") as info:
        errors.require("no_such_module_xcalving", extra="tune", what="xcalving tune")
    assert isinstance(info.value, errors.XcalvingError)


def test_the_top_level_holds_the_vocabulary_and_the_wings():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules <= TOP_LEVEL and len(modules) <= 15, sorted(modules - TOP_LEVEL)
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == WINGS


def _imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module, names, at module level) of every ``xcalving`` import in ``path``."""
    tree = ast.parse(path.read_text())
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
              for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xcalving"):
            found.append((node.module, [a.name for a in node.names], id(node) not in nested))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SOURCES}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for module, names, _ in _imports(path):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            for target in subs or [module]:
                if target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_compatibility_reexports():
    """A name is imported from the module that defines it, or from a wing's ``__init__``."""
    for path in SOURCES:
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xcalving"):
                aliased = [a.name for a in node.names if a.asname == a.name]
                assert not aliased, f"{path}: re-export of {aliased}"


#: Why an import sits inside a function rather than at module level.
_WHY = re.compile(r"#\s*(heavy|cycle|optional|choice):")


def _unexplained_local_imports(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    found = {node for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
             for node in ast.walk(f) if isinstance(node, ast.Import | ast.ImportFrom)}
    return [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
            for node in sorted(found, key=lambda n: n.lineno)
            if not any(_WHY.search(line) for line in lines[node.lineno - 2:node.end_lineno])]


def test_imports_sit_at_module_level_or_say_why():
    """Imports sit at module level. One inside a function says why in a comment on its own
    line(s) or on the line just before, starting with one of four tags:

    - ``heavy:`` it loads a package (or an xcalving module that loads one) that importing this
      module does not load, such as torch, matplotlib, geopandas, shapely, dask, rioxarray
      (``import xcalving`` stays light);
    - ``cycle:`` at module level it would close an import cycle;
    - ``optional:`` the package may be missing, and the function handles the ImportError;
    - ``choice:`` which module to import is decided at call time.
    """
    bare = [line for path in SOURCES for line in _unexplained_local_imports(path)]
    assert not bare, "import at module level, or say why not (heavy:, cycle:, optional:, " \
                     "choice:):\n" + "\n".join(bare)
