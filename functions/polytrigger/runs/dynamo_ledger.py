"""The `RunLedger` port on DynamoDB: runs, what is due of them, and the events cursor, as items of the dedup table.

- `run#<execution id>`: the run — sync, routes, the first trigger it was started for and how many,
  when the first of them happened, started and finished times, status. No list of files: which
  files a run covers is the coverage rule's answer (`covers_from`, in the `by_sync` index: every
  file that landed by then is in the run). Ending it is conditional on it not having ended, so an
  ending is taken once whoever brings it.
- **What is due** is found through the table's sparse index `due` (`due_in` → `due_at`), never by
  reading a list: a run with no ending heard is in `open#<shard>` (due for a look-up from when it was
  started or last looked up); a run settled and not yet told is in `tell#<shard>` (due once its
  settler had time to tell it: whoever settles it tells it, and a crash in between leaves it there
  for the poller); a freshness promise is in `promise#<shard>` (`runs.promises`). An item leaves
  the index when its `due_in` is removed. One item per thing: no item grows with the load.
- `runs#cursor`: where the events API was read up to; moved conditionally from its last value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.dispatch.table import (
    due_in,
    expires,
    iso,
    sync_key,
)
from polytrigger.dispatch.table import due_items as table_due_items
from polytrigger.observability import error_code
from polytrigger.runs.endings import TERMINAL, RunEvent
from polytrigger.runs.ledger import Ended, LedgerUnavailable, OpenRun, Run

CURSOR = "runs#cursor"
KEEP_SECONDS = 14 * 86400  # a run is kept two weeks after its last change (`polytrigger status`)
TELL_LEASE = timedelta(minutes=2)  # an ending untold this long after its settle is told by the poller
HANDED_ON_SECONDS = 3 * 86400  # an event handed on is remembered 3 days (Polytomic keeps its events 48 h)
T = TypeVar("T")


def due_items(client: Any, table: str, kind: str, until: datetime) -> Iterator[dict[str, Any]]:
    """Every ledger item of `kind` due by `until` (`dispatch.table.due_items`); the table's errors as
    LedgerUnavailable."""
    return table_due_items(client, table, kind, until, required)


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


def run_key(execution_id: str) -> str:
    return f"run#{execution_id}"


class EventLogMarks:
    """What reading Polytomic's event log keeps between polls: the cursor, and which events were handed on."""

    client: Any
    table: str
    clock: Callable[[], float]

    # -- events handed on (the bus) --------------------------------------------------------------

    def handed_on(self, event_id: str) -> bool:
        """True once `event_id` was handed on to the bus (`hand_on` records it after the bus took it)."""
        key = {"id": {"S": f"event#{event_id[:200]}"}}
        return "Item" in required(lambda: self.client.get_item(TableName=self.table, Key=key))

    def hand_on(self, event_id: str) -> None:
        item = {"id": {"S": f"event#{event_id[:200]}"}, "expiration": expires(HANDED_ON_SECONDS, self.clock())}
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


class DynamoLedger(EventLogMarks):
    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- runs with no ending heard ------------------------------------------------------------

    def open_runs(self, looked_up_before: datetime) -> Iterator[OpenRun]:
        """The open runs started, or last looked up, before `looked_up_before`: only those are read."""
        for item in due_items(self.client, self.table, "open", looked_up_before):
            run = run_from_item(item)
            if run.status or run.started_at is None:
                continue
            yield OpenRun(run.execution_id, run.sync_id, run.sync_type, run.started_at)

    def checked(self, execution_id: str, at: datetime) -> None:
        conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": run_key(execution_id)}},
                UpdateExpression="SET due_at = :at",
                ConditionExpression="attribute_exists(due_in) AND attribute_not_exists(#status)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":at": {"S": iso(at)}},
            )
        )

    def forget(self, execution_id: str) -> None:
        """Stop looking the run up; never takes an ending out of the outbox (a settle may have come meanwhile)."""
        self._leave_index(execution_id, "attribute_not_exists(#status)")

    def _leave_index(self, execution_id: str, condition: str) -> None:
        conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": run_key(execution_id)}},
                UpdateExpression="REMOVE due_in, due_at",
                ConditionExpression=f"attribute_exists(due_in) AND {condition}",
                ExpressionAttributeNames={"#status": "status"},
            )
        )

    # -- endings settled and not yet told (the outbox) -------------------------------------------

    def untold(self, now: datetime) -> Iterator[Ended]:
        """Endings settled at least TELL_LEASE ago and not told: their settler died before telling them."""
        for item in due_items(self.client, self.table, "tell", now - TELL_LEASE):
            run = run_from_item(item)
            if run.status not in TERMINAL or run.finished_at is None:
                continue
            how = str(item.get("outcome_from", {}).get("S", "")) or "poller"
            event_id = str(item.get("ending_event", {}).get("S", "")) or f"execution:{run.execution_id}:{run.status}"
            event = RunEvent(
                event_id=event_id,
                sync_type="bulk" if run.sync_type == "bulk" else "model",
                status=run.status,
                execution_id=run.execution_id,
                sync_id=run.sync_id,
                created_at=run.finished_at,
            )
            yield Ended(run, event, how)

    def told(self, execution_id: str) -> None:
        """The ending was told (its line, metric and chains): it leaves the outbox."""
        self._leave_index(execution_id, "attribute_exists(#status)")

    # -- runs -------------------------------------------------------------------------------

    def record(self, run: Run, route: str, trigger: str, trigger_at: datetime, covers_from: datetime) -> None:
        """One write: the run, its route and first trigger, and (while it has not ended) its place among the
        open. `covers_from`: the run was created at or after it, so every file that landed by then is in it
        (`polytrigger status` finds the run covering a file through the `by_sync` index on it)."""
        started = iso(run.started_at or self._now())
        values = {
            ":sync": {"S": run.sync_id},
            ":type": {"S": run.sync_type},
            ":now": {"S": started},
            ":at": {"S": iso(trigger_at)},
            ":route": {"SS": [route]},
            ":one": {"N": "1"},
            ":expires": expires(KEEP_SECONDS, self.clock()),
            ":key": {"S": sync_key(run.sync_type, run.sync_id)},
            ":from": {"S": iso(covers_from)},
            ":trigger": {"S": trigger[:300]},
        }
        update = (
            "SET sync_id = :sync, sync_type = :type, started_at = if_not_exists(started_at, :now),"
            " first_trigger_at = if_not_exists(first_trigger_at, :at), expiration = :expires,"
            " sync_key = :key, covers_from = if_not_exists(covers_from, :from),"
            " first_trigger = if_not_exists(first_trigger, :trigger)"
        )
        key = {"id": {"S": run_key(run.execution_id)}}
        opened = conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=update
                + ", due_in = if_not_exists(due_in, :open), due_at = if_not_exists(due_at, :now)"
                + " ADD routes :route, trigger_count :one",
                ConditionExpression="attribute_not_exists(#status)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**values, ":open": {"S": due_in("open", run.execution_id)}},
            )
        )
        if opened is None:  # it has ended already: counted, and not watched again
            required(
                lambda: self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=update + " ADD routes :route, trigger_count :one",
                    ExpressionAttributeValues=values,
                )
            )

    def settle(self, event: RunEvent, how: str) -> Run | None:
        """End a run polytrigger started, once; None for one it did not start or that has ended already.

        The same write leaves the open runs and enters the outbox (`tell#`): the ending is the
        settler's to tell, and if it dies before telling (`told`), the poller tells it. A run that
        ends before its start is recorded (a very short run) is found open by the next
        reconciliation. The run is read first: an ending heard again (the poller's overlap, the
        webhook and the poller both) or of a run polytrigger did not start costs a read, not a
        write (a failed conditional write is billed).
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
                UpdateExpression=(
                    "SET #status = :status, finished_at = :at, expiration = :expires, outcome_from = :how,"
                    " ending_event = :event, due_in = :tell, due_at = :settled"
                ),
                ConditionExpression=(
                    "attribute_exists(started_at) AND (attribute_not_exists(#status) OR NOT #status IN"
                    f" ({', '.join(f':t{i}' for i in range(len(TERMINAL)))}))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": event.status},
                    ":at": {"S": iso(event.created_at)},
                    ":expires": expires(KEEP_SECONDS, self.clock()),
                    ":how": {"S": how},
                    ":event": {"S": event.event_id[:200]},
                    ":tell": {"S": due_in("tell", event.execution_id)},
                    ":settled": {"S": iso(self._now())},
                    **{f":t{i}": {"S": status} for i, status in enumerate(TERMINAL)},
                },
                ReturnValues="ALL_NEW",
            )
        )
        return run_from_item(answer["Attributes"]) if answer is not None else None

    def get(self, execution_id: str) -> Run | None:
        item = required(
            lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": run_key(execution_id)}})
        ).get("Item")
        return run_from_item(item) if item else None


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
        first_trigger=text("first_trigger"),
        trigger_count=int(item.get("trigger_count", {}).get("N", "0")),
        first_trigger_at=when("first_trigger_at"),
        started_at=when("started_at"),
        finished_at=when("finished_at"),
    )
