"""The metric names polytrigger's code emits, read from its source: what an alarm or the dashboard may name.

Every metric goes through polytrigger/observability.py: Powertools' ``metrics.add_metric`` (its one
default dimension, ``service``) directly or through ``count`` and ``record_problem``, or through
``count_by_route``, which adds the ``route`` dimension (its own EMF document, with ``service`` too).
The calls are read with ``ast``, so a name is found however the call is laid out. A name that is
not a literal must be one of ``DYNAMIC``: a new kind of computed name fails here, naming the call,
until it is taught (a guess would let a dashboard name a metric nothing emits).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from polytrigger.core.outcomes import STATUSES
from polytrigger.core.triggers import RUN_ENDINGS

from .cfn import ROOT

PACKAGE = ROOT / "functions" / "polytrigger"
OBSERVABILITY = PACKAGE / "observability.py"
# The run outcomes: runs/telling.py counts f"run_{event.status}" for a settled ending, which is
# terminal (runs/endings.py: TERMINAL = RUN_ENDINGS).
RUN_METRICS = frozenset(f"run_{ending}" for ending in RUN_ENDINGS)
# Names computed in the code (ast.unparse of the expression) and the names they take.
DYNAMIC: dict[str, frozenset[str]] = {
    "outcome.status": frozenset(STATUSES),  # observability.record_outcome: one metric per outcome status
    "f'run_{event.status}'": RUN_METRICS,
}
# observability's own helpers hand on their caller's name (collected at the caller): the expression
# each passes as the name, by helper.
FORWARDED = {"count": "name", "count_by_route": "name", "record_problem": "metric or status"}


@dataclass(frozen=True)
class Emitted:
    """Metric names by the dimensions they carry: `service` only, and `service` + `route`."""

    by_service: frozenset[str]
    by_route: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return self.by_service | self.by_route


def _names(node: ast.expr, where: str) -> frozenset[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return frozenset({node.value})
    text = ast.unparse(node)
    assert text in DYNAMIC, f"{where}: a metric named by `{text}`: teach tests/infrastructure/emitted.py DYNAMIC"
    return DYNAMIC[text]


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    for given in call.keywords:
        if given.arg == keyword:
            return given.value
    return call.args[position] if len(call.args) > position else None


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, str]]:
    """Each call with the name of the function it is written in ("" at module level)."""

    def walk(node: ast.AST, inside: str) -> Iterator[tuple[ast.Call, str]]:
        for child in ast.iter_child_nodes(node):
            here = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else inside
            if isinstance(child, ast.Call):
                yield child, inside
            yield from walk(child, here)

    return walk(tree, "")


def _helpers(tree: ast.Module, path: Path) -> set[str]:
    """The names under which the file calls observability's helpers (what it imports from there)."""
    if path == OBSERVABILITY:
        return {"count", "count_by_route", "record_problem"}
    return {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "polytrigger.observability"
        for alias in node.names
        if alias.name in ("count", "count_by_route", "record_problem")
    }


def _metric_calls(path: Path) -> Iterator[tuple[str, ast.expr, str]]:
    """(dimensions, the name's expression, where) of each metric the file emits; "service" or "route"."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    helpers = _helpers(tree, path)
    for call, inside in _calls(tree):
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        function = call.func
        forwards = path == OBSERVABILITY and inside in FORWARDED
        if isinstance(function, ast.Attribute) and function.attr == "add_metric":
            name = _argument(call, 0, "name")
            assert name is not None, f"{where}: add_metric without a name"
            if not (forwards and ast.unparse(name) == FORWARDED[inside]):
                yield "service", name, where
        elif isinstance(function, ast.Name) and function.id == "single_metric":
            name = _argument(call, 0, "name")
            forwarded = forwards and name is not None and ast.unparse(name) == FORWARDED[inside]
            assert forwarded, f"{where}: single_metric outside count_by_route: teach tests/infrastructure/emitted.py"
        elif isinstance(function, ast.Name) and function.id in helpers & {"count", "count_by_route"}:
            name = _argument(call, 0, "name")
            assert name is not None, f"{where}: {function.id} without a name"
            yield ("route" if function.id == "count_by_route" else "service"), name, where
        elif isinstance(function, ast.Name) and function.id in helpers & {"record_problem"}:
            name = _argument(call, 2, "metric") or _argument(call, 1, "status")
            assert name is not None, f"{where}: record_problem without a status"
            yield "service", name, where


def emitted_metrics() -> Emitted:
    """Every metric name the package emits, by the dimensions it carries."""
    by: dict[str, set[str]] = {"service": set(), "route": set()}
    for path in sorted(PACKAGE.rglob("*.py")):
        for dimensions, name, where in _metric_calls(path):
            by[dimensions] |= _names(name, where)
    return Emitted(frozenset(by["service"]), frozenset(by["route"]))
