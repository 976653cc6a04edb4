"""`polytrigger validate [ROUTES]`: check a routes file on its own and summarise what it wires; writes nothing.

The file is read as YAML every time (never from the build's `routes.validated.json`), validated as a
whole exactly as the build does it (the routes, and what no deployment could wire), and either
summarised (routes, buckets, schedules, syncs, and what the stack will wire) or refused with every
problem, one per line (exit code 1). `--check-buckets` also asks S3 (with AWS credentials) whether
each bucket sends its events to EventBridge.

A valid file is also read for pauses that fight its routes (`routing.pauses`): the starts a pause holds
are noted in the summary; a pause nothing resumes, a pause longer than a route's `hold`, or an
`activate_first` that ends a pause are warnings, one line each on stderr (exit 0, or 1 with `--strict`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from polytrigger.core.actions import SYNC_TYPES
from polytrigger.route_wiring.deadline_schedules import deadline_schedules
from polytrigger.route_wiring.plan import plan, plan_problems
from polytrigger.route_wiring.reconcile_schedules import schedule_name as reconcile_schedule
from polytrigger.routing.chains import chain_summary
from polytrigger.routing.durations import say
from polytrigger.routing.gates import GATE_AT_RUN_TIME
from polytrigger.routing.load import read_routes
from polytrigger.routing.model import Route
from polytrigger.routing.parse import RoutesError
from polytrigger.routing.pauses import pause_findings
from polytrigger.routing.schedules import ScheduleSpec
from polytrigger.tools.routes_source import RoutesPathError, routes_path


@dataclass(frozen=True, slots=True)
class Report:
    """A routes file's verdict: its problems (none when valid) and, when valid, what it names."""

    source: str
    problems: list[str] = field(default_factory=list)
    routes: int = 0
    buckets: list[str] = field(default_factory=list)  # sorted
    schedules: list[str] = field(default_factory=list)  # sorted
    syncs: dict[str, int] = field(default_factory=dict)  # distinct syncs by type (model, bulk)
    created: list[ScheduleSpec] = field(default_factory=list)  # the schedules the stack creates
    deadlines: list[str] = field(default_factory=list)  # the arrival deadlines' schedules it creates, one line each
    reconciled: list[str] = field(default_factory=list)  # the reconciliation schedules it creates, one line each
    elsewhere: list[str] = field(default_factory=list)  # the schedules routes name but do not define
    chains: list[str] = field(default_factory=list)  # "route R follows sync S: completed, ..."
    gates: list[str] = field(default_factory=list)  # "route R, per partition (date): marker ..., quiet ..."
    held: list[str] = field(default_factory=list)  # notes: the starts a pause holds, until which resume
    warnings: list[str] = field(default_factory=list)  # pauses that fight the routes

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def sync_count(self) -> int:
        return sum(self.syncs.values())


def validate(path: str | Path, *, now: datetime | None = None) -> Report:
    """Validate the routes file at `path`: every problem, or a summary of what it names (its pauses seen
    from `now`, default the clock)."""
    source = str(path)
    try:
        _, _, routes = read_routes(path)
    except RoutesError as error:
        return Report(source=source, problems=list(error.problems))
    problems = plan_problems(routes)
    if problems:
        return Report(source=source, problems=problems)
    wired = plan(routes)
    findings = pause_findings(routes, now or datetime.now(UTC))
    distinct = {(sync.type, sync.id) for route in routes.routes for sync in route.syncs}
    return Report(
        source=source,
        routes=len(routes),
        buckets=list(wired.buckets),  # a gate's listed keys in another bucket: that bucket too
        schedules=sorted({route.schedule for route in routes.routes if route.schedule}),
        syncs={kind: n for kind in SYNC_TYPES if (n := sum(1 for sync_type, _ in distinct if sync_type == kind))},
        created=list(wired.schedules),
        deadlines=[
            f"the stack will create deadline schedule {schedule.name}: {schedule.expression} {schedule.timezone}"
            f" (route {schedule.route}: each miss reported once, metric deadline_missed)"
            for schedule in deadline_schedules(routes)
        ],
        reconciled=[
            f"the stack will create reconciliation schedule {reconcile_schedule(route.name)}: {route.reconcile.rate}"
            f" (route {route.name}: s3://{route.bucket}/{route.key_prefix} {route.reconcile.describe()};"
            " an object found with no event: metric found_by_reconciliation)"
            for route in routes.routes
            if route.reconcile is not None
        ],
        chains=[chain_summary(route) for route in routes.routes if route.followed],
        elsewhere=list(wired.elsewhere),
        gates=[gated(route) for route in routes.routes if route.gate is not None],
        held=[finding.text for finding in findings if not finding.warning],
        warnings=[finding.text for finding in findings if finding.warning],
    )


def gated(route: Route) -> str:
    """`route R, per partition (date): marker exports/dt={date}/_SUCCESS, quiet 10 minutes; timeout 24 hours ...`."""
    gate = route.gate
    assert gate is not None
    names = ", ".join(route.key_pattern.names) if route.key_pattern is not None else ""
    return f"route {route.name}, per partition ({names}): {gate.waits_for()}; timeout {say(gate.timeout)} ({GATE_AT_RUN_TIME})"


def render(report: Report) -> str:
    if not report.ok:
        count = len(report.problems)
        heading = f"{report.source} is invalid ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([heading, *(f"  - {problem}" for problem in report.problems)])
    by_type = ", ".join(f"{n} {kind}" for kind, n in report.syncs.items())
    lines = [
        f"{report.source}: {_count(report.routes, 'route')}, {_named(report.buckets, 'bucket')},"
        f" {_named(report.schedules, 'schedule')}, {_count(report.sync_count, 'sync')} ({by_type})"
    ]
    if report.buckets:
        lines.append(
            f"  the S3 rule will listen to: {', '.join(report.buckets)}"
            " (each needs its EventBridge notifications on: --check-buckets)"
        )
    for spec in report.created:
        window = f", flexible window {spec.flexible_window} min" if spec.flexible_window else ""
        lines.append(f"  the stack will create schedule {spec.name}: {spec.expression} {spec.timezone}{window}")
    lines.extend(f"  {line}" for line in report.deadlines)
    lines.extend(f"  {line}" for line in report.reconciled)
    for name in report.elsewhere:
        lines.append(f"  schedule {name} is made elsewhere: polytrigger does not create it")
    lines.extend(f"  chained: {chain}" for chain in report.chains)
    lines.extend(f"  gated: {gate}" for gate in report.gates)
    lines.extend(f"  held while paused: {note}" for note in report.held)
    return "\n".join(lines)


def render_warnings(report: Report) -> str:
    """The pauses that fight the routes, one `warning:` line each ("" when none)."""
    return "\n".join(f"warning: {warning}" for warning in report.warnings)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _named(names: list[str], noun: str) -> str:
    return _count(len(names), noun) + (f" ({', '.join(names)})" if names else "")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `validate [ROUTES]` to the `polytrigger` command line (dispatch with `run`)."""
    command = commands.add_parser(
        "validate",
        help="check a routes file and show what the stack will wire",
        description=__doc__,
    )
    command.add_argument(
        "routes",
        nargs="?",
        metavar="ROUTES",
        help="the routes file, YAML or JSON (default: $ROUTES, else $ROUTES_FILE, else the bundled example)",
    )
    command.add_argument(
        "--routes", dest="routes_flag", metavar="ROUTES", help="the same, as explain and status take it"
    )
    command.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when there is a warning (a pause that fights the routes), not only a problem",
    )
    command.add_argument(
        "--check-buckets",
        action="store_true",
        help="also ask S3 (AWS credentials needed) whether each bucket's EventBridge notifications are on",
    )


def run(args: argparse.Namespace) -> int:
    """0 and the summary on stdout when the file is valid (and, checked, every bucket sends its events), its
    warnings on stderr (1 with `--strict` when there is one); 1 and every problem on stderr when it is not."""
    if args.routes and getattr(args, "routes_flag", None):
        print("polytrigger validate: give one routes file: validate ROUTES (or --routes ROUTES)", file=sys.stderr)
        return 2
    try:
        path = routes_path(args.routes or getattr(args, "routes_flag", None))
    except RoutesPathError as error:
        print(f"polytrigger validate: {error}", file=sys.stderr)
        return 2
    report = validate(path)
    print(render(report), file=sys.stdout if report.ok else sys.stderr)
    if not report.ok:
        return 1
    if report.warnings:
        sys.stdout.flush()
        print(render_warnings(report), file=sys.stderr)
    checked = _check_buckets(report.buckets) if getattr(args, "check_buckets", False) else 0
    return 1 if getattr(args, "strict", False) and report.warnings else checked


def _check_buckets(buckets: list[str]) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError

    from polytrigger.tools.buckets import check_buckets

    try:
        checks = check_buckets(boto3.client("s3"), buckets)
    except BotoCoreError as error:  # no credentials, no region, no network: nothing was checked
        print(f"--check-buckets could not ask S3: {error}", file=sys.stderr)
        return 1
    for check in checks:
        print(f"  {check.describe()}", file=sys.stdout if check.on else sys.stderr)
    return 0 if all(check.on for check in checks) else 1
