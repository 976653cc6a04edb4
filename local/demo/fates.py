"""The demo's last part: every file answers for itself (`polytrigger status`), in each state it can be in.

A weekend freeze pauses the orders syncs; a file that lands then is held, not failed; the thaw's
`activate` releases it as one start; `status` answers before and after. Then, with two demo routes
added to the example ones (a debounced folder, and a sync Polytomic does not know): a file waiting in
a debounce window, one deferred behind the warehouse's running run, one parked, one no event reached,
and one no route matches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.stack.dispatch_pump import pump
from local.stack.lambda_context import LocalContext

HELD_KEY = "orders/2026/12/05/weekend-drop.csv"
DEFERRED_KEY = "orders/2026/12/07/late-extract.csv"
WAITING_KEY = "clickstream/2026/12/07/part-0002.json"
PARKED_KEY = "legacy/2026/12/07/export.csv"
MISSING_SYNC = "0badc0de-0000-4000-8000-000000000404"  # Polytomic does not know it: 404, parked
DEMO_ROUTES = f"""
  # added by the demo, for `status`: a debounced folder (a file waits in its window) and a sync
  # Polytomic does not know (a start refused for good is parked)
  - name: clickstream
    s3: {{bucket: acme-landing, key: "clickstream/**/*.json"}}
    debounce: 10m
    syncs: [{{id: 3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f}}]
  - name: legacy-export
    s3: {{bucket: acme-landing, key: "legacy/**/*.csv"}}
    syncs: [{{id: {MISSING_SYNC}}}]
"""
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

    records = Records(stack.dynamodb_client(), stack.table_name)

    def status(key: str) -> list[str]:
        routes = load_routes(routes_file())
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
    lines += ["", "with two demo routes added (a debounced folder; a sync Polytomic does not know):"]
    lines += _more_states(status)
    lines += status(NEVER_SENT)
    lines += status(UNROUTED)
    return lines


def _more_states(status: Callable[[str], list[str]]) -> list[str]:
    """A file waiting in a debounce window, one deferred behind a running run, one parked."""
    import os
    import tempfile
    from pathlib import Path

    from polytrigger import bootstrap
    from polytrigger.handlers import s3
    from polytrigger.settings import routes_file

    folder = Path(tempfile.mkdtemp(prefix="polytrigger-demo-"))
    routes = folder / "routes.yaml"
    routes.write_text(routes_file().read_text(encoding="utf-8").rstrip() + "\n" + DEMO_ROUTES, encoding="utf-8")
    os.environ["ROUTES_FILE"] = str(routes)
    bootstrap.reset()
    lines = []
    for key in (WAITING_KEY.replace("0002", "0001"), WAITING_KEY, DEFERRED_KEY, PARKED_KEY):
        answer = s3.handler(_upload(key), LocalContext(function_name="polytrigger-s3"))
        lines.append(f"  s3://acme-landing/{key} lands: " + ", ".join(o["status"] for o in answer["outcomes"]))
    for key in (WAITING_KEY, DEFERRED_KEY, PARKED_KEY):
        lines += status(key)
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
