"""The `PromiseBook` port on DynamoDB: freshness promises in eight items of the dedup table (`promises#<0-7>`).

A promise is written when its trigger is handled (every delivery writes the same entry: once), read
back by the poller when due, and taken off with a conditional remove, so exactly one poll reports it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from polytrigger.runs.dynamo_ledger import OPEN_SHARDS, conditional, iso, required, shard_key
from polytrigger.runs.freshness import Promise

PREFIX = "promises"


class DynamoPromises:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def promise(self, promise: Promise) -> None:
        entry = {
            "M": {
                "route": {"S": promise.route},
                "sync_id": {"S": promise.sync_id},
                "sync_type": {"S": promise.sync_type},
                "trigger": {"S": promise.trigger[:300]},
                "at": {"S": iso(promise.at)},
                "due": {"S": iso(promise.due)},
            }
        }
        key = {"id": {"S": shard_key(PREFIX, promise.key)}}
        added = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET promises.#k = if_not_exists(promises.#k, :entry)",
                ConditionExpression="attribute_exists(promises)",
                ExpressionAttributeNames={"#k": promise.key},
                ExpressionAttributeValues={":entry": entry},
            )
        )
        if added is None:  # the shard's first promise
            made = conditional(
                lambda: self.client.put_item(
                    TableName=self.table,
                    Item={**key, "promises": {"M": {promise.key: entry}}},
                    ConditionExpression="attribute_not_exists(id)",
                )
            )
            if made is None:
                self.promise(promise)

    def due(self, now: datetime) -> list[Promise]:
        found: list[Promise] = []
        for shard in range(OPEN_SHARDS):
            key = {"id": {"S": f"{PREFIX}#{shard}"}}
            item = required(lambda key=key: self.client.get_item(TableName=self.table, Key=key)).get("Item") or {}  # type: ignore[misc]
            for name, entry in item.get("promises", {}).get("M", {}).items():
                fields = {field: value["S"] for field, value in entry["M"].items()}
                due = datetime.fromisoformat(fields["due"])
                if due <= now:
                    found.append(
                        Promise(
                            key=name,
                            route=fields["route"],
                            sync_id=fields["sync_id"],
                            sync_type=fields["sync_type"],
                            trigger=fields["trigger"],
                            at=datetime.fromisoformat(fields["at"]),
                            due=due,
                        )
                    )
        return found

    def close(self, key: str) -> bool:
        removed = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": shard_key(PREFIX, key)}},
                UpdateExpression="REMOVE promises.#k",
                ConditionExpression="attribute_exists(promises.#k)",
                ExpressionAttributeNames={"#k": key},
            )
        )
        return removed is not None
