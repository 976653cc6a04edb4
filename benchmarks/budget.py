"""API-call budget per (trigger, sync), counted where the requests go out and arrive.

The real S3 handler runs against the local stack with the fan-out route (20 syncs, run in
parallel). Polytomic calls are the requests the fake Polytomic server received (`fake.calls`);
AWS calls are counted at botocore's `Endpoint.make_request`, which every client (whoever made it,
whenever) goes through once per API call, by service and operation.

- cold container, first trigger: Secrets Manager is read at most once (then cached);
- warm container, new trigger: exactly 1 Polytomic call and at most 3 DynamoDB calls a sync, all
  writes (the dedup record's conditional in-progress put and completed update; the run ledger's one
  run item, which carries its place among the open runs in the `due` index and its coverage bound in
  the `by_sync` index), plus 1 write per landed file (its landing, `file#…`, for `polytrigger
  status`), whatever the number of syncs; no read; 0 Secrets Manager calls. With 20 syncs: 61 writes;
- warm container, the same trigger again (a duplicate delivery): 1 DynamoDB call a sync (the dedup
  record's refused put), and the landing written again (1 for the file), 0 Polytomic calls.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks.fanout import FANOUT_PREFIX, PARALLEL, SYNCS, bench_stack, s3_event
from benchmarks.report import Row, arguments, per_unit, show
from local.stack import LocalStack

DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
DYNAMODB_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


@contextlib.contextmanager
def aws_calls() -> Iterator[Counter[tuple[str, str]]]:
    """Count every botocore API call made meanwhile, as (service, operation); thread-safe."""
    from botocore.endpoint import Endpoint

    counts: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()
    original = Endpoint.make_request

    def counted(self: Endpoint, operation_model: Any, request_dict: Any) -> Any:
        with lock:
            counts[(operation_model.service_model.service_name, operation_model.name)] += 1
        return original(self, operation_model, request_dict)

    Endpoint.make_request = counted  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        Endpoint.make_request = original  # type: ignore[method-assign]


@contextlib.contextmanager
def dynamodb_capacity() -> Iterator[dict[str, float]]:
    """Capacity units DynamoDB said the calls made meanwhile consumed, as {"read": ..., "write": ...}.

    Each DynamoDB call that can is asked for `ReturnConsumedCapacity: TOTAL` (which changes nothing
    else), at `BaseClient._make_api_call`, whoever made the client; thread-safe. A call that fails
    (a conditional write refused) says nothing, so counts nothing.
    """
    from botocore.client import BaseClient

    totals = {"read": 0.0, "write": 0.0}
    lock = threading.Lock()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private: botocore's stubs do not have it

    def asked(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        kind = "read" if operation_name in DYNAMODB_READS else "write" if operation_name in DYNAMODB_WRITES else ""
        if self.meta.service_model.service_name != "dynamodb" or not kind:
            return original(self, operation_name, api_params)
        answer = original(self, operation_name, {"ReturnConsumedCapacity": "TOTAL", **api_params})
        consumed = answer.get("ConsumedCapacity") or []
        with lock:
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                totals[kind] += float(entry.get("CapacityUnits", 0.0))
        return answer

    setattr(BaseClient, "_make_api_call", asked)  # noqa: B010
    try:
        yield totals
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


def service_calls(counts: Counter[tuple[str, str]], service: str, operations: frozenset[str] | None = None) -> int:
    """Calls to one service counted by `aws_calls`, or to these of its operations only."""
    return sum(n for (name, op), n in counts.items() if name == service and (operations is None or op in operations))


def measure(stack: LocalStack | None = None) -> dict[str, int]:
    """Totals for one event of SYNCS syncs: cold, warm (a new trigger) and duplicate (the same trigger again)."""
    figures: dict[str, int] = {}
    with bench_stack(stack) as bench, bench.container(POLYTOMIC_CONCURRENCY=str(PARALLEL)) as invoke:
        fake = bench.stack.fake
        for phase, event in (
            ("cold", s3_event(f"{FANOUT_PREFIX}cold.csv")),
            ("warm", s3_event(f"{FANOUT_PREFIX}warm.csv", "00BUDGET0000000001")),
            ("duplicate", s3_event(f"{FANOUT_PREFIX}warm.csv", "00BUDGET0000000001")),
        ):
            fake.reset_calls()
            with aws_calls() as counts:
                answer = invoke(event)
            statuses = Counter(outcome["status"] for outcome in answer["outcomes"])
            expected = "duplicate" if phase == "duplicate" else "started"
            if statuses != Counter({expected: SYNCS}):
                raise RuntimeError(f"{phase}: expected {SYNCS} x {expected}, got {dict(statuses)}")
            figures[f"{phase}.polytomic"] = len(fake.calls)
            figures[f"{phase}.dynamodb"] = service_calls(counts, "dynamodb")
            figures[f"{phase}.dynamodb_writes"] = service_calls(counts, "dynamodb", DYNAMODB_WRITES)
            figures[f"{phase}.secretsmanager"] = service_calls(counts, "secretsmanager")
    return figures


# `polytrigger status` needs each file's landing: one write per landed file (a redelivery writes it
# again), whatever the number of routes and syncs. Which run has a file is not written per file.
LANDING_WRITES = 1


def rows(quick: bool, stack: LocalStack | None = None) -> list[Row]:
    """Counts are deterministic: `quick` changes nothing (one event of each kind either way)."""
    del quick
    f = measure(stack)

    def dynamodb(name: str, figure: str) -> Row:
        """At most 3 a sync: the run's one item carries its place among the open runs (no shard to write).
        The file's landing (one write per file, whatever the number of syncs) is its own row."""
        return per_unit(name, f[figure] - LANDING_WRITES, SYNCS, 3, at_most=True)

    per_file = f["warm.dynamodb_writes"] - 3 * SYNCS
    return [
        per_unit("budget warm: Polytomic calls per (trigger, sync)", f["warm.polytomic"], SYNCS, 1),
        dynamodb("budget warm: DynamoDB writes per (trigger, sync): dedup 2, run ledger 1", "warm.dynamodb_writes"),
        per_unit("budget warm: DynamoDB writes per landed file: its landing (was 0)", per_file, 1, LANDING_WRITES),
        dynamodb("budget warm: DynamoDB calls per (trigger, sync)", "warm.dynamodb"),
        per_unit("budget warm: Secrets Manager calls per event", f["warm.secretsmanager"], 1, 0),
        per_unit("budget cold: Secrets Manager calls per container", f["cold.secretsmanager"], 1, 1, at_most=True),
        per_unit(
            "budget duplicate: DynamoDB calls per (trigger, sync), beside the landing",
            f["duplicate.dynamodb"] - LANDING_WRITES,
            SYNCS,
            1,
        ),
        per_unit("budget duplicate: Polytomic calls per (trigger, sync)", f["duplicate.polytomic"], SYNCS, 0),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments("benchmarks.budget", __doc__, "accepted for symmetry: counts need one run only").parse_args(argv)
    return show(rows(args.quick))


if __name__ == "__main__":
    sys.exit(main())
