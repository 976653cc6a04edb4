"""The `PromiseBook` port on DynamoDB: one item per freshness promise (`promise#<key>`), found when due.

A promise is written when its trigger is handled (every delivery writes the same item: the first
wins), and sits in the table's `due` index under `promise#<shard>` sorted by its due time, so a poll
reads only the promises due, however many are pending. Once checked (and, when it was broken, told) it
leaves the index and keeps its verdict for `polytrigger status`: a poll that dies in between checks
it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from polytrigger.dispatch.table import due_in, expires, iso
from polytrigger.runs.dynamo_ledger import KEEP_SECONDS, conditional, due_items, required
from polytrigger.runs.freshness import Promise

PREFIX = "promise#"


class DynamoPromises:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def promise(self, promise: Promise) -> None:
        item = {
            "id": {"S": PREFIX + promise.key},
            "route": {"S": promise.route},
            "sync_id": {"S": promise.sync_id},
            "sync_type": {"S": promise.sync_type},
            "trigger": {"S": promise.trigger[:300]},
            "at": {"S": iso(promise.at)},
            "due_in": {"S": due_in("promise", promise.key)},
            "due_at": {"S": iso(promise.due)},
            "expiration": expires(KEEP_SECONDS, promise.due.timestamp()),  # never left behind for good
        }
        conditional(  # a delivery of the same trigger again: the promise stands as first written
            lambda: self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(id)"
            )
        )

    def due(self, now: datetime) -> Iterator[Promise]:
        for item in due_items(self.client, self.table, "promise", now):
            text = {name: str(value.get("S", "")) for name, value in item.items()}
            yield Promise(
                key=text["id"].removeprefix(PREFIX),
                route=text.get("route", ""),
                sync_id=text.get("sync_id", ""),
                sync_type=text.get("sync_type", ""),
                trigger=text.get("trigger", ""),
                at=datetime.fromisoformat(text["at"]),
                due=datetime.fromisoformat(text["due_at"]),
            )

    def close(self, key: str, verdict: str = "kept") -> bool:
        """Out of the `due` index, its verdict kept until the item expires (`polytrigger status` shows it)."""
        closed = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": PREFIX + key}},
                UpdateExpression="SET verdict = :verdict REMOVE due_in",  # out of the index: it keeps when it was due
                ConditionExpression="attribute_exists(due_in)",
                ExpressionAttributeValues={":verdict": {"S": verdict[:300]}},
            )
        )
        return closed is not None

    def verdict(self, key: str) -> tuple[datetime, str] | None:
        """When the promise was due and its verdict ("" while pending), if there is one."""
        item = required(lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": PREFIX + key}})).get("Item")
        if not item:
            return None
        return datetime.fromisoformat(item["due_at"]["S"]), str(item.get("verdict", {}).get("S", ""))
