"""Gates: what a gated route costs in DynamoDB per object, and how soon its partition starts once complete.

The real S3 handler runs on the local stack (DynamoDB Local, moto S3 for the manifest, the fake
Polytomic). Every DynamoDB request is counted at botocore with the capacity units DynamoDB reports
for it (`ReturnConsumedCapacity: TOTAL`), and sorted by the items it touches: the gate's own
(`gate#`, `part#`, `need#`, `got#`) apart from the landing (`file#`, one write per file, whatever
the route) and the start's (dedup record, run ledger: the same as an ungated start's).

- **per object, marker + 40 parts**: 40 parts then the marker, each a new upload, in a fresh
  partition; the gate's requests (reads, writes) and units per object, then the same objects
  delivered again (a duplicate counts nothing, and costs less);
- **per object, manifest**: a manifest of 40 files, then the files (each one's count moves the
  manifest's count too: a transaction of three writes);
- **the completing object to the start**: the marker's own invocation must answer `started` (no
  poll, no queue between: 0 dispatch messages sent), timed against an ungated route's single
  object start in the same rounds (each round a fresh partition, the ratio the median of the
  rounds'). A transactional write costs 2 WCU per item of up to 1 KB; the units column shows what
  DynamoDB Local reported, which follows that rule.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.budget import DYNAMODB_READS, DYNAMODB_WRITES
from benchmarks.fanout import BUCKET, SINGLE_PREFIX, SINGLE_SYNC, Bench, s3_event
from benchmarks.report import Row, against, arguments, ms, per_unit, reference, show
from local.stack import LocalStack

PARTS = 40
ORDERS_SYNC = "9a7e0000-be4c-4f00-8a00-000000000001"
VENDOR_SYNC = "9a7e0000-be4c-4f00-8a00-000000000002"
ROUNDS = 9  # paired rounds (ungated single object, completing object) behind the latency ratio
QUICK_ROUNDS = 2
WARM_UPS = 3
LATENCY_TARGET = 3.0  # the completing object's invocation against an ungated start's: the gate's few requests more
# The gate's requests for an object that does not complete its partition: the read before counting,
# the counting transaction, the read after (the partition as it now is).
READS_PER_OBJECT = 2
WRITES_PER_OBJECT = 1
# A listed file's manifest entry besides: its need# read, the entry's counting transaction, the read after.
MANIFEST_ENTRY = 3
GATE_ITEMS = ("gate#", "part#", "need#", "got#")


def routes_yaml() -> str:
    return (
        "routes:\n"
        "  - name: bench-single\n"
        f"    s3: {{bucket: {BUCKET}, key: '{SINGLE_PREFIX}*.csv'}}\n"
        f"    syncs: [{{id: {SINGLE_SYNC}}}]\n"
        "  - name: bench-orders\n"
        f"    s3: {{bucket: {BUCKET}, key: 'orders/dt={{date}}/**'}}\n"
        f"    gate: {{marker: 'orders/dt={{date}}/_SUCCESS', at_least: {{objects: {PARTS}}}}}\n"
        f"    syncs: [{{id: {ORDERS_SYNC}}}]\n"
        "  - name: bench-vendor\n"
        f"    s3: {{bucket: {BUCKET}, key: 'vendor/{{date}}/**'}}\n"
        "    gate: {manifest: {key: 'vendor/{date}/manifest.json', format: json}}\n"
        f"    syncs: [{{id: {VENDOR_SYNC}}}]\n"
    )


@dataclass
class Tally:
    """DynamoDB requests and units, by whose items they touch ("gate", "landing" or "start") and read/write."""

    requests: Counter[str] = field(default_factory=Counter)
    units: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    operations: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, owner: str, kind: str) -> tuple[int, float]:
        return self.requests[f"{owner} {kind}"], self.units[f"{owner} {kind}"]


def _ids(operation: str, params: dict[str, Any]) -> list[str]:
    """The item ids a request names (a transaction's, a batch's, or its one key's)."""
    found: list[str] = []
    for item in params.get("TransactItems", []):
        for body in item.values():
            found.append(str((body.get("Key") or body.get("Item") or {}).get("id", {}).get("S", "")))
    for requests in params.get("RequestItems", {}).values():
        if isinstance(requests, dict):  # BatchGetItem
            found += [str(key["id"]["S"]) for key in requests.get("Keys", [])]
        else:  # BatchWriteItem
            found += [str(r.get("PutRequest", {}).get("Item", {}).get("id", {}).get("S", "")) for r in requests]
    key = params.get("Key") or params.get("Item")
    if key:
        found.append(str(key.get("id", {}).get("S", "")))
    del operation
    return found


def _owner(ids: list[str]) -> str:
    if any(i.startswith(GATE_ITEMS) for i in ids):
        return "gate"
    if any(i.startswith("file#") for i in ids):
        return "landing"
    return "start"


@contextlib.contextmanager
def counted() -> Iterator[Tally]:
    """Every DynamoDB request made meanwhile, with the units DynamoDB reports for it, by owner and kind."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    tally = Tally()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private: botocore's stubs do not have it

    def asked(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        kind = "read" if operation in DYNAMODB_READS else "write" if operation in DYNAMODB_WRITES else ""
        if self.meta.service_model.service_name != "dynamodb" or not kind:
            return original(self, operation, params)
        owner = _owner(_ids(operation, params))
        units = 0.0
        try:
            answer = original(self, operation, {"ReturnConsumedCapacity": "TOTAL", **params})
            consumed = answer.get("ConsumedCapacity") or []
            units = sum(
                float(e.get("CapacityUnits", 0.0)) for e in (consumed if isinstance(consumed, list) else [consumed])
            )
            return answer
        except ClientError:  # a refused condition: still a request (DynamoDB bills it a write unit)
            raise
        finally:
            with tally.lock:
                tally.requests[f"{owner} {kind}"] += 1
                tally.units[f"{owner} {kind}"] += units
                tally.operations[f"{owner} {operation}"] += 1

    setattr(BaseClient, "_make_api_call", asked)  # noqa: B010
    try:
        yield tally
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


@contextlib.contextmanager
def gate_bench(stack: LocalStack | None = None) -> Iterator[Bench]:
    """A local stack (started here unless given) with the gated routes, their syncs and the bucket."""
    with contextlib.ExitStack() as exits:
        if stack is None:
            stack = exits.enter_context(LocalStack())
        directory = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="polytrigger-bench-gates-")))
        routes = directory / "routes.yaml"
        routes.write_text(routes_yaml(), encoding="utf-8")
        exits.callback(stack.reset)
        stack.reset()
        bench = Bench(stack, routes)
        for sync in (ORDERS_SYNC, VENDOR_SYNC):
            stack.fake.add_sync(sync, kind="model")
        s3 = stack.client("s3")
        if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket=BUCKET)
        yield bench


def partition(prefix: str = "orders/dt=") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def statuses(answer: dict[str, Any]) -> list[str]:
    return [outcome["status"] for outcome in answer.get("outcomes", [])]


def marker_partition(invoke: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """40 parts then the marker in a fresh partition, then all 41 again (duplicates): requests by owner."""
    folder = partition()
    events = [s3_event(f"{folder}/part-{index:03d}.parquet") for index in range(PARTS)]
    marker = s3_event(f"{folder}/_SUCCESS")
    with counted() as waiting:
        for event in events:
            if statuses(invoke(event)):
                raise RuntimeError("a part started the gated route before its marker")
    with counted() as completing:
        answer = invoke(marker)
    if statuses(answer) != ["started"]:
        raise RuntimeError(f"the marker's own invocation: {answer.get('outcomes')}")
    with counted() as again:
        for event in [*events, marker]:
            if statuses(invoke(event)):
                raise RuntimeError("a duplicate started the gated route again")
    return {"waiting": waiting, "completing": completing, "again": again}


def manifest_partition(stack: LocalStack, invoke: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """A manifest of 40 files, then the files: requests by owner; the last file must start the route."""
    folder = partition("vendor/")
    names = [f"file-{index:03d}.csv" for index in range(PARTS)]
    body = json.dumps([{"key": name} for name in names]).encode()
    stack.client("s3").put_object(Bucket=BUCKET, Key=f"{folder}/manifest.json", Body=body)
    with counted() as reading:
        invoke(s3_event(f"{folder}/manifest.json"))
    with counted() as waiting:
        for name in names[:-1]:
            if statuses(invoke(s3_event(f"{folder}/{name}"))):
                raise RuntimeError("a file started the manifest route before the last one")
    with counted() as completing:
        answer = invoke(s3_event(f"{folder}/{names[-1]}"))
    if statuses(answer) != ["started"]:
        raise RuntimeError(f"the last file's own invocation: {answer.get('outcomes')}")
    return {"reading": reading, "waiting": waiting, "completing": completing}


def latency(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], rounds: int, warm_ups: int = WARM_UPS
) -> tuple[list[float], list[float], int]:
    """Paired rounds: an ungated single object's start, then a partition's completing object (its marker);
    seconds each, and the dispatch messages sent meanwhile (none: nothing waits for a poll)."""
    from local.stack.dispatch_pump import SentLog

    singles: list[float] = []
    completions: list[float] = []
    with SentLog().recording() as log:
        for number in range(warm_ups + rounds):
            folder = partition()
            for index in range(PARTS):
                invoke(s3_event(f"{folder}/part-{index:03d}.parquet"))
            single = s3_event(f"{SINGLE_PREFIX}latency-{uuid.uuid4().hex[:8]}.csv")
            began = time.perf_counter()
            alone = invoke(single)
            middle = time.perf_counter()
            completed = invoke(s3_event(f"{folder}/_SUCCESS"))
            ended = time.perf_counter()
            if statuses(alone) != ["started"] or statuses(completed) != ["started"]:
                raise RuntimeError(f"round {number}: {alone.get('outcomes')} / {completed.get('outcomes')}")
            if number >= warm_ups:
                singles.append(middle - began)
                completions.append(ended - middle)
    return singles, completions, len(log.sent)


def measure(stack: LocalStack | None = None, rounds: int = ROUNDS, warm_ups: int = WARM_UPS) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with gate_bench(stack) as bench, bench.container() as invoke:
        invoke(s3_event(f"{SINGLE_PREFIX}warm.csv"))
        figures["marker"] = marker_partition(invoke)
        figures["manifest"] = manifest_partition(bench.stack, invoke)
        figures["singles"], figures["completions"], figures["queued"] = latency(invoke, rounds, warm_ups)
    return figures


def _units(total: float, objects: int) -> str:
    return f"{total / objects:.3g} ({total:g}/{objects})"


def rows(quick: bool, stack: LocalStack | None = None, *, warm_ups: int = WARM_UPS) -> list[Row]:
    """Counts are the same either way; `quick` times fewer rounds (`warm_ups`: fewer untimed ones, for the test)."""
    f = measure(stack, QUICK_ROUNDS if quick else ROUNDS, warm_ups)
    marker, vendor = f["marker"], f["manifest"]
    waiting, completing, again = marker["waiting"], marker["completing"], marker["again"]
    reads, read_units = waiting.of("gate", "read")
    writes, write_units = waiting.of("gate", "write")
    done_reads, _ = completing.of("gate", "read")
    done_writes, done_write_units = completing.of("gate", "write")
    total_reads, total_writes = reads + done_reads, writes + done_writes
    objects = PARTS + 1
    dup_reads, _ = again.of("gate", "read")
    dup_writes, _ = again.of("gate", "write")
    m_reads, _ = vendor["waiting"].of("gate", "read")
    m_writes, m_write_units = vendor["waiting"].of("gate", "write")
    r_reads, _ = vendor["reading"].of("gate", "read")
    r_writes, r_units = vendor["reading"].of("gate", "write")
    files = PARTS - 1
    ratio_rows = against(
        "gates: completing object's invocation (starts the syncs) vs an ungated object's start",
        f["completions"],
        f["singles"],
        "(ungated single object)",
        LATENCY_TARGET,
    )
    return [
        per_unit(f"gates, marker + {PARTS} parts: gate reads per waiting object", reads, PARTS, READS_PER_OBJECT),
        per_unit(
            f"gates, marker + {PARTS} parts: gate write requests per waiting object", writes, PARTS, WRITES_PER_OBJECT
        ),
        reference(
            f"gates, marker + {PARTS} parts: gate WCU per waiting object (1 transaction of 2 items: 2 WCU per KB of each)",
            _units(write_units, PARTS),
            f"{_units(read_units, PARTS)} RCU",
        ),
        per_unit(
            f"gates, marker + {PARTS} parts: gate requests per object, whole partition (fire + settle once)",
            total_reads + total_writes,
            objects,
            READS_PER_OBJECT + WRITES_PER_OBJECT + 1,
            at_most=True,
        ),
        reference(
            f"gates, marker + {PARTS} parts: the completing object's gate requests",
            f"{done_reads} reads, {done_writes} writes ({done_write_units:g} WCU)",
            f"{READS_PER_OBJECT} reads, {WRITES_PER_OBJECT} write per waiting object",
        ),
        per_unit(
            f"gates, marker + {PARTS} parts: gate writes per duplicate delivery (counts nothing)",
            dup_writes,
            objects,
            WRITES_PER_OBJECT,
            at_most=True,
        ),
        reference(
            f"gates, marker + {PARTS} parts: gate reads per duplicate delivery",
            f"{dup_reads / objects:.3g} ({dup_reads}/{objects})",
            "-",
        ),
        per_unit(
            f"gates, manifest of {PARTS}: gate requests per listed file (count, then its entry's)",
            m_reads + m_writes,
            files,
            READS_PER_OBJECT + WRITES_PER_OBJECT + MANIFEST_ENTRY,
            at_most=True,
        ),
        reference(
            f"gates, manifest of {PARTS}: gate reads / writes per listed file",
            f"{m_reads / files:.3g} / {m_writes / files:.3g} ({_units(m_write_units, files)} WCU)",
            f"manifest read: {r_reads} reads, {r_writes} writes ({r_units:g} WCU)",
        ),
        Row(
            "gates: the completing object's own invocation answers",
            "started",
            "-",
            "-",
            "= started",
            True,  # `measure` stops with the outcomes otherwise
        ),
        Row(
            "gates: dispatch messages between the completing object and its start",
            str(f["queued"]),
            "-",
            "-",
            "= 0 (no polling)",
            f["queued"] == 0,
        ),
        ratio_rows,
        reference(
            "gates: completing object's invocation, median",
            ms(statistics.median(f["completions"]), 1),
            f"{ms(statistics.median(f['singles']), 1)} ungated",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments("benchmarks.gates", __doc__, f"{QUICK_ROUNDS} latency rounds instead of {ROUNDS}").parse_args(argv)
    return show(rows(args.quick))


if __name__ == "__main__":
    sys.exit(main())
