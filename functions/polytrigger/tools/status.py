"""`polytrigger status s3://BUCKET/KEY`: was this file synced, and if not, where is it now?

For each route the object matches (or, when none does, the closest routes and why each missed) and
each of that route's syncs, one state with the facts behind it: covered by (or started) run E and
how E ended, held while the sync is paused, waiting in a debounce window or for a gate, deferred, parked (with
the reason and the `redrive` command), or never seen; and the route's freshness promise. It reads
the dedup table by key and through its `by_sync` index (`tools.fate`), never the whole table.

`polytrigger status --sync ID` lists the sync's runs since `--since` (default 24h), from the index.

Exit status: 0 when every matched sync has a completed run covering the file (with --sync: a run
was found), 1 when not (yet), 2 for usage, configuration or credential problems (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.dispatch.holds import HoldsUnavailable
from polytrigger.dispatch.landings import LandingsUnavailable
from polytrigger.dispatch.ports import WindowsUnavailable
from polytrigger.dispatch.table import BY_SYNC_INDEX, iso
from polytrigger.routing import Routes, RoutesError
from polytrigger.routing.near import near_misses
from polytrigger.runs.dynamo_ledger import run_from_item
from polytrigger.runs.ledger import LedgerUnavailable
from polytrigger.tools.explain import S3_URL, ExplainInputError, printable, s3_trigger
from polytrigger.tools.fate import FileFate, Records, SyncFate, fate_of
from polytrigger.tools.routes_source import RoutesPathError, choose_routes, read_deployed

_SINCE = re.compile(r"^(\d+)\s*(m|h|d)$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}
REDRIVE = "polytrigger redrive --stack STACK --dry-run   (then again without --dry-run)"


class StatusError(Exception):
    """Usage, configuration or credentials: one line, exit 2."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "status",
        help="what happened to a file: synced, waiting, held or parked",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("object", nargs="?", metavar="s3://BUCKET/KEY", help="the file to answer for")
    command.add_argument("--object", dest="object_flag", metavar="s3://BUCKET/KEY", help=argparse.SUPPRESS)
    command.add_argument("--route", metavar="NAME", default="", help="only this route's syncs")
    command.add_argument("--sync", metavar="ID", default="", help="only this sync (alone: the sync's runs)")
    command.add_argument("--since", default="24h", help="with --sync alone: how far back (30m, 24h, 7d or ISO)")
    command.add_argument(
        "--table", default=os.getenv("IDEMPOTENCY_TABLE", ""), help="the dedup table (IdempotencyTableName)"
    )
    command.add_argument(
        "--routes",
        help="routes file (default: the routes deployed to --table, else $ROUTES, else $ROUTES_FILE, else the"
        " bundled example; said on stderr)",
    )
    command.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, now: datetime | None = None, client: Any = None) -> int:
    try:
        return _run(args, now or datetime.now(UTC), client)
    except StatusError as error:
        print(f"polytrigger status: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, now: datetime, client: Any) -> int:
    target = (args.object or args.object_flag or "").strip()
    if not target and not args.sync:
        raise StatusError("give s3://BUCKET/KEY (or --sync ID for the sync's runs)")
    if not args.table:
        raise StatusError("give --table (the stack output IdempotencyTableName) or set IDEMPOTENCY_TABLE")
    if not target:
        return _sync_runs(Records(client if client is not None else _dynamodb(), args.table), args, now)
    if not target.startswith(S3_URL):
        raise StatusError(f"not an S3 URL: {target[:80]!r} (give s3://BUCKET/KEY)")
    try:  # the user's own mistakes first; then the routes deployed to the table, unless --routes is given
        trigger = s3_trigger(target)
        read = (lambda table: read_deployed(table, client)) if client is not None else None
        routes = choose_routes(args.routes, args.table, read=read).load()
    except (ExplainInputError, RoutesError, RoutesPathError) as error:
        raise StatusError(str(error)) from None
    records = Records(client if client is not None else _dynamodb(), args.table)
    fate = _read(lambda: fate_of(trigger.bucket, trigger.key, routes, records, route=args.route, sync=args.sync))
    if args.json:
        print(json.dumps({**fate.to_dict(), "near_misses": _misses(fate, routes)}, indent=2, ensure_ascii=False))
    else:
        print(render(fate, _misses(fate, routes)))
    return 0 if fate.synced else 1


def _found_by(how: str) -> str:
    """A landing a listing found: no event for it had arrived (reconciliation), or a user replayed it."""
    if how == "reconciliation":
        return " (found by reconciliation: no event had arrived; is the bucket's EventBridge notification on?)"
    if how == "replay":
        return " (found by polytrigger replay)"
    return ""


def render(fate: FileFate, misses: list[str]) -> str:
    lines = [printable(fate.url)]
    if fate.landing is None:
        lines.append(
            "  never seen: no event for this object reached polytrigger. Check that it exists, that its bucket"
            " sends events to EventBridge, and that the stack's S3 rule covers the key (see docs/deploy.md)."
        )
    else:
        lines.append(
            f"  landed {_when(fate.landing.landed_at.isoformat())},"
            f" reached polytrigger {_when(fate.landing.received_at.isoformat())}" + _found_by(fate.landing.found_by)
        )
    if not fate.routes:
        lines.append("  no route matches it: nothing starts for it")
        if misses:
            lines.append("  closest routes:")
            lines.extend(f"  - {miss}" for miss in misses)
        return "\n".join(lines)
    current = ""
    for sync in fate.syncs:
        if sync.route != current:
            current = sync.route
            lines.append(f"  route {sync.route}")
        lines.append(f"    {sync.sync_type} sync {sync.sync_id}: {describe(sync)}")
        if sync.freshness:
            verdict = sync.freshness.get("verdict", "")
            due = sync.freshness.get("due", "")
            lines.append(f"      freshness: {verdict}" + (f" (due {_when(due)})" if due else ""))
    return "\n".join(lines)


def describe(sync: SyncFate) -> str:
    """One line for one (route, sync): the state and the facts behind it."""
    if sync.state in ("covered", "started"):
        how = "started by this file" if sync.state == "started" else "covered"
        return f"{sync.run_status} — run {sync.execution_id} ({how}: it was created after the file landed)"
    if sync.state == "held":
        return (
            f"held since {_when(sync.since)} — {sync.reason}; one start covers them all once the sync is active"
            f" again (at once after polytrigger's own activate, else within the poller's check); parked if still"
            f" paused at {_when(sync.until)}"
        )
    if sync.state == "waiting" and not sync.until:  # a gate: no time is known until its partition is complete
        return f"waiting {sync.reason}; its first object landed {_when(sync.since)}"
    if sync.state == "waiting":
        return f"waiting — {sync.reason}, opened {_when(sync.since)}; one start at about {_when(sync.until)}"
    if sync.state == "parked":
        return f"parked in {sync.parked_in} at {_when(sync.since)} — {sync.reason}; to send it again: {REDRIVE}"
    if sync.state == "deferred":
        return f"deferred — {sync.reason}"
    if sync.state == "never seen":
        return "never seen"
    return (
        "unknown — no run since it landed and no record of its start (records are kept 14 days;"
        " the dedup record for the dedup TTL)"
    )


def _misses(fate: FileFate, routes: Routes) -> list[str]:
    if fate.routes:
        return []
    bucket, _, key = fate.url.removeprefix(S3_URL).partition("/")
    return near_misses(routes.routes, s3_trigger(f"{S3_URL}{bucket}/{key}"))


def _sync_runs(records: Records, args: argparse.Namespace, now: datetime) -> int:
    try:
        since = _since(args.since, now)
    except ValueError:
        raise StatusError(f"--since must be like 30m, 24h, 7d or an ISO time (got {args.since!r})") from None
    rows: list[dict[str, Any]] = []
    for sync_type in ("model", "bulk"):
        for item in _read(lambda sync_type=sync_type: list(_runs_of(records, sync_type, args.sync.lower(), since))):
            run = run_from_item(item)
            rows.append({**run.to_dict(), "status": run.status or "running"})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no run of sync {args.sync} recorded since {since:%Y-%m-%d %H:%M} UTC")
    else:
        for row in rows:
            print(
                f"{row['sync_type']} sync {row['sync_id']} run {row['execution_id']}: {row['status']}"
                f" (started {row['started_at']}; {row['trigger_count']} trigger(s), first {row['first_trigger']})"
            )
    return 0 if rows else 1


def _runs_of(records: Records, sync_type: str, sync_id: str, since: datetime) -> Any:
    paginator = records.client.get_paginator("query")
    for page in paginator.paginate(
        TableName=records.table,
        IndexName=BY_SYNC_INDEX,
        KeyConditionExpression="sync_key = :sync AND covers_from >= :since",
        ExpressionAttributeValues={":sync": {"S": f"{sync_type}#{sync_id}"}, ":since": {"S": iso(since)}},
    ):
        yield from (item for item in page.get("Items", []) if item["id"]["S"].startswith("run#"))


def _dynamodb() -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.client("dynamodb")
    except BotoCoreError as error:  # no region, an unusable endpoint
        raise StatusError(f"cannot reach DynamoDB: {error} (set AWS_REGION / AWS_PROFILE)") from None


def _read(call: Any) -> Any:
    """The table's answer; an AWS problem (credentials, region, no such table) as one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        raise StatusError(f"DynamoDB refused the read: {code}: {message[:200]}") from None
    except BotoCoreError as error:
        raise StatusError(f"cannot read the table: {error} (check AWS_REGION and credentials)") from None
    except (LandingsUnavailable, HoldsUnavailable, WindowsUnavailable, LedgerUnavailable) as error:
        raise StatusError(f"cannot read the table: {error} (check AWS_REGION, credentials and --table)") from None


def _since(raw: str, now: datetime) -> datetime:
    match = _SINCE.fullmatch(raw.strip())
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
