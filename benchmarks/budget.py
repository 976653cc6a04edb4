"""API-call budget per (trigger, sync), counted where the requests go out and arrive.

The real S3 handler runs against the local stack with the fan-out route (20 syncs, run in
parallel). Polytomic calls are the requests the fake Polytomic server received (`fake.calls`);
AWS calls are counted at botocore's `Endpoint.make_request`, which every client (whoever made it,
whenever) goes through once per API call, by service and operation.

- cold container, first trigger: Secrets Manager is read at most once (then cached);
- warm container, new trigger: exactly 1 Polytomic call, at most 4 DynamoDB calls, all writes
  (the dedup record's conditional in-progress put and completed update; the run ledger's run item
  and its open-runs entry, so that the run's outcome can be known; the first entry of one of the eight
  open-runs items makes it, one write more), 0 Secrets Manager calls;
- warm container, the same trigger again (a duplicate delivery): 1 DynamoDB call, 0 Polytomic calls.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks.fanout import FANOUT_PREFIX, PARALLEL, SYNCS, Row, bench_stack, s3_event
from local.stack import LocalStack
from polytrigger.runs.dynamo_ledger import OPEN_SHARDS

DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


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


def _service(counts: Counter[tuple[str, str]], service: str, operations: frozenset[str] | None = None) -> int:
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
            figures[f"{phase}.dynamodb"] = _service(counts, "dynamodb")
            figures[f"{phase}.dynamodb_writes"] = _service(counts, "dynamodb", DYNAMODB_WRITES)
            figures[f"{phase}.secretsmanager"] = _service(counts, "secretsmanager")
    return figures


def rows(quick: bool, stack: LocalStack | None = None) -> list[Row]:
    """Counts are deterministic: `quick` changes nothing (one event of each kind either way)."""
    del quick
    f = measure(stack)

    def row(name: str, total: int, target: str, passed: bool, per: int = SYNCS) -> Row:
        value = total / per
        return (name, f"{value:g} ({total}/{per})", target.split(" ", 1)[1], f"{value:g}", target, passed)

    return [
        row(
            "budget warm: Polytomic calls per (trigger, sync)", f["warm.polytomic"], "= 1", f["warm.polytomic"] == SYNCS
        ),
        row(
            "budget warm: DynamoDB writes per (trigger, sync): dedup 2, run ledger 2",
            f["warm.dynamodb_writes"],
            "<= 4",
            f["warm.dynamodb_writes"] <= 4 * SYNCS + OPEN_SHARDS,  # + the first write to each open-runs shard
        ),
        row(
            "budget warm: DynamoDB calls per (trigger, sync)",
            f["warm.dynamodb"],
            "<= 4",
            f["warm.dynamodb"] <= 4 * SYNCS + OPEN_SHARDS,
        ),
        row(
            "budget warm: Secrets Manager calls per event",
            f["warm.secretsmanager"],
            "= 0",
            not f["warm.secretsmanager"],
            1,
        ),
        row(
            "budget cold: Secrets Manager calls per container",
            f["cold.secretsmanager"],
            "<= 1",
            f["cold.secretsmanager"] <= 1,
            1,
        ),
        row(
            "budget duplicate: DynamoDB calls per (trigger, sync)",
            f["duplicate.dynamodb"],
            "= 1",
            f["duplicate.dynamodb"] == SYNCS,
        ),
        row(
            "budget duplicate: Polytomic calls per (trigger, sync)",
            f["duplicate.polytomic"],
            "= 0",
            f["duplicate.polytomic"] == 0,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budget", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry: counts need one run only")
    args = parser.parse_args(argv)
    from benchmarks.run import report

    return report(rows(args.quick))


if __name__ == "__main__":
    sys.exit(main())
