"""Reliability scenario of reconciliation: uploads whose events were lost, found by listing the bucket.

One route reconciles its prefix every 15 minutes (`s3.reconcile: 15m`). N objects land in moto's S3
(real listings); 10 % of their events are lost, the rest reach the real S3 function in batches, a
fifth of those batches twice (S3 is at-least-once). Then the reconciliation schedule fires every 15
minutes of the stack's clock, each firing delivered twice, while DynamoDB throttling strikes a share
of the landings' and the cursor's requests, and one pass is made to crash after two pages (a tenth of
the uploads a page, so a pass has ten). A failed pass is not retried: the next firing goes on from the cursor.

Counted: an object whose event was lost and that no pass found ("found by reconciliation", WARNING),
or that no run of the sync covers (created at or after it landed), is *lost*; an Idempotency-Key that
made two runs, or an object found although its event came, is *doubled*. The lines a pass that failed
before marking its objects handled tells again are counted apart ("told again": their start was
`duplicate`).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from local.reliability.gates import Faults, FaultyTable
from local.reliability.harness import BUCKET, Harness, Row
from local.reliability.queue import DispatchQueues
from local.stack.objects import notification, put_objects

SYNC = "10570000-0000-4000-8000-000000000001"
PREFIX = "lost"
LOST_SHARE = 0.10
THROTTLE = 0.03  # of the landings' and the cursor's requests, during passes
PERIOD = 900
PAGES = 10  # a pass over all the uploads lists this many pages (100 keys a page at full scale)
FIRINGS = 12  # at most; the run stops once a pass completes with nothing new to find and nothing failed
FOUND = "found by reconciliation, no event had arrived: "
ROUTES = f"""
routes:
  - name: lost
    s3: {{bucket: {BUCKET}, key: "{PREFIX}/**", reconcile: 15m}}
    syncs: [{{id: {SYNC}}}]
"""


@contextlib.contextmanager
def injected(faults: Faults) -> Iterator[None]:
    """Every landings and cursor adapter made meanwhile talks to DynamoDB through `FaultyTable`."""
    from polytrigger.dispatch.landings import DynamoLandings
    from polytrigger.reconciliation.cursor import DynamoCursors

    made = {cls: cls.__init__ for cls in (DynamoLandings, DynamoCursors)}

    def faulty(cls: Any) -> Callable[..., None]:
        def init(self: Any, client: Any, *args: Any, **kwargs: Any) -> None:
            made[cls](self, FaultyTable(client, faults), *args, **kwargs)

        return init

    for cls in made:
        cls.__init__ = faulty(cls)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for cls, init in made.items():
            cls.__init__ = init  # type: ignore[method-assign]


@contextlib.contextmanager
def crash_once(after_pages: int) -> Iterator[dict[str, int]]:
    """The first pass to list more than `after_pages` pages dies there (as a Lambda that timed out would)."""
    from polytrigger.reconciliation.listing import ListingUnavailable, S3Listing

    real, state = S3Listing.page, {"pages": 0, "crashes": 0}

    def page(self: S3Listing, *args: Any, **kwargs: Any) -> Any:
        state["pages"] += 1
        if state["pages"] == after_pages + 1 and not state["crashes"]:
            state["crashes"] += 1
            raise ListingUnavailable("the pass died here")
        return real(self, *args, **kwargs)

    S3Listing.page = page  # type: ignore[method-assign]
    try:
        yield state
    finally:
        S3Listing.page = real  # type: ignore[method-assign]


@dataclass
class Scene:
    """What the scenario did, for the count."""

    began: float
    faults: Faults
    logs: io.StringIO = field(default_factory=io.StringIO)
    landed: dict[str, Any] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    executions: list[Any] = field(default_factory=list)
    twice: int = 0  # event batches delivered twice
    firings: int = 0
    failed: int = 0
    crashes: int = 0


def events_lost_found_by_reconciliation(h: Harness) -> Row:
    """N uploads, 10 % of their events lost, the rest delivered (some twice); reconciliation every 15
    minutes, each firing twice, DynamoDB throttled, one pass crashing: every lost one found once, no run twice."""
    from local.stack.dispatch_pump import StackClock
    from polytrigger import bootstrap
    from polytrigger.observability import logger

    rng = random.Random(h.seed + 21)
    scene = Scene(time.monotonic(), Faults(random.Random(h.seed + 22), throttle=THROTTLE))
    queues, out, clock = DispatchQueues.create(h.sqs), io.StringIO(), StackClock(h.stack.fake)
    handler, level = logger.registered_handler, logger.log_level
    s3_client = h.stack.client("s3")
    if BUCKET not in [one["Name"] for one in s3_client.list_buckets().get("Buckets", [])]:
        s3_client.create_bucket(Bucket=BUCKET)
    run = f"{PREFIX}/{rng.getrandbits(32):08x}"
    try:
        with (
            h.scenario(ROUTES.replace(f'"{PREFIX}/**"', f'"{run}/**"'), **queues.env()),
            contextlib.redirect_stdout(out),
        ):
            h.stack.fake.add_sync(SYNC, kind="model")
            previous = handler.setStream(scene.logs)  # type: ignore[attr-defined]
            logger.setLevel("WARNING")
            bootstrap.use_clock(clock.now, clock.sleep)
            try:
                _land(scene, s3_client, run, h.n(1000, minimum=60), rng)
                _reconcile(scene, clock)
            finally:
                bootstrap.use_clock()
                logger.setLevel(level)
                handler.setStream(previous)  # type: ignore[attr-defined]
            scene.executions = h.stack.fake.executions(SYNC)
    finally:
        queues.delete()
    return _count(scene)


def _land(scene: Scene, s3_client: Any, run: str, count: int, rng: random.Random) -> None:
    """The uploads; their events, but the lost ones, through the S3 function in batches (a fifth twice)."""
    from local.stack.lambda_context import LocalContext
    from polytrigger.handlers import s3

    scene.landed = put_objects(s3_client, BUCKET, [f"{run}/part-{index:05d}.csv" for index in range(count)])
    scene.lost = set(rng.sample(sorted(scene.landed), max(1, round(count * LOST_SHARE))))
    delivered = [key for key in sorted(scene.landed) if key not in scene.lost]
    for start in range(0, len(delivered), 50):
        batch = notification(BUCKET, {key: scene.landed[key] for key in delivered[start : start + 50]})
        s3.handler(batch, LocalContext(function_name="polytrigger-s3"))
        if rng.random() < 0.2:
            s3.handler(batch, LocalContext(function_name="polytrigger-s3"))  # S3 delivers at least once
            scene.twice += 1


def _reconcile(scene: Scene, clock: Any) -> None:
    """The schedule every 15 minutes, each firing twice, faults armed, until a clean pass finds nothing more."""
    from local.stack.lambda_context import LocalContext
    from polytrigger import bootstrap
    from polytrigger.handlers import reconciler

    with injected(scene.faults), crash_once(after_pages=2) as crashed:
        bootstrap.reconciler().passes.page_size = max(5, len(scene.landed) // PAGES)
        for _ in range(FIRINGS):
            clock.advance(PERIOD)
            states = []
            for _delivery in range(2):  # the Scheduler delivers at least once
                scene.firings += 1
                scene.faults.local.armed = True
                try:
                    context = LocalContext(function_name="polytrigger-reconciler", timeout_seconds=300)
                    states.append(reconciler.handler({"reconcile": "lost"}, context)["state"])
                except Exception:  # a failed pass: the next firing goes on from the cursor
                    scene.failed += 1
                    states.append("failed")
                finally:
                    scene.faults.local.armed = False
            if states[0] == "complete" and "failed" not in states and set(_found(scene.logs)) >= scene.lost:
                break
    scene.crashes = crashed["crashes"]


def _found(logs: io.StringIO) -> list[str]:
    found = []
    for line in logs.getvalue().splitlines():
        if line.strip() and FOUND in line:
            message = json.loads(line)["message"]
            found.append(message.split(FOUND, 1)[1].split(f"s3://{BUCKET}/", 1)[1].rsplit(" (landed", 1)[0])
    return found


def _count(scene: Scene) -> Row:
    told = Counter(_found(scene.logs))
    keys = Counter(execution.idempotency_key for execution in scene.executions if execution.idempotency_key)
    created = [execution.created_at for execution in scene.executions]
    uncovered = [key for key, when in scene.landed.items() if not any(moment >= when for moment in created)]
    never_found = [key for key in scene.lost if not told[key]]
    found_with_event = [key for key in told if key not in scene.lost]
    doubled_runs = sum(n - 1 for n in keys.values() if n > 1)
    told_again = sum(n - 1 for key, n in told.items() if key in scene.lost and n > 1)
    name = (
        f"events lost, found by reconciliation: {len(scene.landed)} uploads, 10% of events lost, firings twice, faults"
    )
    found = len(set(told) & scene.lost)
    row = Row(
        name, len(scene.landed), len(scene.lost), found, scene.twice + scene.firings // 2, 0,
        len(set(never_found) | set(uncovered)), doubled_runs + len(found_with_event), time.monotonic() - scene.began,
    )  # fmt: skip
    row.facts = {
        "uploads": len(scene.landed),
        "lost_events": len(scene.lost),
        "found": found,
        "found_with_event": len(found_with_event),
        "never_found": len(never_found),
        "uncovered": len(uncovered),
        "runs": len(scene.executions),
        "doubled_runs": doubled_runs,
        "told_again": told_again,
        "firings": scene.firings,
        "failed_passes": scene.failed,
        "throttled": scene.faults.throttled,
        "crashes": scene.crashes,
        "batches_twice": scene.twice,
    }
    facts = row.facts
    row.notes = (
        f"{found} of {facts['lost_events']} lost events found, {facts['found_with_event']} found whose event came;"
        f" {facts['runs']} runs, {doubled_runs} twice; {facts['firings']} firings, {facts['failed_passes']} passes"
        f" failed ({facts['throttled']} throttled requests, {facts['crashes']} crash), {told_again} told again"
        " after a failed pass"
    )
    return row


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (events_lost_found_by_reconciliation,)
