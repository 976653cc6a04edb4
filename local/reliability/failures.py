"""Reliability scenarios for what waits in the dead-letter queue: refusals parked, then re-driven; stale events.

Both re-drive with the real `polytrigger redrive` (`polytrigger.tools.redrive.redrive`) from the
stack's dead-letter queue. `InProcessLambda` plays Lambda's asynchronous `invoke` for the S3
function: it answers 202 and runs the real handler as `AsyncInvoker` does (a failure is retried,
then parked again).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.reliability.harness import BUCKET, MODEL, RETRY_SUFFIX, Harness, Row, Run, s3_event
from local.stack.lambda_async import AsyncInvoker

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:"  # the functions AsyncInvoker plays
REFUSALS = (400, 403, 404, 422)
GONE_BULK = "6e6f6e65-0000-4000-8000-676f6e652121"  # a sync the routes name and Polytomic does not know (yet)
STALE_ROUTES = f"""
routes:
  - name: landing
    s3: {{bucket: {BUCKET}, key: "in/**"}}
    syncs:
      - id: {MODEL}
      - id: {GONE_BULK}
        type: bulk
        fetch_mode: incremental
"""


@dataclass
class InProcessLambda:
    """Lambda's asynchronous invoke of the stack's functions, running the real handlers in this process."""

    invokers: dict[str, AsyncInvoker]  # by function name
    run: Run
    invoked: int = 0

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        from polytrigger.tools.redrive_sources import function_name

        assert kwargs["InvocationType"] == "Event"
        event = json.loads(kwargs["Payload"])
        self.invoked += 1
        self.run.add(event, self.invokers[function_name(kwargs["FunctionName"])].invoke(event))
        return {"StatusCode": 202, "Payload": b""}


def redrive(h: Harness, run: Run, *, force: bool = False, max_messages: int | None = None) -> Any:
    """`polytrigger redrive --stack ...` on the stack's dead-letter queue (--force, if asked)."""
    from polytrigger.handlers import schedule
    from polytrigger.tools.redrive import Policy
    from polytrigger.tools.redrive import redrive as tool

    invokers = {
        "polytrigger-s3": h.invoker(),
        "polytrigger-schedule": h.invoker(schedule.handler, function_name="polytrigger-schedule"),
    }
    lam = InProcessLambda(invokers, run)
    policy = Policy(functions=tuple(FUNCTION + name for name in invokers), force=force, stack="polytrigger")
    lines: list[str] = []
    summary = tool(
        h.dlq_url,
        sqs=h.sqs,
        lambda_api=lam,
        policy=policy,
        echo=lines.append,
        wait_seconds=0,
        max_messages=max_messages,
    )
    return summary, lam


def permanent_failures(h: Harness) -> Row:
    """A fraction of starts are refused (400/403/404/422): each event is parked with the reason, then re-driven."""
    with h.scenario() as run:
        started = time.monotonic()
        fake = h.stack.fake
        fake.set_random_faults(0.2, seed=h.seed + 3, statuses=REFUSALS, drop=False, path_contains="/executions")
        invoker = h.invoker()
        run.events = [s3_event("refused", i) for i in range(h.n(200, minimum=20))]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for event, delivery in zip(run.events, pool.map(invoker.invoke, run.events), strict=True):
                run.add(event, delivery)
        statuses = Counter(str(call.status) for call in fake.calls if call.status in REFUSALS)
        parked = h.peek_parked(run)
        refused = sum(1 for record in parked if record["responsePayload"]["errorMessage"].startswith("refused: "))
        fake.clear_faults()  # the cause is fixed
        summary, _ = redrive(h, run)
        fresh = sum(1 for e in fake.executions() if RETRY_SUFFIX.search(e.idempotency_key or ""))
        notes = (
            f"{len(parked)} events parked ({refused} with Polytomic's refusal: "
            f"{', '.join(f'{n} x {s}' for s, n in sorted(statuses.items()))}); fixed, re-driven"
            f" ({summary.count('re-driven')} re-driven): {fresh} started under a fresh key"
        )
        row = h.count("permanent failure parked", run, started, notes)
        row.facts = {
            "parked_first": len(parked),
            "refused": refused,
            "redriven": summary.count("re-driven"),
            "fresh": fresh,
        }
        return row


def stale_redrive(h: Harness) -> Row:
    """Events parked for longer than the dedup TTL: re-driving refuses them, so no sync starts twice."""
    from polytrigger.tools.redrive import TOO_OLD
    from polytrigger.tools.redrive_sources import DEFAULT_DEDUP_TTL

    with h.scenario(STALE_ROUTES) as run:
        started = time.monotonic()
        fake = h.stack.fake
        invoker = h.invoker()
        two_days_ago = datetime.now(UTC) - timedelta(seconds=2 * DEFAULT_DEDUP_TTL)
        run.events = [s3_event("stale", i, at=two_days_ago) for i in range(h.n(100, minimum=5))]
        for event in run.events:  # the model sync starts; the bulk sync is refused (404): parked
            run.add(event, invoker.invoke(event))
        parked = h.peek_parked(run)
        # The days pass: the dedup records expire (IdempotencyTtlSeconds), and Polytomic forgets
        # the Idempotency-Keys (24 h). Then the cause is fixed.
        h.stack.clear_table()
        fake._idempotency.clear()
        fake.add_sync(GONE_BULK, kind="bulk")
        summary, lam = redrive(h, run)
        row = h.count("re-drive past the dedup TTL", run, started)
        # The control: what the refusal prevents. One message forced through starts its model sync again.
        h.park_again(parked[0])
        forced, _ = redrive(h, run, force=True, max_messages=1)
        again = len(fake.executions(MODEL)) - len(run.events)
        row.notes = (
            f"{summary.count('left')} left in the queue ({summary.left(TOO_OLD)} too old), {lam.invoked} invoked;"
            f" control: --force re-drove {forced.count('re-driven')} and its model sync started {again} more time(s)"
        )
        row.facts = {"left_too_old": summary.left(TOO_OLD), "invoked": lam.invoked, "forced_again": again}
        return row
