"""`polytrigger status s3://BUCKET/KEY`: what answering for one file reads, at 1,000 and at 100,000 run items.

One object lands through the real S3 handler on the local stack (DynamoDB Local): the bench-single
route, one sync, so its landing (`file#…`), its dedup record and its run item are the real ones.
Around it the table is filled with BatchWriteItem: run items of the same sync (the worst case: they
all sit in the one `by_sync` partition the status query reads), half covering from before the
object landed and half after, each with its file's landing item. Then `tools.fate.fate_of` answers
for the object, with every DynamoDB request counted at botocore (`benchmarks.budget.aws_calls`),
the capacity units DynamoDB reports for them (`dynamodb_capacity`) and the items they returned.

Targets: the same requests at both sizes (a GetItem for the landing, one Query of the `by_sync`
index per (route, sync), a GetItem for the action's dedup record to say `started` or `covered`),
and at most COVERING_READ + 2 items read per status — never a scan. The 100,000 (20,000 with
`--quick`) are loaded in parallel batches of 25; the table is dropped and made again afterwards
(faster than deleting 200,000 items one by one).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.budget import aws_calls, dynamodb_capacity
from benchmarks.fanout import BUCKET, SINGLE_PREFIX, SINGLE_SYNC, bench_stack, s3_event
from benchmarks.report import Row, arguments, per_unit, reference, show
from local.stack import LocalStack

SMALL = 1_000  # run items (each with its file) in the first measure
LARGE = 100_000  # ... and in the second
QUICK_LARGE = 20_000  # a smoke run's second size
BATCH = 25  # BatchWriteItem's most items a request
LOADERS = 8  # threads writing batches at once
OBJECT = f"{SINGLE_PREFIX}status-object.csv"
MOST_ITEMS = 22  # tools.fate.COVERING_READ (20) index items, the landing and the dedup record


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def history_items(first: int, count: int, around: datetime) -> list[dict[str, Any]]:
    """Run items `first`..`first+count` of SINGLE_SYNC and their files' landings, a minute apart,
    alternately before and after `around` (so the object sits in the middle of its sync's runs)."""
    items: list[dict[str, Any]] = []
    for number in range(first, first + count):
        offset = timedelta(minutes=(number // 2 + 1) * (-1 if number % 2 else 1))
        moment = around + offset
        execution = str(uuid.UUID(int=number + 1))
        items.append(
            {
                "id": {"S": f"run#{execution}"},
                "sync_id": {"S": SINGLE_SYNC},
                "sync_type": {"S": "model"},
                "sync_key": {"S": f"model#{SINGLE_SYNC}"},
                "covers_from": {"S": _iso(moment)},
                "started_at": {"S": _iso(moment + timedelta(seconds=2))},
                "first_trigger_at": {"S": _iso(moment - timedelta(seconds=1))},
                "first_trigger": {"S": f"s3://{BUCKET}/{SINGLE_PREFIX}history-{number:06d}.csv"},
                "routes": {"SS": ["bench-single"]},
                "trigger_count": {"N": "1"},
                "status": {"S": "completed"},
                "finished_at": {"S": _iso(moment + timedelta(seconds=30))},
                "expiration": {"N": str(int(time.time()) + 14 * 86400)},
            }
        )
        items.append(
            {
                "id": {"S": f"file#s3://{BUCKET}/{SINGLE_PREFIX}history-{number:06d}.csv"},
                "sequencer": {"S": f"{number:018X}"},
                "landed_at": {"S": _iso(moment - timedelta(seconds=1))},
                "received_at": {"S": _iso(moment - timedelta(seconds=0.5))},
                "expiration": {"N": str(int(time.time()) + 14 * 86400)},
            }
        )
    return items


def load(client: Any, table: str, items: list[dict[str, Any]]) -> float:
    """BatchWriteItem in batches of 25 from LOADERS threads (unprocessed items sent again); seconds taken."""
    began = time.monotonic()

    def write(batch: list[dict[str, Any]]) -> None:
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in batch]
        while requests:
            answer = client.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(max_workers=LOADERS) as pool:
        list(pool.map(write, [items[i : i + BATCH] for i in range(0, len(items), BATCH)]))
    return time.monotonic() - began


class Counted:
    """The Records' client, counting the items each request returned."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.items = 0

    def get_item(self, **kwargs: Any) -> Any:
        answer = self.client.get_item(**kwargs)
        self.items += "Item" in answer
        return answer

    def query(self, **kwargs: Any) -> Any:
        answer = self.client.query(**kwargs)
        self.items += int(answer.get("ScannedCount", answer.get("Count", 0)))
        return answer


def answer_for_the_object(stack: LocalStack, routes: Any) -> dict[str, Any]:
    """`fate_of` for the object once: its requests by operation, items read, read units, and its state."""
    from polytrigger.tools.fate import Records, fate_of

    client = Counted(stack.dynamodb_client())
    records = Records(client, stack.table_name)
    with aws_calls() as calls, dynamodb_capacity() as capacity:
        fate = fate_of(BUCKET, OBJECT, routes, records)
    operations = Counter({op: n for (service, op), n in calls.items() if service == "dynamodb"})
    return {"operations": operations, "items": client.items, "rcu": capacity["read"], "states": fate.syncs}


def measure(large: int, stack: LocalStack | None = None, small: int = SMALL) -> dict[str, Any]:
    from polytrigger.routing import load_routes

    figures: dict[str, Any] = {"large": large, "small_size": small}
    with bench_stack(stack) as bench:
        with bench.container() as invoke:
            answer = invoke(s3_event(OBJECT))
        if [o["status"] for o in answer["outcomes"]] != ["started"]:
            raise RuntimeError(f"the object's start: {answer['outcomes']}")
        routes, client, table = load_routes(bench.routes), bench.stack.dynamodb_client(), bench.stack.table_name
        with bench.stack.environ():
            now = datetime.now(UTC)
            try:
                figures["load_small"] = load(client, table, history_items(0, small, now))
                figures["small"] = answer_for_the_object(bench.stack, routes)
                figures["load_large"] = load(client, table, history_items(small, large - small, now))
                figures["large_answer"] = answer_for_the_object(bench.stack, routes)
            finally:  # 2 x `large` items: dropping the table is faster than the reset's deletes
                client.delete_table(TableName=table)
                client.get_waiter("table_not_exists").wait(TableName=table)
                bench.stack.create_table()
    return figures


def rows(quick: bool, stack: LocalStack | None = None, *, sizes: tuple[int, int] | None = None) -> list[Row]:
    """`sizes`: (small, large) run items instead of SMALL and LARGE (QUICK_LARGE when `quick`): the test's smoke run."""
    few, many = sizes or (SMALL, QUICK_LARGE if quick else LARGE)
    f = measure(many, stack, few)
    small, big, large = f["small"], f["large_answer"], f["large"]
    states = sorted({fate.state for fate in big["states"]} | {fate.state for fate in small["states"]})

    def shown(operations: Counter[str]) -> str:
        return ", ".join(f"{op} {n}" for op, n in sorted(operations.items()))

    size = f"{large:,} run items" + (" (--quick)" if quick else "")
    same = small["operations"] == big["operations"]
    return [
        Row(
            f"status: DynamoDB requests for one object, {size} vs {few:,}",
            shown(big["operations"]),
            shown(small["operations"]),
            "same" if same else "differ",
            "same count at both sizes",
            same and "Scan" not in big["operations"],
        ),
        per_unit(f"status: items read per status, {size}", big["items"], 1, MOST_ITEMS, at_most=True),
        per_unit(f"status: items read per status, {few:,} run items", small["items"], 1, MOST_ITEMS, at_most=True),
        reference(
            f"status: read capacity units per status, {size}",
            f"{big['rcu']:g} RCU",
            f"{small['rcu']:g} RCU at {few:,}",
        ),
        reference(
            f"status: bulk load of {2 * (large - few):,} items (BatchWriteItem, {LOADERS} threads)",
            f"{f['load_large']:.0f} s",
            f"{f['load_small']:.1f} s for {2 * few:,}",
        ),
        Row(  # the sampled object's own start made the run that covers it, at both sizes
            "status: the sampled object's state, at both sizes",
            ", ".join(states),
            "-",
            "-",
            "= started",
            states == ["started"],
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments("benchmarks.status", __doc__, f"{QUICK_LARGE:,} run items instead of {LARGE:,}").parse_args(argv)
    return show(rows(args.quick))


if __name__ == "__main__":
    sys.exit(main())
