"""`make demo`: polytrigger end to end on the embedded local stack, no AWS account.

Starts DynamoDB Local (or moto's DynamoDB without Java/npm), moto for Secrets Manager and the
fake Polytomic API; invokes the real handlers with the sample events; prints what happened;
replays one event to show `duplicate`; stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
ROUTES = ROOT / "functions" / "routes.yaml"

RUN_SECONDS = 4.0
ORDERS_MODEL = "248df4b7-aa70-47b8-a036-33ac447e668d"
WAREHOUSE_BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
CUSTOMERS_MODEL = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"

# (event file, handler): S3 shapes first, then the schedules.
SCENARIO: tuple[tuple[str, str], ...] = (
    ("s3-notification-created.json", "s3"),
    ("s3-notification-tricky-key.json", "s3"),
    ("sqs-s3-notifications.json", "s3"),
    ("sns-s3-notification.json", "s3"),
    ("s3-test-event.json", "s3"),
    ("scheduler-input-freeze.json", "schedule"),
    ("scheduler-input-thaw.json", "schedule"),
    ("scheduler-input-nightly.json", "schedule"),
    ("eventbridge-object-created.json", "s3"),  # the first upload again, in its EventBridge shape
)
REPLAY = "s3-notification-created.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show the handlers' structured logs and metrics")
    args = parser.parse_args(argv)
    if not args.verbose:  # the table says it all; logs are one flag away
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    from local.stack import LocalStack

    print("polytrigger demo: starting the local stack (DynamoDB, Secrets Manager, fake Polytomic) ...")
    try:
        with LocalStack() as stack:
            print(f"  DynamoDB: {stack.dynamodb_engine}; every server on 127.0.0.1\n")
            return run(stack)
    except KeyboardInterrupt:
        return 130


def run(stack: Any) -> int:
    from local.dispatch_pump import pump
    from local.lambda_context import LocalContext
    from polytrigger.handlers import dispatcher, s3, schedule
    from polytrigger.runtime import app as runtime

    fake = stack.fake
    fake.add_sync(ORDERS_MODEL, kind="model")
    fake.add_sync(WAREHOUSE_BULK, kind="bulk", run_seconds=RUN_SECONDS)  # an ELT run: later starts see 409
    fake.add_sync(CUSTOMERS_MODEL, kind="model")
    sqs = stack.client("sqs")
    dispatch_queue = sqs.create_queue(QueueName="polytrigger-dispatch")["QueueUrl"]
    dispatch_dlq = sqs.create_queue(QueueName="polytrigger-dispatch-dlq")["QueueUrl"]

    os.environ.update(stack.env())
    os.environ.update(
        ROUTES_FILE=str(ROUTES),
        DISPATCH_QUEUE_URL=dispatch_queue,
        DISPATCH_DEAD_LETTER_QUEUE_URL=dispatch_dlq,
        DEFERRAL_FIRST_DELAY_SECONDS="2",  # 30 s in production; the demo has no time to lose
    )
    runtime.reset()
    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
        "s3": s3.handler,
        "schedule": schedule.handler,
    }

    rows: list[tuple[str, dict[str, Any]]] = []
    calls_before_replay = 0
    for index, (name, kind) in enumerate((*SCENARIO, (REPLAY, "s3"))):
        replay = index == len(SCENARIO)
        label = f"{name} (replayed)" if replay else name
        if replay:
            calls_before_replay = len(fake.calls)
        event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
        try:
            summary = handlers[kind](event, LocalContext(function_name=f"polytrigger-{kind}"))
        except Exception as error:
            rows.append((label, {"status": "error", "reason": str(error)}))
            continue
        outcomes = summary.get("outcomes", [])
        if not outcomes:
            rows.append((label, {"status": "(nothing to do)"}))
        rows.extend((label, outcome) for outcome in outcomes)

    replay_calls = len(fake.calls) - calls_before_replay
    print(
        f"  (the warehouse bulk sync runs for {RUN_SECONDS:.0f} s: starts meeting its run are deferred; delivering them ...)"
    )
    for answer in pump(sqs, dispatch_queue, dispatcher.handler, timeout=90):
        rows.extend(("dispatch queue (deferred)", outcome) for outcome in answer.get("outcomes", []))

    print(table(rows))
    calls = fake.calls
    starts = sum(1 for call in calls if call.method == "POST" and call.path.endswith("/executions"))
    print(f"\nPolytomic received {len(calls)} calls ({starts} starts); the replay made {replay_calls}.")
    print("Dry run of any event, no stack needed: .venv/bin/polytrigger explain events/<file>.json")
    return 0 if all(row[1].get("status") not in ("error", "failed") for row in rows) else 1


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    header = ("event", "route", "sync", "action", "outcome", "execution id / reason")
    lines = [header]
    for label, outcome in rows:
        sync = outcome.get("sync_id", "")
        lines.append(
            (
                label,
                outcome.get("route", ""),
                f"{outcome.get('sync_type', '')} {sync[:8]}" if sync else "",
                outcome.get("action", ""),
                outcome.get("status", ""),
                outcome.get("execution_id") or _short(outcome.get("reason", "")),
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    rendered = [" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in rendered)


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
