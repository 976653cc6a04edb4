"""The demo's last part: every file answers for itself (`polytrigger status`), in each state it can be in.

A weekend freeze pauses the orders syncs; a file that lands then is held, not failed; the thaw's
`activate` releases it as one start; `status` answers before and after. Then a file no event
reached, and one no route matches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.stack.dispatch_pump import pump
from local.stack.lambda_context import LocalContext

HELD_KEY = "orders/2026/12/05/weekend-drop.csv"
NEVER_SENT = "orders/2026/12/06/never-sent.csv"
UNROUTED = "invoices/2026/12/07/inv-0001.pdf"


def show_fates(stack: Any, sqs: Any, dispatch_queue: str) -> list[str]:
    from polytrigger.handlers import dispatcher, poller, s3, schedule
    from polytrigger.routing import load_routes
    from polytrigger.routing.near import near_misses
    from polytrigger.settings import routes_file
    from polytrigger.tools.explain import s3_trigger
    from polytrigger.tools.fate import Records, fate_of
    from polytrigger.tools.status import render

    routes = load_routes(routes_file())
    records = Records(stack.dynamodb_client(), stack.table_name)

    def status(key: str) -> list[str]:
        fate = fate_of("acme-landing", key, routes, records)
        misses = [] if fate.routes else near_misses(routes.routes, s3_trigger(f"s3://acme-landing/{key}"))
        return [f"$ polytrigger status s3://acme-landing/{key}", render(fate, misses)]

    def fire(name: str) -> list[str]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        answer = schedule.handler({"schedule": name, "time": now}, LocalContext(function_name="polytrigger-schedule"))
        return [f"  schedule {name}: " + ", ".join(o["status"] for o in answer.get("outcomes", []))]

    lines = ["", "every file answers for itself (polytrigger status), a weekend freeze included:"]
    lines += fire("freeze")
    landed = s3.handler(_upload(HELD_KEY), LocalContext(function_name="polytrigger-s3"))
    lines.append(f"  s3://acme-landing/{HELD_KEY} lands: " + ", ".join(o["status"] for o in landed["outcomes"]))
    lines += status(HELD_KEY)
    lines += fire("thaw")
    released = _deliver(sqs, dispatch_queue, dispatcher.handler)
    lines.append(f"  the thaw released the hold: {released}")
    poller.handler({"poll": "demo"}, LocalContext(function_name="polytrigger-poller"))
    lines += status(HELD_KEY)
    lines += status(NEVER_SENT)
    lines += status(UNROUTED)
    return lines


def _deliver(sqs: Any, queue: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> str:
    answers = pump(sqs, queue, handler, timeout=60)
    outcomes = [o for answer in answers for o in answer.get("outcomes", [])]
    return ", ".join(f"{o['sync_type']} sync {o['sync_id'][:8]} {o['status']}" for o in outcomes) or "nothing"


def _upload(key: str) -> dict[str, Any]:
    """An S3 notification of one new object (what S3 would send), with a sequencer of its own."""
    now = datetime.now(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": "acme-landing", "arn": "arn:aws:s3:::acme-landing"},
                    "object": {"key": key, "size": 2048, "sequencer": f"{int(now.timestamp() * 1e6):018X}"},
                },
            }
        ]
    }
