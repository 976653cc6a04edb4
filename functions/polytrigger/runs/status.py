"""`polytrigger status`: was this file synced? The runs that cover a trigger, how they ended, and how fresh.

Reads the run ledger (`run#<execution>` items of the dedup table) with a scan: an operator's
question, not a hot path (it reads the whole table once; its cost grows with the table). Filters:
`--object s3://bucket/key`, `--sync ID`, `--route NAME`, `--since` (default 24h). Exit status: 0
when a run is found (and, with --object, one of them completed), 1 when none is, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.runs.dynamo_ledger import run_from_item
from polytrigger.runs.ledger import Run

_SINCE = re.compile(r"^(\d+)\s*(m|h|d)$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Query:
    object: str = ""  # s3://bucket/key, as `Trigger.describe()` begins
    sync: str = ""
    route: str = ""
    since: datetime | None = None

    def wants(self, run: Run) -> bool:
        if self.object and not any(t.startswith(f"{self.object} (") for t in run.triggers):
            return False
        if self.sync and run.sync_id != self.sync.lower():
            return False
        if self.route and self.route not in run.routes:
            return False
        return self.since is None or (run.started_at is not None and run.started_at >= self.since)


def find(client: Any, table: str, query: Query) -> list[Run]:
    """Every run of the ledger the query wants, oldest first."""
    runs: list[Run] = []
    for page in client.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="begins_with(id, :run)",
        ExpressionAttributeValues={":run": {"S": "run#"}},
    ):
        runs.extend(run for item in page.get("Items", []) if query.wants(run := run_from_item(item)))
    return sorted(runs, key=lambda run: run.started_at or datetime.min.replace(tzinfo=UTC))


def row(run: Run) -> dict[str, Any]:
    return {**run.to_dict(), "status": run.status or "no ending heard yet"}


def render(rows: list[dict[str, Any]], query: Query) -> str:
    if not rows:
        return (
            f"no run covers {query.object or query.sync or query.route} since {query.since:%Y-%m-%d %H:%M} UTC"
            if query.since
            else "no run found"
        )
    lines = []
    for item in rows:
        fresh = (
            f", {item['freshness_seconds']:.0f} s after the trigger" if item["freshness_seconds"] is not None else ""
        )
        lines.append(
            f"{item['sync_type']} sync {item['sync_id']} run {item['execution_id']}: {item['status']}{fresh}"
            f" (routes {', '.join(item['routes'])}; started {item['started_at']})"
        )
        lines.extend(f"  <- {trigger}" for trigger in item["triggers"])
        if item["trigger_count"] > len(item["triggers"]):
            lines.append(f"  <- and {item['trigger_count'] - len(item['triggers'])} more")
    return "\n".join(lines)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "status", help="was this file synced? runs, outcomes and freshness", description=__doc__
    )
    command.add_argument("--object", metavar="s3://BUCKET/KEY", default="", help="the object's runs")
    command.add_argument("--sync", metavar="ID", default="", help="the sync's runs")
    command.add_argument("--route", metavar="NAME", default="", help="the route's runs")
    command.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d or an ISO time (default 24h)")
    command.add_argument(
        "--table", default=os.getenv("IDEMPOTENCY_TABLE", ""), help="the dedup table (IdempotencyTableName)"
    )
    command.add_argument("--json", action="store_true", help="print JSON rows")


def run(args: argparse.Namespace, now: datetime | None = None) -> int:
    if not (args.object or args.sync or args.route):
        print("polytrigger status: give --object, --sync or --route", file=sys.stderr)
        return 2
    if not args.table:
        print(
            "polytrigger status: give --table (the stack output IdempotencyTableName) or set IDEMPOTENCY_TABLE",
            file=sys.stderr,
        )
        return 2
    try:
        since = _since(args.since, now or datetime.now(UTC))
    except ValueError:
        print(
            f"polytrigger status: --since must be like 30m, 24h, 7d or an ISO time (got {args.since!r})",
            file=sys.stderr,
        )
        return 2
    import boto3

    query = Query(object=args.object.strip(), sync=args.sync.strip(), route=args.route.strip(), since=since)
    rows = [row(found) for found in find(boto3.client("dynamodb"), args.table, query)]
    print(json.dumps(rows, indent=2) if args.json else render(rows, query))
    if args.object:
        return 0 if any(item["status"] == "completed" for item in rows) else 1
    return 0 if rows else 1


def _since(raw: str, now: datetime) -> datetime:
    match = _SINCE.fullmatch(raw.strip())
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
