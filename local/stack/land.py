"""`python -m local.stack land s3://BUCKET/KEY` and `python -m local.stack poll`: something to ask about.

Both read the env file of the running stack (`make stack`), and run polytrigger's real handlers in this
process against it, with a Lambda context, as `make demo` does:

- `land` puts the object in moto's S3, hands its EventBridge "Object Created" event to the S3
  function, then delivers what is due on the dispatch queue (deferred and debounced starts wait there);
- `poll` runs the poller once (Polytomic's events since its cursor: the runs' endings, chained
  starts), then delivers what is due on the dispatch queue.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.stack.serve import (
    ENV_FILE,
    PID_VARIABLE,
    POLLER_FUNCTION,
    S3_FUNCTION,
    alive,
    read_env,
)

ACCOUNT = "123456789012"
VISIBILITY_TIMEOUT = 30  # the dispatch queue's (template.yaml)
DISPATCH_WAIT = 2.0  # seconds `land` and `poll` wait for dispatch messages to come due (a delayed one waits longer)


class NoStack(RuntimeError):
    """No running stack behind the env file."""


def use_stack(env_file: Path) -> dict[str, str]:
    """The running stack's environment, applied to this process (a developer's AWS profile hidden)."""
    try:
        env = read_env(env_file)
    except FileNotFoundError:
        raise NoStack(f"no {env_file}: start the local stack first (make stack)") from None
    pid = env.get(PID_VARIABLE, "")
    if not pid.isdigit() or not alive(int(pid)):
        raise NoStack(f"the local stack that wrote {env_file} (pid {pid or '?'}) is not running: make stack")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(env)
    return env


def object_created(bucket: str, key: str, body: bytes, region: str) -> dict[str, Any]:
    """Put the object in the stack's S3; its "Object Created" event, as EventBridge delivers it."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": len(body),
                "etag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
                "sequencer": f"{time.time_ns():018X}",  # each write of a key has its own, growing
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def outcome_line(outcome: dict[str, Any]) -> str:
    sync = f"{outcome.get('sync_type', '')} sync {outcome.get('sync_id', '')}".strip()
    said = outcome.get("execution_id") or outcome.get("reason") or ""
    return f"  {outcome.get('route', '')}: {sync}: {outcome.get('action', '')} -> {outcome.get('status', '')}" + (
        f" ({said})" if said else ""
    )


def deliver_dispatch(env: dict[str, str]) -> tuple[list[dict[str, Any]], list[str], int]:
    """Deliver to the dispatcher what comes due within DISPATCH_WAIT: its outcomes, errors, and what still waits."""
    import boto3

    from local.stack.dispatch_pump import DispatchPump, DispatchQueue, NotDrained
    from polytrigger.handlers import dispatcher

    queue = DispatchQueue.at(
        boto3.client("sqs"), env["DISPATCH_QUEUE_URL"], env.get("DISPATCH_DEAD_LETTER_QUEUE_URL", "")
    )
    # as the event source mapping invokes it; a message handed back is visible again after SQS's visibility
    # timeout, so a failing one is not retried in a loop here
    pump = DispatchPump(queue, dispatcher.handler, returned_after=VISIBILITY_TIMEOUT, errors="return")
    with contextlib.suppress(NotDrained):  # a message delayed longer waits for the next `land` or `poll`
        pump.drain(timeout=DISPATCH_WAIT)
    errors = [delivery.error for delivery in pump.deliveries if delivery.error]
    return pump.outcomes(), errors, queue.pending()


def _dispatch_lines(outcomes: list[dict[str, Any]], errors: list[str], waiting: int) -> list[str]:
    lines = []
    if outcomes or errors:
        lines.append("the dispatch queue, delivered to the dispatcher:")
        lines.extend(outcome_line(outcome) for outcome in outcomes)
        lines.extend(f"  the dispatcher failed (the messages go back to the queue): {error}" for error in errors)
    if waiting:
        lines.append(f"{waiting} message(s) still wait on the dispatch queue: `poll` delivers them once due")
    return lines


def land(url: str, env: dict[str, str], body: bytes) -> int:
    """0: the event was delivered and no action failed; 1: nothing matched, or an action failed."""
    from local.stack.lambda_context import LocalContext
    from polytrigger.handlers import s3
    from polytrigger.tools.explain import s3_trigger

    trigger = s3_trigger(url)  # the URL's checks and messages, as `polytrigger explain` gives them
    bucket, key = trigger.bucket, trigger.key
    event = object_created(bucket, key, body, env.get("AWS_REGION", "us-east-1"))
    print(f"{url}: put in the local S3 ({len(body)} bytes); its Object Created event goes to the S3 function")
    try:
        answer = s3.handler(event, LocalContext(function_name=S3_FUNCTION))
    except Exception as error:  # AWS would retry the event, then park it in the dead-letter queue
        print(f"  the S3 function failed ({type(error).__name__}: {error}): AWS would retry the event, then park it")
        return 1
    outcomes = list(answer.get("outcomes", []))
    print("\n".join(map(outcome_line, outcomes)) if outcomes else "  no route matches: nothing happened")
    dispatched, errors, waiting = deliver_dispatch(env)
    for line in _dispatch_lines(dispatched, errors, waiting):
        print(line)
    failed = [item for item in (*outcomes, *dispatched) if item.get("status") == "failed"]
    return 0 if outcomes and not failed and not errors else 1


def poll(env: dict[str, str]) -> int:
    """0: the poller ran; 1: it or the dispatcher failed."""
    from local.stack.lambda_context import LocalContext
    from polytrigger.handlers import poller

    try:
        summary = poller.handler({"poll": "local"}, LocalContext(function_name=POLLER_FUNCTION))
    except Exception as error:
        print(f"the poller failed: {type(error).__name__}: {error}")
        return 1
    print(
        f"poller: read {summary.get('events', 0)} Polytomic event(s); {summary.get('ended', 0)} run(s) ended"
        f" ({summary.get('looked_up', 0)} looked up); {summary.get('chained', 0)} chained start(s) queued"
    )
    dispatched, errors, waiting = deliver_dispatch(env)
    for line in _dispatch_lines(dispatched, errors, waiting):
        print(line)
    return 1 if errors else 0


def reconcile(route: str, env: dict[str, str]) -> int:
    """0: the pass ran; 1: it, or the dispatcher after it, failed (a route's schedule firing, by hand)."""
    from local.stack.lambda_context import LocalContext
    from polytrigger.handlers import reconciler

    try:
        context = LocalContext(function_name="polytrigger-reconciler", timeout_seconds=300)  # the template's
        summary = reconciler.handler({"reconcile": route}, context)
    except Exception as error:
        print(f"the reconciliation failed: {type(error).__name__}: {error}")
        return 1
    if summary.get("state") == "refused":
        print(f"reconciliation of route {route}: refused ({summary.get('reason', '')})")
        return 1
    print(
        f"reconciliation of route {route}: {summary.get('state')}; {summary.get('listed', 0)} object(s) listed,"
        f" {summary.get('found', 0)} found with no event (objects younger than 5 minutes wait for the next pass:"
        " their event may be on the way)"
    )
    for outcome in summary.get("outcomes", []):
        print(outcome_line(outcome))
    dispatched, errors, waiting = deliver_dispatch(env)
    for line in _dispatch_lines(dispatched, errors, waiting):
        print(line)
    return 1 if errors else 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    land_cmd = commands.add_parser("land", help="an object created: put it in S3 and deliver its event")
    land_cmd.add_argument("url", metavar="s3://BUCKET/KEY")
    land_cmd.add_argument("--body", default="", help="the object's content (default: empty)")
    poll_cmd = commands.add_parser("poll", help="run the poller once, then deliver what is due on the dispatch queue")
    reconcile_cmd = commands.add_parser("reconcile", help="a route's reconciliation pass, as its schedule runs it")
    reconcile_cmd.add_argument("route", metavar="ROUTE")
    for command in (land_cmd, poll_cmd, reconcile_cmd):
        command.add_argument("--env-file", type=Path, default=ENV_FILE, help="the running stack's env file")
        command.add_argument("--verbose", action="store_true", help="show the functions' JSON logs")
    args = parser.parse_args(argv)
    if not args.verbose:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    try:
        env = use_stack(args.env_file.resolve())
    except NoStack as error:
        print(f"python -m local.stack {args.command}: {error}", file=sys.stderr)
        return 2
    if args.command == "poll":
        return poll(env)
    if args.command == "reconcile":
        return reconcile(args.route, env)
    from polytrigger.tools.explain import ExplainInputError

    try:
        return land(args.url, env, args.body.encode("utf-8"))
    except ExplainInputError as error:
        land_cmd.error(str(error))  # the usage and the problem; exits 2
