"""`make demo`: polytrigger end to end on the embedded local stack, no AWS account.

Starts DynamoDB Local (or moto's DynamoDB without Java/npm), moto for Secrets Manager, S3,
SQS and the Scheduler, and the fake Polytomic API; wires the routes as a deploy would (their
buckets and schedules); invokes the real handlers with the sample events; prints what happened;
replays one event to show `duplicate`; stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROUTES = ROOT / "functions" / "routes.yaml"

RUN_SECONDS = 4.0
WAREHOUSE_BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"

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
    parser.add_argument(
        "--routes",
        help="your routes file (make demo ROUTES=..., or ROUTES exported): its syncs exist in the fake;"
        " default the bundled example, said on stderr",
    )
    parser.add_argument(
        "--events", type=Path, help="a folder of your events as JSON (make demo EVENTS=...), in name order"
    )
    args = parser.parse_args(argv)
    try:
        scenario = _scenario(args.events)
    except (OSError, ValueError) as error:
        parser.error(f"--events: {error}")
    from polytrigger.routing import RoutesError, load_routes
    from polytrigger.tools.routes_source import RoutesPathError, routes_path

    try:
        routes_file = routes_path(args.routes, {"ROUTES": os.environ.get("ROUTES", "")})
    except RoutesPathError as error:
        parser.error(str(error))
    if routes_file != ROUTES:
        try:
            load_routes(routes_file)
        except (OSError, RoutesError) as error:
            parser.error(f"--routes: {error}")
    if not args.verbose:  # the table says it all; logs are one flag away
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    from local.stack import LocalStack

    print(
        "polytrigger demo: starting the local stack (DynamoDB, moto: Secrets Manager, SQS, Scheduler; fake Polytomic) ..."
    )
    try:
        with LocalStack() as stack:
            print(f"  DynamoDB: {stack.dynamodb_engine}; every server on 127.0.0.1\n")
            return run(stack, routes_file, scenario)
    except KeyboardInterrupt:
        return 130


Scenario = list[tuple[str, str, dict[str, Any]]]  # (label, handler, event)


def _scenario(folder: Path | None) -> Scenario:
    """The sample events (the first replayed at the end), or every *.json of `folder`, each to the function
    whose shape it has (a schedule's to the schedule function, anything else to the S3 function)."""
    from polytrigger.events.groups import is_schedule_event

    if folder is None:
        named = [*SCENARIO, (REPLAY, "s3")]
        return [
            (f"{name} (replayed)" if index == len(SCENARIO) else name, kind, _read(EVENTS / name))
            for index, (name, kind) in enumerate(named)
        ]
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ValueError(f"no *.json file in {folder}")
    events = [(path.name, _read(path)) for path in files]
    return [(name, "schedule" if is_schedule_event(event) else "s3", event) for name, event in events]


def _read(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name} is not JSON: {error}") from None
    if not isinstance(event, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return event


def run(stack: Any, routes_file: Path = ROUTES, scenario: Scenario | None = None) -> int:
    from local.stack.dispatch_pump import pump
    from local.stack.lambda_context import LocalContext
    from polytrigger import bootstrap
    from polytrigger.handlers import dispatcher, s3, schedule
    from polytrigger.routing import load_routes

    fake = stack.fake
    for route in load_routes(routes_file).routes:  # your routes' syncs exist (and are active) in the fake
        for sync in route.syncs:
            fake.add_sync(sync.id, kind=sync.type)
    if routes_file == ROUTES:
        fake.add_sync(WAREHOUSE_BULK, kind="bulk", run_seconds=RUN_SECONDS)  # an ELT run: later starts see 409
        fake.set_outcome(WAREHOUSE_BULK, "failed")  # and it fails: the loop closed shows it
    sqs = stack.client("sqs")
    dispatch_queue = sqs.create_queue(QueueName="polytrigger-dispatch")["QueueUrl"]
    dispatch_dlq = sqs.create_queue(QueueName="polytrigger-dispatch-dlq")["QueueUrl"]

    os.environ.update(stack.env())
    os.environ.update(
        ROUTES_FILE=str(routes_file),
        DISPATCH_QUEUE_URL=dispatch_queue,
        DISPATCH_DEAD_LETTER_QUEUE_URL=dispatch_dlq,
        DEFERRAL_FIRST_DELAY_SECONDS="2",  # 30 s in production; the demo has no time to lose
    )
    bootstrap.reset()
    from local.demo.outcomes import close_the_loop, open_webhook
    from local.demo.wiring import wire

    print("\n".join(wire(stack)) + "\n")
    webhook = open_webhook(stack)
    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
        "s3": s3.handler,
        "schedule": schedule.handler,
    }

    rows: list[tuple[str, dict[str, Any]]] = []
    calls_before_replay = 0
    for label, kind, event in scenario if scenario is not None else _scenario(None):
        if label.endswith("(replayed)"):
            calls_before_replay = len(fake.calls)
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
    if routes_file == ROUTES:
        print(
            f"  (the warehouse bulk sync runs for {RUN_SECONDS:.0f} s: starts meeting its run are deferred;"
            " delivering them ...)"
        )
    for answer in pump(sqs, dispatch_queue, dispatcher.handler, timeout=90):
        rows.extend(("dispatch queue (deferred)", outcome) for outcome in answer.get("outcomes", []))

    print(table(rows))
    try:
        lines = close_the_loop(stack, sqs, dispatch_queue, table)
        print("\n".join(lines + (_fates(stack, sqs, dispatch_queue) if routes_file == ROUTES else [])))
    finally:
        webhook.close()
    calls = fake.calls
    starts = sum(1 for call in calls if call.method == "POST" and call.path.endswith("/executions"))
    replayed = (
        f"; the replay made {replay_calls}"
        if scenario is None or any(label.endswith("(replayed)") for label, _, _ in scenario)
        else ""
    )
    print(f"\nPolytomic received {len(calls)} calls ({starts} starts){replayed}.")
    print("Dry run of any event, no stack needed: .venv/bin/polytrigger explain events/<file>.json")
    return 0 if all(row[1].get("status") not in ("error", "failed") for row in rows) else 1


def _fates(stack: Any, sqs: Any, dispatch_queue: str) -> list[str]:
    """With the example routes: a file in each state, answered by `polytrigger status`."""
    from local.demo.fates import show_fates

    return show_fates(stack, sqs, dispatch_queue)


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
