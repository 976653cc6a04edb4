"""`polytrigger validate ROUTES`: check a routes file on its own and summarise what it wires; writes nothing.

The file is read as YAML every time (never from the build's `routes.validated.json`), validated as a
whole exactly as the functions and the build do it, and either summarised (routes, buckets, schedules,
syncs) or refused with every problem, one per line (exit code 1).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from polytrigger.core.actions import SYNC_TYPES
from polytrigger.routing.load import read_routes
from polytrigger.routing.parse import RoutesError


@dataclass(frozen=True, slots=True)
class Report:
    """A routes file's verdict: its problems (none when valid) and, when valid, what it names."""

    source: str
    problems: list[str] = field(default_factory=list)
    routes: int = 0
    buckets: list[str] = field(default_factory=list)  # sorted
    schedules: list[str] = field(default_factory=list)  # sorted
    syncs: dict[str, int] = field(default_factory=dict)  # distinct syncs by type (model, bulk)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def sync_count(self) -> int:
        return sum(self.syncs.values())


def validate(path: str | Path) -> Report:
    """Validate the routes file at `path`: every problem, or a summary of what it names."""
    source = str(path)
    try:
        _, _, routes = read_routes(path)
    except RoutesError as error:
        return Report(source=source, problems=list(error.problems))
    distinct = {(sync.type, sync.id) for route in routes.routes for sync in route.syncs}
    return Report(
        source=source,
        routes=len(routes),
        buckets=sorted({route.bucket for route in routes.routes if route.bucket}),
        schedules=sorted({route.schedule for route in routes.routes if route.schedule}),
        syncs={kind: n for kind in SYNC_TYPES if (n := sum(1 for sync_type, _ in distinct if sync_type == kind))},
    )


def render(report: Report) -> str:
    if not report.ok:
        count = len(report.problems)
        heading = f"{report.source} is invalid ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([heading, *(f"  - {problem}" for problem in report.problems)])
    by_type = ", ".join(f"{n} {kind}" for kind, n in report.syncs.items())
    return (
        f"{report.source}: {_count(report.routes, 'route')}, {_named(report.buckets, 'bucket')},"
        f" {_named(report.schedules, 'schedule')}, {_count(report.sync_count, 'sync')} ({by_type})"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _named(names: list[str], noun: str) -> str:
    return _count(len(names), noun) + (f" ({', '.join(names)})" if names else "")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `validate ROUTES` to the `polytrigger` command line (dispatch with `run`)."""
    command = commands.add_parser(
        "validate",
        help="check a routes file and summarise its routes, buckets, schedules and syncs (writes nothing)",
        description=__doc__,
    )
    command.add_argument("routes", metavar="ROUTES", help="the routes file (YAML or JSON)")


def run(args: argparse.Namespace) -> int:
    """0 and the summary on stdout when the file is valid; 1 and every problem on stderr when it is not."""
    report = validate(args.routes)
    print(render(report), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1
