"""Reconciliation: what a pass over a route's prefix costs in S3 list calls and DynamoDB reads, and what
reconciliation costs a month.

The real reconciliation handler runs on the local stack (moto S3 with real listings, DynamoDB Local,
the fake Polytomic). Every S3 and DynamoDB request is counted at botocore, DynamoDB's with the capacity
units it reports (`ReturnConsumedCapacity: TOTAL`).

- **an idle bucket**: 10,000 objects under the route's prefix, all landed before the last pass less
  the overlap (moto's LastModified set back a day): the pass must list them (1 call per 1,000 keys)
  and read nothing from DynamoDB (what is older than the checkpoint costs no read);
- **10,000 new objects, no event**: the pass lists them, reads their landings (1 `BatchGetItem` per
  100 keys) and finds every one; then the next pass, 15 minutes later, over the same objects, now
  handled and still within the overlap: the same reads, no write but the cursor's;
- **a month at a 15-minute period, 1 million objects under the routed prefixes**: the model below,
  from the counts measured here (docs/performance.md states its assumptions).
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.budget import DYNAMODB_READS, DYNAMODB_WRITES
from benchmarks.cost import GB_SECOND
from benchmarks.report import Row, arguments, count, per_unit, reference, show
from local.stack import LocalStack
from local.stack.objects import backdate, put_objects

BUCKET = "bench-reconciled"
SYNC = "9a7e0000-be4c-4f00-8a00-00000000000a"
OBJECTS, QUICK_OBJECTS = 10_000, 1_000
PAGE = 1000  # keys per ListObjectsV2 page
BATCH = 100  # keys per BatchGetItem
# The month's model (us-east-1, at the time of writing).
LIST_PRICE = 0.005 / 1000  # S3 LIST requests, per request
READ_PRICE = 0.25 / 1_000_000  # DynamoDB on-demand, per read request unit
PERIOD_MINUTES, OVERLAP_MINUTES = 15, 60
PASSES_A_MONTH = 30 * 24 * 60 // PERIOD_MINUTES
BUCKET_OBJECTS = 1_000_000
NEW_A_DAY = 10_000  # objects landing a day under the routed prefixes (assumed)
LIST_SECONDS = 0.06  # one ListObjectsV2 page of 1,000 keys from Lambda (assumed; moto's is no guide)
MEMORY_GB = 0.25  # the function's 256 MB
MIN_RRU = 0.5  # DynamoDB's least charge for an eventually consistent read of one key
COST_TARGET = 1.10  # everything but the listing itself at most a tenth of the listing's cost


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    units: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def counted() -> Iterator[Tally]:
    """Every S3 ListObjectsV2 and DynamoDB read or write made meanwhile (reads with their units)."""
    from botocore.client import BaseClient

    tally = Tally()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private: botocore's stubs do not have it

    def asked(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        if service == "s3" and operation == "ListObjectsV2":
            with tally.lock:
                tally.calls["s3 list"] += 1
            return original(self, operation, params)
        kind = "read" if operation in DYNAMODB_READS else "write" if operation in DYNAMODB_WRITES else ""
        if service != "dynamodb" or not kind:
            return original(self, operation, params)
        units = 0.0
        try:
            answer = original(self, operation, {"ReturnConsumedCapacity": "TOTAL", **params})
            consumed = answer.get("ConsumedCapacity") or []
            units = sum(
                float(e.get("CapacityUnits", 0.0)) for e in (consumed if isinstance(consumed, list) else [consumed])
            )
            return answer
        finally:
            with tally.lock:
                tally.calls[f"dynamodb {kind}"] += 1
                tally.units[f"dynamodb {kind}"] += units

    setattr(BaseClient, "_make_api_call", asked)  # noqa: B010
    try:
        yield tally
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


@dataclass
class Pass:
    tally: Tally
    answer: dict[str, Any]
    seconds: float


class Reconciler:
    """The reconciliation handler on the local stack, its routes (`idle`, `new`) and a clock set ahead."""

    def __init__(self, stack: LocalStack, routes: Path, run: str) -> None:
        self.stack, self.routes, self.run = stack, routes, run
        self.ahead = 600.0  # seconds past the uploads: none is too young for its event to be on the way

    def now(self) -> float:
        return time.time() + self.ahead

    def pass_over(self, route: str) -> Pass:
        from local.stack.lambda_context import LocalContext
        from polytrigger.handlers import reconciler

        began = time.monotonic()
        with counted() as tally:
            answer = reconciler.handler(
                {"reconcile": route}, LocalContext(function_name="polytrigger-reconciler", timeout_seconds=900)
            )
        if answer.get("state") != "complete":
            raise RuntimeError(f"the pass over {route} did not complete: {answer.get('state')}")
        return Pass(tally, answer, time.monotonic() - began)


@contextlib.contextmanager
def reconciler_bench(stack: LocalStack | None = None) -> Iterator[Reconciler]:
    from aws_lambda_powertools.utilities import parameters

    from polytrigger import bootstrap
    from polytrigger.observability import logger

    with contextlib.ExitStack() as exits:
        if stack is None:
            stack = exits.enter_context(LocalStack())
        directory = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="polytrigger-bench-reconcile-")))
        run = uuid.uuid4().hex[:8]
        routes = directory / "routes.yaml"
        routes.write_text(
            "routes:\n"
            + "".join(
                f"  - name: {name}\n    s3: {{bucket: {BUCKET}, key: '{name}-{run}/**', reconcile: 15m}}\n"
                f"    syncs: [{{id: {SYNC}}}]\n"
                for name in ("idle", "new")
            ),
            encoding="utf-8",
        )
        exits.callback(stack.reset)
        stack.reset()
        stack.fake.add_sync(SYNC, kind="model")
        s3 = stack.client("s3")
        if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket=BUCKET)
        bench = Reconciler(stack, routes, run)
        handler = logger.registered_handler
        exits.enter_context(stack.environ(ROUTES_FILE=str(routes), POWERTOOLS_LOG_LEVEL="CRITICAL"))
        exits.enter_context(contextlib.redirect_stdout(io.StringIO()))
        previous = handler.setStream(io.StringIO())  # type: ignore[attr-defined]
        exits.callback(handler.setStream, previous)  # type: ignore[attr-defined]
        bootstrap.use_clock(bench.now)
        exits.callback(bootstrap.use_clock)
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        yield bench


def measure(stack: LocalStack | None, objects: int) -> dict[str, Pass]:
    with reconciler_bench(stack) as bench:
        s3 = bench.stack.client("s3")
        idle = put_objects(s3, BUCKET, [f"idle-{bench.run}/part-{index:05d}.csv" for index in range(objects)])
        long_ago = datetime.now(UTC) - timedelta(days=1)
        for key in idle:
            backdate(BUCKET, key, long_ago)
        put_objects(s3, BUCKET, [f"new-{bench.run}/part-{index:05d}.csv" for index in range(objects)])
        found = {"idle": bench.pass_over("idle"), "new": bench.pass_over("new")}
        bench.ahead += PERIOD_MINUTES * 60
        found["next"] = bench.pass_over("new")
        found["starts"] = Pass(Tally(), {"starts": len(bench.stack.fake.executions(SYNC))}, 0.0)
        return found


def monthly(list_calls_per_page: float, reads_per_object: float, rru_per_object: float) -> dict[str, float]:
    """The month of a 15-minute reconciliation over BUCKET_OBJECTS objects, from the measured counts."""
    pages = math.ceil(BUCKET_OBJECTS / PAGE)
    recent = NEW_A_DAY * (PERIOD_MINUTES + OVERLAP_MINUTES) / (24 * 60)  # within checkpoint less overlap
    listing = PASSES_A_MONTH * pages * list_calls_per_page * LIST_PRICE
    reads = PASSES_A_MONTH * recent * rru_per_object * READ_PRICE
    compute = PASSES_A_MONTH * pages * LIST_SECONDS * MEMORY_GB * GB_SECOND
    return {
        "listing": listing,
        "reads": reads,
        "compute": compute,
        "total": listing + reads + compute,
        "floor": PASSES_A_MONTH * pages * LIST_PRICE,
        "read_requests": PASSES_A_MONTH * recent * reads_per_object,
    }


def rows(quick: bool, stack: LocalStack | None = None) -> list[Row]:
    objects = QUICK_OBJECTS if quick else OBJECTS
    f = measure(stack, objects)
    idle, new, after = f["idle"].tally, f["new"].tally, f["next"].tally
    pages = math.ceil(objects / PAGE)
    batches = math.ceil(objects / BATCH)
    found = int(f["new"].answer["found"])
    starts = int(f["starts"].answer["starts"])
    # The landings read per key (DynamoDB bills an eventually consistent read of a key at least 0.5 RRU,
    # an absent one too, which DynamoDB Local reports as 0): the next pass's, whose keys all have one.
    rru = max(after.units["dynamodb read"] / objects, MIN_RRU)
    month = monthly(new.calls["s3 list"] / pages, new.calls["dynamodb read"] / objects, rru)
    n = f"{objects:,}"
    return [
        per_unit(f"reconciliation, idle bucket ({n} objects, none since the checkpoint): S3 list calls per page of 1,000 keys", idle.calls["s3 list"], pages, 1),
        Row(f"reconciliation, idle bucket ({n} objects): DynamoDB reads per pass", str(idle.calls["dynamodb read"]), "-", "-", "= 0 (nothing older than the checkpoint is read)", idle.calls["dynamodb read"] == 0),
        Row(f"reconciliation, idle bucket ({n} objects): DynamoDB writes per pass (the cursor: taken, moved, finished)", str(idle.calls["dynamodb write"]), "-", "-", f"= {pages + 1} (1 per page, and its taking)", idle.calls["dynamodb write"] == pages + 1),
        per_unit(f"reconciliation, {n} new objects, no event: S3 list calls per page of 1,000 keys", new.calls["s3 list"], pages, 1),
        Row(f"reconciliation, {n} new objects, no event: DynamoDB read requests per pass", str(new.calls["dynamodb read"]), f"{batches} (1 BatchGetItem per {BATCH} keys)", "-", f"<= {batches + 1} (the keys' batches, and a cursor read at most)", new.calls["dynamodb read"] <= batches + 1),
        reference(f"reconciliation, the next pass over the same {n}: read units per object (the model's)", f"{rru:g} ({after.units['dynamodb read']:g}/{objects} reported)", "0.5 (an eventually consistent read of <= 4 KB)"),
        Row(f"reconciliation, {n} new objects, no event: objects found", str(found), str(objects), "-", f"= {objects}", found == objects),
        Row(f"reconciliation, {n} new objects, no event: starts (one per page, as one event of {PAGE} objects)", str(starts), str(pages), "-", f"<= {pages}", 0 < starts <= pages),
        reference(f"reconciliation, {n} new objects, no event: DynamoDB writes per object found", count(new.calls["dynamodb write"], objects), "2 (its landing kept, then marked handled) + each start's"),
        Row(f"reconciliation, the next pass over the same {n} (handled, within the overlap): DynamoDB read requests", str(after.calls["dynamodb read"]), f"{batches}", "-", f"<= {batches + 1}", after.calls["dynamodb read"] <= batches + 1),
        Row(f"reconciliation, the next pass over the same {n}: objects found, DynamoDB writes", f"{f['next'].answer['found']}, {after.calls['dynamodb write']}", "-", "-", f"= 0, the cursor's {pages + 1}", f["next"].answer["found"] == 0 and after.calls["dynamodb write"] == pages + 1),
        reference("reconciliation, idle bucket: local pass time per 1,000 objects (moto S3)", f"{f['idle'].seconds / pages * 1000:.0f} ms", f"model: {LIST_SECONDS * 1000:.0f} ms per page on AWS"),
        Row(
            "reconciliation, a month at 15 minutes, 1M objects under the routed prefixes (10,000 new a day)",
            f"${month['total']:.2f} (S3 LIST ${month['listing']:.2f}, DynamoDB ${month['reads']:.3f}, Lambda ${month['compute']:.2f})",
            f"${month['floor']:.2f} (S3 LIST alone: 1 call per 1,000 keys)",
            f"{month['total'] / month['floor']:.3f}x",
            f"<= {COST_TARGET:g}x (the listing is the cost)",
            month["total"] <= month["floor"] * COST_TARGET,
        ),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(
        "benchmarks.reconciliation", __doc__, f"{QUICK_OBJECTS:,} objects instead of {OBJECTS:,}"
    ).parse_args(argv)
    return show(rows(args.quick))


if __name__ == "__main__":
    sys.exit(main())
