"""The `RunLedger` port on DynamoDB: runs, the open ones, and the events cursor, as items of the dedup table.

- `run#<execution id>`: the run — sync, routes, the triggers it covers (the first TRIGGERS_KEPT of
  them, and how many), when the first of them happened, started and finished times, status. Ending
  it is conditional on it not having ended, so an ending is taken once whoever brings it.
- `runs#open#<0-7>`: eight items mapping each open run (by a hash of its execution id) to what
  reconciliation needs, so the poller finds the runs with no ending heard in eight reads, whatever
  else the table holds, and a burst of starts spreads over eight items instead of one hot one.
- `runs#cursor`: where the events API was read up to; moved conditionally from its last value.

Single table, no index: nothing here is looked up by anything but its key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.observability import error_code
from polytrigger.runs.endings import TERMINAL, RunEvent
from polytrigger.runs.ledger import LedgerUnavailable, OpenRun, Run

CURSOR = "runs#cursor"
TRIGGERS_KEPT = 20
KEEP_SECONDS = 14 * 86400  # a run is kept two weeks after its last change (`polytrigger status`)
HANDED_ON_SECONDS = 3 * 86400  # an event handed on is remembered 3 days (Polytomic keeps its events 48 h)


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


def run_key(execution_id: str) -> str:
    return f"run#{execution_id}"


class DynamoLedger:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.open = DynamoOpenRuns(client, table)

    def open_runs(self) -> list[OpenRun]:
        return self.open.runs()

    def checked(self, execution_id: str, at: datetime) -> None:
        self.open.checked(execution_id, at)

    def forget(self, execution_id: str) -> None:
        self.open.forget(execution_id)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- runs -------------------------------------------------------------------------------

    def record(self, run: Run, route: str, trigger: str, trigger_at: datetime) -> None:
        values = {
            ":sync": {"S": run.sync_id},
            ":type": {"S": run.sync_type},
            ":now": {"S": iso(run.started_at or self._now())},
            ":at": {"S": iso(trigger_at)},
            ":route": {"SS": [route]},
            ":one": {"N": "1"},
            ":expires": {"N": str(int(self.clock()) + KEEP_SECONDS)},
        }
        update = (
            "SET sync_id = :sync, sync_type = :type, started_at = if_not_exists(started_at, :now),"
            " first_trigger_at = if_not_exists(first_trigger_at, :at), expiration = :expires"
            " ADD routes :route, trigger_count :one"
        )
        key = {"id": {"S": run_key(run.execution_id)}}
        kept = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=update.replace(
                    " ADD", ", triggers = list_append(if_not_exists(triggers, :none), :t) ADD"
                ),
                ConditionExpression="attribute_not_exists(triggers) OR size(triggers) < :kept",
                ExpressionAttributeValues={
                    **values,
                    ":none": {"L": []},
                    ":t": {"L": [{"S": trigger[:300]}]},
                    ":kept": {"N": str(TRIGGERS_KEPT)},
                },
            )
        )
        if kept is None:  # enough triggers listed: count this one only
            required(
                lambda: self.client.update_item(
                    TableName=self.table, Key=key, UpdateExpression=update, ExpressionAttributeValues=values
                )
            )
        self.open.add(run.execution_id, run.sync_id, run.sync_type, run.started_at or self._now())

    def settle(self, event: RunEvent) -> Run | None:
        """End a run polytrigger started, once; None for one it did not start or that has ended already.

        A run that ends before its start is recorded (a very short run) is found open by the next
        reconciliation, which asks its execution status and settles it then. The run is read first:
        an ending heard again (the poller's overlap, the webhook and the poller both) or of a run
        polytrigger did not start costs a read, not a write (a failed conditional write is billed).
        """
        known = required(
            lambda: self.client.get_item(
                TableName=self.table,
                Key={"id": {"S": run_key(event.execution_id)}},
                ProjectionExpression="started_at, #status",
                ExpressionAttributeNames={"#status": "status"},
            )
        ).get("Item")
        if not known or "started_at" not in known or known.get("status", {}).get("S") in TERMINAL:
            return None
        answer = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": run_key(event.execution_id)}},
                UpdateExpression=("SET #status = :status, finished_at = :at, expiration = :expires"),
                ConditionExpression=(
                    "attribute_exists(started_at) AND (attribute_not_exists(#status) OR NOT #status IN"
                    f" ({', '.join(f':t{i}' for i in range(len(TERMINAL)))}))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": event.status},
                    ":at": {"S": iso(event.created_at)},
                    ":expires": {"N": str(int(self.clock()) + KEEP_SECONDS)},
                    **{f":t{i}": {"S": status} for i, status in enumerate(TERMINAL)},
                },
                ReturnValues="ALL_NEW",
            )
        )
        if answer is None:
            return None
        self.open.forget(event.execution_id)
        return run_from_item(answer["Attributes"])

    def get(self, execution_id: str) -> Run | None:
        item = required(
            lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": run_key(execution_id)}})
        ).get("Item")
        return run_from_item(item) if item else None

    # -- events handed on (the bus) --------------------------------------------------------------

    def handed_on(self, event_id: str) -> bool:
        """True once `event_id` was handed on to the bus (`hand_on` records it after the bus took it)."""
        key = {"id": {"S": f"event#{event_id[:200]}"}}
        return "Item" in required(lambda: self.client.get_item(TableName=self.table, Key=key))

    def hand_on(self, event_id: str) -> None:
        item = {"id": {"S": f"event#{event_id[:200]}"}, "expiration": {"N": str(int(self.clock()) + HANDED_ON_SECONDS)}}
        required(lambda: self.client.put_item(TableName=self.table, Item=item))

    # -- the events cursor ------------------------------------------------------------------

    def cursor(self) -> tuple[datetime | None, bool]:
        item = required(lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": CURSOR}})).get("Item")
        if not item or "after" not in item:
            return None, False
        return datetime.fromisoformat(item["after"]["S"]), bool(item.get("behind", {}).get("BOOL", False))

    def advance(self, before: datetime | None, after: datetime, *, behind: bool = False) -> bool:
        condition = "attribute_not_exists(id)" if before is None else "#after = :before"
        values: dict[str, Any] = {":after": {"S": iso(after)}, ":behind": {"BOOL": behind}}
        if before is not None:
            values[":before"] = {"S": iso(before)}
        return (
            conditional(
                lambda: self.client.update_item(
                    TableName=self.table,
                    Key={"id": {"S": CURSOR}},
                    UpdateExpression="SET #after = :after, behind = :behind",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#after": "after"},
                    ExpressionAttributeValues=values,
                )
            )
            is not None
        )


def run_from_item(item: dict[str, Any]) -> Run:
    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def when(name: str) -> datetime | None:
        return datetime.fromisoformat(text(name)) if text(name) else None

    return Run(
        execution_id=text("id").removeprefix("run#"),
        sync_id=text("sync_id"),
        sync_type=text("sync_type"),
        status=text("status"),
        routes=tuple(sorted(item.get("routes", {}).get("SS", []))),
        triggers=tuple(value.get("S", "") for value in item.get("triggers", {}).get("L", [])),
        trigger_count=int(item.get("trigger_count", {}).get("N", "0")),
        first_trigger_at=when("first_trigger_at"),
        started_at=when("started_at"),
        finished_at=when("finished_at"),
    )
