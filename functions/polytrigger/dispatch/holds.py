"""Starts held while their sync is paused: a file that lands during a freeze waits for the thaw.

A start Polytomic refuses, for a sync that says it is not `active`, is *held*, not failed: what the
user meant by a pause is "not now", not "never". The held starts of one (sync, start options) share
one item, `polytrigger#hold#<digest>` (like a debounce window): how many triggers it holds, when the
first and the last were held, the latest held action (its start covers every earlier one: a run
created after the last file landed has them all), and the time by which it is parked if the sync
stays paused (the route's `hold`). Nothing per file, so ten thousand files held cost one item.

A hold is *released* by a start message on the dispatch queue, whose id is made from the hold's
first and last arrival: at once after polytrigger's own `activate` of the sync (a thaw schedule,
`activate_first`), or by the poller, which looks at each held sync every CHECK_SECONDS (the hold
sits in the `due` index under `hold#<shard>`, `dispatch.table`) and releases it when someone else resumed the sync.
The dispatcher does the start once (a run created since the last arrival covers it instead), and
the hold is deleted only if nothing joined it meanwhile; a crash in between sends the same message
again, which the dispatcher answers `duplicate`. Held past its limit, it is parked in the dispatch
dead-letter queue with the reason (`polytrigger redrive` starts it once the sync is active).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.messages import DeferredStart, decode, encode, message_id
from polytrigger.dispatch.ports import Queue, QueueUnavailable
from polytrigger.dispatch.table import due_in, due_items, expires, iso
from polytrigger.observability import error_code
from polytrigger.routing import Routes

HOLD_PREFIX = "polytrigger#hold#"
CHECK_SECONDS = 300  # the poller asks a held sync whether it is active again this often
KEEP_SECONDS = 3 * 86400  # a hold item outlives its limit this long (the poller parks it long before)
_ANY = Trigger.scheduled(schedule="any", time=datetime(2000, 1, 1, tzinfo=UTC))  # a hold's id ignores the trigger


class HoldsUnavailable(Exception):
    """The hold could not be read or written (a retry may work)."""


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    message: DeferredStart  # the start that releases it: the latest held action, covering every earlier one
    held_at: float  # epoch seconds: the first held trigger
    last_at: float  # ... and the latest
    count: int
    deadline: float  # parked if the sync is still paused then
    reason: str  # what Polytomic answered the start that was held first

    @property
    def release(self) -> DeferredStart:
        """The start that releases the hold as it is now: one message id per (first, last) arrival."""
        return DeferredStart(
            message_id(self.id, repr(self.held_at), repr(self.last_at)),
            self.message.action,
            since=self.message.since,
            attempt=1,
            first_at=self.held_at,
        )


def hold_id(action: Action) -> str:
    """One hold per (sync, start options): a resync is never released by a plain start's hold."""
    return HOLD_PREFIX + digest(["hold", action.kind, action.sync.type, action.sync.id, action.sync.option_pairs()])


def _iso(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


class DynamoHolds:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def hold(self, action: Action, since: float, limit_seconds: int, reason: str) -> Hold:
        """Hold this start with the others of its sync: the item's state after it joined."""
        now = self.clock()
        hid = hold_id(action)
        message = encode(DeferredStart(message_id(hid, "held"), action, since=since, attempt=1, first_at=now))
        values: dict[str, Any] = {
            ":now": {"N": repr(now)},
            ":one": {"N": "1"},
            ":message": {"S": json.dumps(message, ensure_ascii=False)},
            ":since": {"N": repr(since)},
            ":deadline": {"N": repr(now + limit_seconds)},
            ":reason": {"S": reason[:500]},
            ":shard": {"S": due_in("hold", hid)},
            ":check": {"S": _iso(now + CHECK_SECONDS)},
            ":expires": expires(KEEP_SECONDS, now + limit_seconds),
        }
        first = (
            "SET held_at = if_not_exists(held_at, :now), deadline = if_not_exists(deadline, :deadline),"
            " reason = if_not_exists(reason, :reason), due_in = if_not_exists(due_in, :shard),"
            " due_at = if_not_exists(due_at, :check), expiration = :expires, last_at = :now"
        )
        try:
            try:  # the latest action (and its coverage bound) stands for all: never an older one over a newer
                answer = self.client.update_item(
                    TableName=self.table,
                    Key={"id": {"S": hid}},
                    UpdateExpression=first + ", message = :message, since = :since ADD arrivals :one",
                    ConditionExpression="attribute_not_exists(since) OR since <= :since",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                values = {k: v for k, v in values.items() if k not in (":message", ":since")}
                answer = self.client.update_item(
                    TableName=self.table,
                    Key={"id": {"S": hid}},
                    UpdateExpression=first + " ADD arrivals :one",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except (BotoCoreError, ClientError) as error:
            raise HoldsUnavailable(error_code(error)) from None
        return _hold(answer["Attributes"])

    def get(self, hid: str) -> Hold | None:
        try:
            item = self.client.get_item(TableName=self.table, Key={"id": {"S": hid}}, ConsistentRead=True).get("Item")
        except (BotoCoreError, ClientError) as error:
            raise HoldsUnavailable(error_code(error)) from None
        return _hold(item) if item else None

    def due(self, now: float) -> Iterator[Hold]:
        """The holds whose sync is due to be asked again (only those are read)."""
        until = datetime.fromtimestamp(now, UTC)
        for item in due_items(self.client, self.table, "hold", until, self._read):
            if "message" in item:
                yield _hold(item)

    @staticmethod
    def _read(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (BotoCoreError, ClientError) as error:
            raise HoldsUnavailable(error_code(error)) from None

    def checked(self, hold: Hold, now: float) -> None:
        """Its sync is still paused: ask again in CHECK_SECONDS."""
        self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": hold.id}},
                UpdateExpression="SET due_at = :next",
                ConditionExpression="attribute_exists(id)",
                ExpressionAttributeValues={":next": {"S": _iso(now + CHECK_SECONDS)}},
            )
        )

    def close(self, hold: Hold) -> bool:
        """Delete the hold, unless a trigger joined it since it was read (then it is released again)."""
        return self._conditional(
            lambda: self.client.delete_item(
                TableName=self.table,
                Key={"id": {"S": hold.id}},
                ConditionExpression="last_at = :last",
                ExpressionAttributeValues={":last": {"N": repr(hold.last_at)}},
            )
        )

    def _conditional(self, call: Callable[[], Any]) -> bool:
        try:
            call()
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise HoldsUnavailable(error_code(error)) from None
        except BotoCoreError as error:
            raise HoldsUnavailable(error_code(error)) from None
        return True


def _hold(item: dict[str, Any]) -> Hold:
    message = decode(json.loads(item["message"]["S"]))
    if not isinstance(message, DeferredStart):  # `hold` writes only these
        raise HoldsUnavailable(f"the hold {item['id']['S']} holds no start")
    return Hold(
        id=item["id"]["S"],
        message=message,
        held_at=float(item["held_at"]["N"]),
        last_at=float(item["last_at"]["N"]),
        count=int(item["arrivals"]["N"]),
        deadline=float(item["deadline"]["N"]),
        reason=item.get("reason", {}).get("S", ""),
    )


# -- releasing and checking holds --------------------------------------------------------------


def hold_ids(routes: Routes, sync_type: str, sync_id: str) -> list[str]:
    """Every hold the routes can make for this sync: one per start options a route gives it."""
    found: list[str] = []
    for route in routes.routes:
        for sync in route.syncs:
            if route.action == "start" and sync.type == sync_type and sync.id == sync_id:
                probe = Action(route=route.name, kind="start", sync=sync, trigger=_ANY)
                if (hid := hold_id(probe)) not in found:
                    found.append(hid)
    return found


def release(store: DynamoHolds, queue: Queue, hold: Hold) -> bool:
    """Send the start that releases the hold, then delete it (unless a trigger joined it meanwhile:
    then it stays, and is released again). False when it stays."""
    try:
        queue.send(hold.release, 0)
    except QueueUnavailable as error:
        raise HoldsUnavailable(f"the start releasing the hold could not be queued: {error}") from None
    return store.close(hold)


@dataclass(slots=True)
class Checked:
    released: int = 0
    expired: int = 0
    still_paused: int = 0


def check_holds(
    store: DynamoHolds,
    active: Callable[[str, str], bool | None],
    queue: Queue,
    on_expired: Callable[[Hold, str], None],
    *,
    now: float,
    more: Callable[[], bool] = lambda: True,
) -> Checked:
    """Ask each held sync that is due whether it is active again: release its hold, park it past its
    limit (`on_expired` tells it), or ask again in CHECK_SECONDS. The poller's part."""
    done = Checked()
    for hold in store.due(now):
        if not more():
            break
        action = hold.message.action
        state = active(action.sync.type, action.sync.id)
        if state is True:
            done.released += release(store, queue, hold)
        elif now >= hold.deadline:  # still paused (or not found, or unsaid: asked again until then)
            waited = (now - hold.held_at) / 3600
            why = (
                f"held {waited:.1f} h for {hold.count} trigger(s): {action.sync.type} sync {action.sync.id} is"
                f" {'still paused' if state is False else 'not found, or Polytomic does not say it is active'}"
                f" ({hold.reason});"
                " `polytrigger redrive` starts it once the sync is active"
            )
            try:
                queue.park(hold.release, why)
            except QueueUnavailable as error:
                raise HoldsUnavailable(f"a hold past its limit could not be parked: {error}") from None
            if store.close(hold):
                on_expired(hold, why)
                done.expired += 1
        else:
            store.checked(hold, now)
            done.still_paused += 1
    return done
