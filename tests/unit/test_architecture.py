"""The shipped package's shape: layers that import only downwards, no circles, one flow per entry point,
one name per module, libraries only in the adapters, and small modules and classes.

Read from the source with `ast` (every import counts, also those inside functions or under
TYPE_CHECKING), so a change that breaks the shape fails here, not in a review.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "polytrigger"
# Lowest first: a module may import from its own layer and from lower ones only; layers of one rank
# must not import each other. A layer is a subpackage, or a module of the package root.
LAYERS = {
    "polytrigger": 0,  # the package itself: its version
    "gc_pause": 0,
    "core": 0,
    "settings": 1,
    "observability": 1,
    "events": 1,
    "routing": 1,
    "polytomic": 2,
    "dispatch": 3,
    "route_wiring": 3,
    "runs": 4,
    "gating": 4,
    "reconciliation": 4,
    "deadlines": 5,
    "flows": 6,
    "bootstrap": 7,
    "handlers": 8,
    "tools": 8,
    "__main__": 9,
}
SUBPACKAGES = {
    "core",
    "events",
    "routing",
    "polytomic",
    "dispatch",
    "route_wiring",
    "runs",
    "gating",
    "reconciliation",
    "deadlines",
    "flows",
    "handlers",
    "tools",
}
# The modules that talk to the world through a library (boto3, botocore, urllib3, Powertools' persistence).
ADAPTERS = {
    "polytrigger.polytomic.client",
    "polytrigger.polytomic.credentials",
    "polytrigger.dispatch.dedup",
    "polytrigger.dispatch.windows",
    "polytrigger.dispatch.queue",
    "polytrigger.runs.dynamo_ledger",
    "polytrigger.runs.promises",
    "polytrigger.runs.joins",
    "polytrigger.runs.bus",
    "polytrigger.dispatch.holds",
    "polytrigger.dispatch.landings",
    "polytrigger.gating.requests",
    "polytrigger.gating.objects",
    "polytrigger.reconciliation.listing",
    "polytrigger.reconciliation.cursor",
    "polytrigger.deadlines.book",
    "polytrigger.tools.fate",
    "polytrigger.tools.status",
    "polytrigger.tools.routes_source",
    "polytrigger.route_wiring.aws",
    "polytrigger.route_wiring.cloudformation",
}
# What every other module of these layers may import besides the standard library and polytrigger itself.
PURE = {
    "core": (),
    "routing": ("yaml",),
    "events": ("aws_lambda_powertools.utilities.data_classes",),
    "polytomic": (),
    "dispatch": (),
    "route_wiring": (),
    "runs": (),
    "gating": (),
    "reconciliation": (),
    "deadlines": (),
    "flows": ("aws_lambda_powertools.utilities.typing",),
}
# Each entry point, the role `bootstrap` builds for it, and the one flow module that tells its story.
ENTRY_POINTS = {
    "s3": ("triggers", "on_triggers"),
    "schedule": ("triggers", "on_triggers"),
    "dispatcher": ("dispatcher", "on_dispatch_message"),
    "webhook": ("webhook", "on_webhook_delivery"),
    "poller": ("poller", "on_poll"),
    "reconciler": ("reconciler", "on_reconcile"),
    "route_wiring": ("route_wiring", "on_wiring_request"),
}
# The layers a handler may import: it reads its event and answers; everything else goes through its flow.
HANDLER_IMPORTS = {"polytrigger", "bootstrap", "core", "events", "observability", "handlers"}
# Modules under MIN_MODULE_LINES, each for a reason of its own (never to keep another module short).
SMALL = {
    "polytrigger.__main__": "`python -m polytrigger`",
    "polytrigger.events.groups": "how the functions group an event's triggers: explain and redrive ask it too",
    "polytrigger.handlers.s3": "an entry point",
    "polytrigger.handlers.schedule": "an entry point",
    "polytrigger.handlers.webhook": "an entry point",
    "polytrigger.handlers.poller": "an entry point",
    "polytrigger.handlers.reconciler": "an entry point",
    "polytrigger.handlers.route_wiring": "an entry point",
}
MAX_MODULE_LINES = 400
MIN_MODULE_LINES = 30
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


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def rank(module: str) -> int:
    return LAYERS[layer(module)]


def test_every_subpackage_and_root_module_is_a_known_layer() -> None:
    subpackages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert subpackages == SUBPACKAGES
    assert {layer(name) for name in modules()} == set(LAYERS)


def test_imports_only_point_down() -> None:
    upward = [
        f"{importer} -> {imported}"
        for importer, targets in graph().items()
        for imported in targets
        if layer(importer) != layer(imported) and rank(imported) >= rank(importer)
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
def test_only_the_adapters_import_a_library(pure: str) -> None:
    allowed = PURE[pure]
    libraries = {
        f"{name}: {imported}"
        for name, path in modules().items()
        if layer(name) == pure and name not in ADAPTERS
        for imported in imports(name, path)
        if imported.split(".")[0] not in {"polytrigger", "__future__", *sys.stdlib_module_names}
        and not imported.startswith(allowed)
    }
    assert libraries == set()


def test_every_adapter_is_a_module_that_exists() -> None:
    assert set(modules()) >= ADAPTERS


def test_no_two_modules_share_a_file_name() -> None:
    names = Counter(path.name for path in modules().values() if path.name != "__init__.py")
    assert {name: count for name, count in names.items() if count > 1} == {}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_each_entry_point_reaches_the_world_through_its_one_flow(entry: str) -> None:
    """The handler imports no feature or adapter; it calls its bootstrap role, whose flow is its one story."""
    role, flow = ENTRY_POINTS[entry]
    name = f"polytrigger.handlers.{entry}"
    handler = modules()[name]
    reached = {other for other in graph()[name] if layer(other) not in HANDLER_IMPORTS}
    assert reached == set(), f"{name} imports {sorted(reached)}: only its flow may"
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(handler.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "bootstrap"
    }
    assert calls == {role}
    built = next(
        node
        for node in ast.parse(modules()["polytrigger.bootstrap"].read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name == role
    )
    assert isinstance(built.returns, ast.Name | ast.Constant)
    returned = built.returns.id if isinstance(built.returns, ast.Name) else str(built.returns.value)
    assert f"polytrigger.flows.{flow}.{returned}" in imports(
        "polytrigger.bootstrap", modules()["polytrigger.bootstrap"]
    )


def test_a_flow_never_imports_another_flow() -> None:
    crossing = [
        f"{importer} -> {imported}"
        for importer, targets in graph().items()
        if layer(importer) == "flows"
        for imported in targets
        if layer(imported) == "flows" and imported != "polytrigger.flows"
    ]
    assert crossing == []


def test_no_module_is_too_long() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_a_small_module_is_small_for_a_reason() -> None:
    small = {
        name
        for name, path in modules().items()
        if path.name != "__init__.py" and len(path.read_text().splitlines()) < MIN_MODULE_LINES
    }
    assert small == set(SMALL), "a module under 30 lines: merge it where its meaning is, or say in SMALL why it stands"


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


def test_every_package_says_what_it_holds() -> None:
    silent = [
        name
        for name, path in modules().items()
        if path.name == "__init__.py" and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert silent == []


def test_the_checks_see_an_upward_import(tmp_path: Path) -> None:
    """The import reader itself: relative and absolute forms, inside functions too."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from polytrigger.flows import on_poll\nfrom ..runs import ledger\nimport json\n")
    assert imports("polytrigger.dispatch.mod", source) == {
        "polytrigger.flows",
        "polytrigger.flows.on_poll",
        "polytrigger.runs",
        "polytrigger.runs.ledger",
        "json",
    }
