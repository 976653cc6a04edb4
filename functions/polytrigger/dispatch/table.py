"""How polytrigger keeps its own items in the dedup table, whatever they are: one rule for each.

- Times that sort: ISO 8601, UTC, microseconds (`iso`), so a key condition on time is a string range.
- TTLs by the wall clock (`expires`): DynamoDB deletes by the machine's time, never by an injected
  clock or an item's own date, so an item dated in the past is not gone before it is read.
- The sparse `due` index (`due_in` → `due_at`): what the poller must look at, one partition per kind
  and shard (`open#2`, `promise#0`, `hold#3`), read only up to now (`due_items`).
- The `by_sync` index (`sync_key` → `covers_from`): a sync's runs and parked starts, by the time from
  which each covers files (`polytrigger status`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

DUE_INDEX = "due"  # template.yaml's IdempotencyTable: a global secondary index, keys `due_in` and `due_at`
DUE_SHARDS = 4  # each kind of due item spread over this many index partitions (a burst of starts is no hot key)
BY_SYNC_INDEX = "by_sync"  # template.yaml's IdempotencyTable: keys `sync_key` and `covers_from` (runs and parks)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def expires(keep_seconds: int, after: float = 0.0) -> dict[str, str]:
    """A TTL attribute `keep_seconds` on from `after` (an injected clock, a due time), never earlier than
    the machine's time: DynamoDB deletes by the wall clock, so an item dated in the past must not be gone
    before it is read."""
    return {"N": str(int(max(time.time(), after)) + keep_seconds)}


def sync_key(sync_type: str, sync_id: str) -> str:
    """A sync's partition in the `by_sync` index: its runs and parked starts, by what they cover from."""
    return f"{sync_type}#{sync_id}"


def due_in(kind: str, key: str) -> str:
    """The index partition of `key` among `kind`'s: the same for every call, spread over the shards."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return f"{kind}#{digest[0] % DUE_SHARDS}"


def due_items(
    client: Any, table: str, kind: str, until: datetime, call: Callable[[Callable[[], Any]], Any]
) -> Iterator[dict[str, Any]]:
    """Every item of `kind` due by `until`, oldest first within a shard, page by page (read as it is used).
    `call` makes each request and turns the table's errors into its caller's."""
    for shard in range(DUE_SHARDS):
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_in = :kind AND due_at <= :until",
            "ExpressionAttributeValues": {":kind": {"S": f"{kind}#{shard}"}, ":until": {"S": iso(until)}},
        }
        while True:
            page = call(lambda request=request: client.query(**request))  # type: ignore[misc]
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                break
            request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}
