"""The shipped package's shape: layers that import only downwards, no circles, small modules and classes.

Read from the source with `ast` (every import counts, also those inside functions or under
TYPE_CHECKING), so a change that breaks the shape fails here, not in a review.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "polytrigger"
# Lowest first: a module may import from its own layer and from lower ones only. Handlers and tools
# share a rank and must not import each other; the package root (`polytrigger`, its version) is
# rank 0 too, and `python -m polytrigger` (`__main__`) sits on top of everything.
LAYERS = {
    "core": 0,
    "events": 1,
    "routing": 2,
    "dispatch": 3,
    "wiring": 3,
    "runs": 3,
    "adapters": 4,
    "runtime": 5,
    "handlers": 6,
    "tools": 6,
}
# What the pure layers may import besides the standard library and polytrigger itself.
PURE = {"core": set(), "dispatch": set(), "wiring": set(), "runs": set(), "routing": {"yaml"}}
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200
MAX_ROOT_MODULES = 6


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, absolute, as written (`from a import b` counts `a` and `a.b`)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {other for other in imports(name, path) if other in known and other != name}
        for name, path in known.items()
    }


ENTRY = "polytrigger.__main__"


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(module: str) -> int:
    return max(LAYERS.values()) + 1 if module == ENTRY else LAYERS.get(layer(module), 0)


def test_every_subpackage_is_a_known_layer() -> None:
    subpackages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert subpackages == set(LAYERS)


def test_imports_only_point_down() -> None:
    upward = [
        f"{importer} -> {imported}"
        for importer, targets in graph().items()
        for imported in targets
        if layer(importer) != layer(imported) and rank(imported) >= rank(importer) and layer(imported)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


@pytest.mark.parametrize("pure", sorted(PURE))
def test_the_pure_layers_import_no_library(pure: str) -> None:
    libraries = {
        f"{name}: {imported}"
        for name, path in modules().items()
        if layer(name) == pure
        for imported in imports(name, path)
        if imported.split(".")[0] not in {"polytrigger", "__future__", *sys.stdlib_module_names, *PURE[pure]}
    }
    assert libraries == set()


def test_no_module_is_too_long() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_class_is_too_long() -> None:
    long: dict[str, int] = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long[f"{name}.{node.name}"] = lines
    assert long == {}


def test_few_modules_stay_in_the_package_root() -> None:
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_the_checks_see_an_upward_import(tmp_path: Path) -> None:
    """The import reader itself: relative and absolute forms, inside functions too."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from polytrigger.runtime import app\nfrom ..adapters import dedup\nimport json\n")
    assert imports("polytrigger.dispatch.mod", source) == {
        "polytrigger.runtime",
        "polytrigger.runtime.app",
        "polytrigger.adapters",
        "polytrigger.adapters.dedup",
        "json",
    }
