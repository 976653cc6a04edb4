"""The open runs of the run ledger, spread over eight items, and the conditional calls the ledger makes.

`runs#open#<0-7>`: each open run (by a hash of its execution id) with what reconciliation needs, so
the poller finds the runs with no ending heard in eight reads whatever else the table holds, and a
burst of starts spreads over eight items instead of one hot one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.adapters.aws import error_code
from polytrigger.runs.ports import LedgerUnavailable, OpenRun

OPEN_SHARDS = 8
T = TypeVar("T")


def shard_key(prefix: str, key: str) -> str:
    """The item of `prefix` holding `key`: the same for every call, spread evenly over the shards."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return f"{prefix}#{digest[0] % OPEN_SHARDS}"


def open_key(execution_id: str) -> str:
    return shard_key("runs#open", execution_id)


class DynamoOpenRuns:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # -- open runs --------------------------------------------------------------------------

    def add(self, execution_id: str, sync_id: str, sync_type: str, started_at: datetime) -> None:
        entry = {
            "M": {
                "sync_id": {"S": sync_id},
                "sync_type": {"S": sync_type},
                "started_at": {"S": iso(started_at)},
            }
        }
        names = {"#e": execution_id}
        added = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": open_key(execution_id)}},
                UpdateExpression="SET runs.#e = if_not_exists(runs.#e, :entry)",
                ConditionExpression="attribute_exists(runs)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":entry": entry},
            )
        )
        if added is None:  # the first open run: the map does not exist yet (or a race made it meanwhile)
            made = conditional(
                lambda: self.client.put_item(
                    TableName=self.table,
                    Item={"id": {"S": open_key(execution_id)}, "runs": {"M": {execution_id: entry}}},
                    ConditionExpression="attribute_not_exists(id)",
                )
            )
            if made is None:
                self.add(execution_id, sync_id, sync_type, started_at)

    def runs(self) -> list[OpenRun]:
        runs: dict[str, Any] = {}
        for shard in range(OPEN_SHARDS):
            runs.update(self._open_item(f"runs#open#{shard}").get("runs", {}).get("M", {}))
        return [
            OpenRun(
                execution_id=execution_id,
                sync_id=entry["M"]["sync_id"]["S"],
                sync_type=entry["M"]["sync_type"]["S"],
                started_at=datetime.fromisoformat(entry["M"]["started_at"]["S"]),
                checked_at=datetime.fromisoformat(entry["M"]["checked_at"]["S"])
                if "checked_at" in entry["M"]
                else None,
            )
            for execution_id, entry in runs.items()
        ]

    def _open_item(self, key: str) -> dict[str, Any]:
        answer: dict[str, Any] = required(lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": key}}))
        return dict(answer.get("Item") or {})

    def checked(self, execution_id: str, at: datetime) -> None:
        conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": open_key(execution_id)}},
                UpdateExpression="SET runs.#e.checked_at = :at",
                ConditionExpression="attribute_exists(runs.#e)",
                ExpressionAttributeNames={"#e": execution_id},
                ExpressionAttributeValues={":at": {"S": iso(at)}},
            )
        )

    def forget(self, execution_id: str) -> None:
        conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": open_key(execution_id)}},
                UpdateExpression="REMOVE runs.#e",
                ConditionExpression="attribute_exists(runs.#e)",
                ExpressionAttributeNames={"#e": execution_id},
            )
        )


def conditional(call: Callable[[], T]) -> T | None:
    """The call's answer, or None when its condition failed."""
    try:
        return call()
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return None
        raise LedgerUnavailable(f"the run ledger failed: {error_code(error)}") from None
    except BotoCoreError as error:
        raise LedgerUnavailable(f"the run ledger is unreachable: {type(error).__name__}") from None


def required(call: Callable[[], T]) -> T:
    answer = conditional(call)
    if answer is None:
        raise LedgerUnavailable("the run ledger refused an unconditional write")
    return answer


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
