"""`polytrigger replay`: start the syncs for objects that are already in S3, as their events would have.

For when a route was added for data that landed last week, notifications were off, an outage parked
events past the dedup TTL, or a new sync must be fed the last month. Choose the objects by route
(`--route NAME`, repeatable: its routed prefixes are listed), by prefix (`s3://BUCKET/PREFIX`), or by an
S3 Inventory report (`--inventory s3://…/manifest.json`); narrow them by LastModified (`--since`,
`--until`) or by the values of the route glob's placeholders (`--partition date=2026-12-01..2026-12-07`).

`--dry-run` prints the plan and changes nothing: the objects matched, their partitions, each start it
would make (one per sync and options, per partition on a gated route, for every object no run has yet),
and each object skipped with why (covered by a run, held, waiting, deferred, started earlier). The live
run makes exactly that plan, at most `--rate` starts a minute, through the functions' own dedup and
Polytomic path. Ctrl-C stops after the current start (exit 130); running it again makes no start twice.

A dry run reads S3 and the dedup table (IDEMPOTENCY_TABLE or --table); a live run also needs what the
trigger functions have: POLYTOMIC_SECRET_ID and DISPATCH_QUEUE_URL (a start that meets a running run
waits there). AWS credentials and Region as usual (AWS_ENDPOINT_URL for a local stack).

Exit status: 0 the plan was made (a live run: every start made or on its way), 1 nothing to start or
some start failed, 2 usage, configuration or credentials (one line, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.landings import DynamoLandings, LandingsUnavailable
from polytrigger.polytomic.contract import CredentialsError
from polytrigger.reconciliation.listing import ListingUnavailable
from polytrigger.routing import Routes, RoutesError
from polytrigger.routing.globs import placeholders
from polytrigger.routing.suggest import did_you_mean
from polytrigger.settings import ConfigError
from polytrigger.tools.fate import Records
from polytrigger.tools.replay import DEFAULT_RATE, Interrupt, Progress, RateLimit, Result, carry_out
from polytrigger.tools.replay_plan import Plan, Selection, Start, make_plan
from polytrigger.tools.replay_reads import (
    ReplayInputError,
    TableCoverage,
    inventory_objects,
    listed_objects,
    split_url,
)
from polytrigger.tools.routes_source import RoutesPathError, RoutesSource, choose_routes, read_deployed

_NAME = re.compile(r"[a-z_][a-z0-9_]*")
INTERRUPTED = 130
START_BUDGET_MS = 60_000  # a start's dedup record stays in progress this long if the command dies mid-start
SKIPPED_SHOWN = 50  # skipped (object, sync) lines printed; --json has them all


class ReplayError(Exception):
    """Usage, configuration or credentials: one line, exit 2."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "replay",
        help="start the syncs for objects already in S3 (--dry-run: the plan)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("target", nargs="?", metavar="s3://BUCKET/PREFIX", help="list this prefix")
    command.add_argument("--route", action="append", default=[], metavar="NAME", help="this route (repeatable)")
    command.add_argument("--inventory", metavar="s3://BUCKET/…/manifest.json", help="an S3 Inventory report (CSV)")
    command.add_argument("--since", metavar="T", help="LastModified at or after T (ISO date or time, UTC if no offset)")
    command.add_argument("--until", metavar="T", help="LastModified before T (a date alone: up to its end)")
    command.add_argument(
        "--partition",
        action="append",
        default=[],
        metavar="NAME=VALUE[..LAST]",
        help="only objects whose glob placeholder NAME is VALUE, or from VALUE to LAST (repeatable)",
    )
    command.add_argument("--dry-run", action="store_true", help="print the plan; start nothing, write nothing")
    command.add_argument(
        "--rate",
        type=_rate,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"starts per minute at most (default {DEFAULT_RATE})",
    )
    command.add_argument(
        "--table", default=os.getenv("IDEMPOTENCY_TABLE", ""), help="the dedup table (IdempotencyTableName)"
    )
    command.add_argument(
        "--routes",
        help="routes file (default: the routes deployed to --table, else $ROUTES, else $ROUTES_FILE, else the bundled"
        " example; said on stderr)",
    )
    command.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, *, s3: Any = None, dynamodb: Any = None, interrupt: Interrupt | None = None) -> int:
    try:
        return _run(args, s3, dynamodb, interrupt)
    except ReplayError as error:
        print(f"polytrigger replay: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, s3: Any, dynamodb: Any, interrupt: Interrupt | None) -> int:
    from polytrigger import bootstrap

    if not args.table:
        raise ReplayError("give --table (the stack output IdempotencyTableName) or set IDEMPOTENCY_TABLE")
    try:  # the user's own mistakes first; then the routes deployed to the table, unless --routes is given
        read = (lambda table: read_deployed(table, dynamodb)) if dynamodb is not None else None
        source = choose_routes(args.routes, args.table, read=read)
        routes = source.load()
        path = source.path or _written(source)
        selection = selection_of(args, routes)
        bucket, prefix = split_url(args.target) if args.target else ("", "")
        manifest = args.inventory
        if manifest:
            split_url(manifest)
    except (RoutesError, RoutesPathError, ReplayInputError) as error:
        raise ReplayError(str(error)) from None
    s3 = s3 if s3 is not None else _client("s3")
    dynamodb = dynamodb if dynamodb is not None else _client("dynamodb")
    records = Records(dynamodb, args.table)
    chosen = selection.chosen(routes)
    try:
        objects = inventory_objects(s3, manifest) if manifest else listed_objects(lambda: s3, chosen, bucket, prefix)
        plan = make_plan(objects, routes, selection, TableCoverage(records, routes), bootstrap.CLOCK.now())
    except (ReplayInputError, ListingUnavailable, LandingsUnavailable) as error:
        raise ReplayError(str(error)) from None
    except (BotoCoreError, ClientError) as error:
        raise ReplayError(f"cannot read the table {args.table}: {_aws(error)}") from None
    if args.dry_run:
        print(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) if args.json else render_plan(plan))
        return 0 if plan.starts else 1
    result = _live(plan, args, path, dynamodb, interrupt)
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json else render_result(result))
    if result.stopped_by:
        raise ReplayError(f"stopped: {result.stopped_by} (check credentials and --table; run it again)")
    if result.interrupted:
        return INTERRUPTED
    return 1 if result.failed or not plan.starts else 0


def _written(source: RoutesSource) -> Path:
    """The deployed routes' text as a file: the functions' start path reads its routes from one."""
    text = source.deployed.text if source.deployed is not None else None
    handle, name = tempfile.mkstemp(prefix="polytrigger-deployed-routes-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text or "")
    return Path(name)


def _live(plan: Plan, args: argparse.Namespace, path: Any, dynamodb: Any, interrupt: Interrupt | None) -> Result:
    from polytrigger import bootstrap

    if not plan.starts:
        return Result(plan)
    os.environ["ROUTES_FILE"] = str(path)  # the functions' own start path, on these routes and this table
    os.environ["IDEMPOTENCY_TABLE"] = args.table
    bootstrap.reset()
    try:
        starter = FlowStarter(bootstrap.triggers(), bootstrap.CLOCK.now)
    except (ConfigError, RoutesError, CredentialsError) as error:
        raise ReplayError(str(error)) from None
    own = interrupt is None
    interrupt = interrupt or Interrupt(said=lambda text: print(f"\npolytrigger replay: {text}", file=sys.stderr))
    previous = signal.signal(signal.SIGINT, interrupt.request) if own else None
    try:
        return carry_out(
            plan,
            starter,
            DynamoLandings(dynamodb, args.table, clock=bootstrap.CLOCK.now),
            RateLimit(args.rate, bootstrap.CLOCK.now, bootstrap.CLOCK.sleep),
            clock=bootstrap.CLOCK.now,
            interrupt=interrupt,
            progress=Progress(len(plan.starts)),
        )
    finally:
        if own:
            signal.signal(signal.SIGINT, previous)


class _StartBudget:
    """What the dedup records ask a Lambda context: the time left to finish one start."""

    def get_remaining_time_in_millis(self) -> int:
        return START_BUDGET_MS


class FlowStarter:
    """A planned start through the trigger functions' own flow pieces: dedup, policy, run ledger."""

    def __init__(self, flow: Any, clock: Any) -> None:
        self.flow = flow
        self.clock = clock
        flow.before_fan_out()
        # A start's dedup record is "in progress" for as long as a function has left; this command has no
        # Lambda deadline, so it takes a minute: killed mid-start, the rerun tries that start again after it.
        flow.register(_StartBudget())

    def start(self, start: Start) -> Outcome:
        received = self.clock()
        policy, started = self.flow.policy, self.flow.started
        if start.activate is not None:
            activated = started.note(start.activate, policy.perform(start.activate, None, received))
            if activated.status == "failed":
                return Outcome.of(start.action, "failed", reason=f"activating it first failed: {activated.reason}")
        outcome: Outcome = started.note(start.action, policy.perform(start.action, None, received, debounce=False))
        return outcome


def selection_of(args: argparse.Namespace, routes: Routes) -> Selection:
    """The user's choice, checked against the routes (an unknown route or placeholder names the closest)."""
    if not (args.route or args.target or args.inventory):
        raise ReplayInputError("give --route NAME, s3://BUCKET/PREFIX or --inventory s3://…/manifest.json")
    if args.target and args.inventory:
        raise ReplayInputError("give s3://BUCKET/PREFIX or --inventory, not both")
    s3_routes = [route for route in routes.routes if route.key_pattern is not None]
    for name in args.route:
        if routes.named(name) is None:
            raise ReplayInputError(f"no route is named {name!r}{did_you_mean(name, [r.name for r in routes.routes])}")
        if name not in {route.name for route in s3_routes}:
            raise ReplayInputError(f"route {name} has no s3 trigger: there is nothing in S3 to replay for it")
    bucket, prefix = split_url(args.target) if args.target else ("", "")
    ranges = tuple(_partition(text) for text in args.partition)
    named = [r for r in s3_routes if not args.route or r.name in args.route]
    for name, _, _ in ranges:
        if not any(name in placeholders(route.key) for route in named):
            known = sorted({p for route in named for p in placeholders(route.key)})
            raise ReplayInputError(
                f"--partition {name}: no chosen route's glob has a {{{name}}} placeholder"
                + (f" (they have: {', '.join(known)})" if known else " (they have none)")
            )
    since, until = _time(args.since, "--since"), _time(args.until, "--until", end=True)
    if since and until and since >= until:
        raise ReplayInputError(f"--since ({args.since}) must be before --until ({args.until})")
    return Selection(tuple(args.route), bucket, prefix, since, until, ranges)


def _partition(text: str) -> tuple[str, str, str]:
    name, _, values = text.strip().partition("=")
    low, _, high = values.partition("..")
    high = high or low
    if not _NAME.fullmatch(name) or not low:
        raise ReplayInputError(f"--partition must be NAME=VALUE or NAME=FIRST..LAST (got {text!r})")
    if low > high:
        raise ReplayInputError(f"--partition {name}: {low} comes after {high}")
    return name, low, high


def _time(text: str | None, flag: str, *, end: bool = False) -> datetime | None:
    if text is None:
        return None
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayInputError(
            f"{flag} must be an ISO date or time such as 2026-12-01 or 2026-12-01T06:00Z (got {text!r})"
        ) from None
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        moment += timedelta(days=1)  # a date alone: up to the end of that day
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rate(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 6000:
        raise argparse.ArgumentTypeError(f"must be a whole number of starts per minute from 1 to 6000 (got {text!r})")
    return int(text)


def _client(service: str) -> Any:
    import boto3

    try:
        return boto3.client(service)  # type: ignore[call-overload]
    except BotoCoreError as error:  # no region, an unusable endpoint
        raise ReplayError(f"cannot reach {service}: {error} (set AWS_REGION / AWS_PROFILE)") from None


def _aws(error: Exception) -> str:
    details = getattr(error, "response", None)
    if isinstance(details, dict) and isinstance(details.get("Error"), dict):
        return f"{details['Error'].get('Code')}: {str(details['Error'].get('Message'))[:200]}"
    return f"{error} (check AWS_REGION and credentials)"


# -- what is printed ----------------------------------------------------------------------------------


def render_plan(plan: Plan) -> str:
    lines = [_headline(plan)]
    if plan.partitions:
        lines.append("partitions:")
        lines.extend(f"  {route}: {text}" for route, text in plan.partitions)
    if plan.starts:
        lines.append("starts:")
        lines.extend(f"  {_start_line(start)}" for start in plan.starts)
    if plan.skipped:
        lines.append("skipped:")
        for skip in plan.skipped[:SKIPPED_SHOWN]:
            detail = f" ({skip.detail})" if skip.detail else ""
            lines.append(
                f"  s3://{skip.listed.bucket}/{skip.listed.key}: {skip.sync.type} sync {skip.sync.id}"
                f" (route {skip.route}): {skip.reason}{detail}"
            )
        if len(plan.skipped) > SKIPPED_SHOWN:
            lines.append(f"  … and {len(plan.skipped) - SKIPPED_SHOWN} more (--json lists every one)")
    return "\n".join(lines)


def render_result(result: Result) -> str:
    lines = [f"  {_start_line(start)} -> {outcome.status}" + _why(outcome) for start, outcome in result.outcomes]
    left = len(result.plan.starts) - len(result.outcomes)
    counts = ", ".join(f"{n} {status}" for status, n in result.counts().items()) or "no start made"
    skipped = ", ".join(f"{n} {why}" for why, n in result.plan.skipped_by_reason().items())
    summary = (
        f"replay: {len(result.plan.matched)} object(s) matched, {len(result.plan.partitions)} partition(s);"
        f" {len(result.plan.starts)} start(s) planned: {counts}"
        + (f"; skipped (object, sync): {skipped}" if skipped else "")
        + (f"; {len(result.failed)} failed" if result.failed else "")
    )
    if result.interrupted or result.stopped_by:
        how = "interrupted" if result.interrupted else "stopped"
        summary += f"; {how} with {left} start(s) not made: run the same command again to make them"
    return "\n".join([*lines, summary])


def _headline(plan: Plan) -> str:
    skipped = ", ".join(f"{n} {why}" for why, n in plan.skipped_by_reason().items())
    return (
        f"replay plan: {plan.seen} object(s) listed, {len(plan.matched)} matched, {len(plan.partitions)}"
        f" partition(s); {len(plan.starts)} start(s) to make"
        + (f"; skipped (object, sync): {skipped}" if skipped else "")
    )


def _start_line(start: Start) -> str:
    where = f" partition {start.to_dict()['partition']}" if start.partition else ""
    newest = start.action.trigger
    return (
        f"start {start.sync.type} sync {start.sync.id} (route {start.route}{where}) for {len(start.objects)}"
        f" object(s), newest s3://{newest.bucket}/{newest.key}; Idempotency-Key {start.action.dedup_key}"
    )


def _why(outcome: Outcome) -> str:
    if outcome.execution_id:
        return f" ({outcome.execution_id})"
    return f" ({outcome.reason})" if outcome.reason else ""
