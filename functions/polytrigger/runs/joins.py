"""Joins: chained routes that wait for several upstream syncs (`polytomic: {syncs: [A, B], within: 12h}`).

A join starts its syncs once every upstream has a run ending newer than the set it last started on,
all of them within `within` of each other, and once per such set, however its endings arrive
(twice, out of order, by webhook and poller at once, or around a crash). Its state in the dedup
table, each item bounded by the route (never by load):

- `polytrigger#join#<route>#<sync>`, one per upstream: that upstream's latest qualifying ending
  (execution, status, when it ended). It only moves forward: an older or repeated ending leaves it.
- `polytrigger#join#<route>`: the set it last started on (`fired`), and the starts still owed for
  it (`owed`, the queue messages themselves) until they have been sent.

An ending writes its own item first, then reads them all (strongly consistent): of two endings
handled at once, at least the later reader sees both. Firing is one conditional write of the route
item (on the `fired` it read) recording the new set and its owed starts together, so a crash after
it loses nothing: whoever reads the item next (a redelivery, another ending) sends what is owed.
The messages are the same whoever made them (the trigger is the set's latest ending, the identity
the sorted (upstream, execution) pairs), so the dispatcher does each start once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import SKEW_SECONDS
from polytrigger.dispatch.messages import DeferredStart, decode, deferred_start, encode
from polytrigger.dispatch.ports import Queue
from polytrigger.dispatch.table import expires
from polytrigger.observability import error_code, logger
from polytrigger.routing.model import Route
from polytrigger.runs.endings import RunEvent
from polytrigger.runs.ledger import LedgerUnavailable

JOIN_PREFIX = "polytrigger#join#"
KEEP_MARGIN = 3 * 86400  # an ending is kept `within` and this long (the poller reconciles endings up to ~2 days late)
FIRED_MARGIN = 7 * 86400  # the set last started on outlives every ending it could be made of again
JOINED_ATTEMPT = 1  # a join's start is a first deferral, as a chained start's


class JoinsUnavailable(LedgerUnavailable):
    """A join's state (beside the ledger, in its table) could not be read or written: the ending is not
    remembered as handed on, so it is retried (a webhook answered 503, the poller's page again)."""


@dataclass(frozen=True, slots=True)
class Ending:
    """One upstream's latest qualifying run ending, as a join keeps it."""

    sync: str
    execution: str
    status: str
    ended: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class JoinState:
    endings: dict[str, Ending]  # by upstream sync; an upstream with no ending yet is absent
    fired: str  # the set last started on, as written (JSON; "" before the first start)
    owed: tuple[DeferredStart, ...]  # starts recorded with `fired` and not yet known to be sent

    def last_set(self) -> dict[str, str]:
        """The execution of each upstream in the set last started on."""
        return {str(pair[0]): str(pair[1]) for pair in json.loads(self.fired)} if self.fired else {}


def ready(route: Route, state: JoinState) -> tuple[Ending, ...] | None:
    """The set to start on now, sorted by upstream, or None: every upstream has an ending other than the
    one last started on (newer: an upstream's item only moves forward), all within `within` of each other."""
    endings = [state.endings.get(sync) for sync in sorted(route.upstreams)]
    if any(ending is None for ending in endings):
        return None
    found = tuple(ending for ending in endings if ending is not None)
    last = state.last_set()
    if any(last.get(ending.sync) == ending.execution for ending in found):
        return None
    times = [ending.ended for ending in found]
    return found if max(times) - min(times) <= route.within else None


def starts(route: Route, found: tuple[Ending, ...]) -> list[DeferredStart]:
    """The join's start messages for this set: the same whichever of its endings completed it, or who asks.

    The trigger is the set's latest ending (the one a person would say completed it); a run of the
    started sync created after that ending (with a margin) has every upstream's data, so it covers the start.
    """
    latest = max(found, key=lambda ending: (ending.ended, ending.sync))
    trigger = Trigger.polytomic(
        sync_id=latest.sync,
        execution=latest.execution,
        status=latest.status,
        time=datetime.fromtimestamp(latest.ended, UTC),
        after=tuple((ending.sync, ending.execution) for ending in found),
    )
    return [
        deferred_start(action, since=latest.ended + SKEW_SECONDS, attempt=JOINED_ATTEMPT, first_at=latest.ended)
        for action in route.actions_for(trigger)
    ]


class DynamoJoins:
    """The joins' items in the dedup table (`runs.joins`): one per (route, upstream) and one per route."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def record(self, route: Route, event: RunEvent) -> None:
        """Keep this ending as its upstream's latest, unless the upstream has this one or a newer one."""
        ended = event.created_at.timestamp()
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": f"{JOIN_PREFIX}{route.name}#{event.sync_id}"}},
                UpdateExpression="SET execution = :execution, run_status = :status, ended = :ended, expiration = :exp",
                ConditionExpression="attribute_not_exists(execution) OR (execution <> :execution AND ended < :ended)",
                ExpressionAttributeValues={
                    ":execution": {"S": event.execution_id},
                    ":status": {"S": event.status},
                    ":ended": {"N": repr(ended)},
                    ":exp": expires(route.within + KEEP_MARGIN),
                },
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":  # it has this ending or a newer one
                raise JoinsUnavailable(error_code(error)) from None
        except BotoCoreError as error:
            raise JoinsUnavailable(error_code(error)) from None

    def read(self, route: Route) -> JoinState:
        """The route's item and its upstreams', strongly consistent (one request)."""
        keys = [f"{JOIN_PREFIX}{route.name}", *(f"{JOIN_PREFIX}{route.name}#{sync}" for sync in route.upstreams)]
        request: dict[str, Any] = {self.table: {"Keys": [{"id": {"S": key}} for key in keys], "ConsistentRead": True}}
        items: dict[str, dict[str, Any]] = {}
        try:
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    items[item["id"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
        except (BotoCoreError, ClientError) as error:
            raise JoinsUnavailable(error_code(error)) from None
        endings: dict[str, Ending] = {}
        for sync in route.upstreams:
            item = items.get(f"{JOIN_PREFIX}{route.name}#{sync}")
            if item is not None:
                endings[sync] = Ending(sync, item["execution"]["S"], item["run_status"]["S"], float(item["ended"]["N"]))
        head = items.get(f"{JOIN_PREFIX}{route.name}", {})
        owed = tuple(_start(raw) for raw in json.loads(head["owed"]["S"])) if "owed" in head else ()
        return JoinState(endings, head.get("fired", {}).get("S", ""), owed)

    def fire(self, route: Route, state: JoinState, found: tuple[Ending, ...], owed: list[DeferredStart]) -> bool:
        """Record this set as started and its starts as owed, if nobody fired since `state` was read."""
        values: dict[str, Any] = {
            ":fired": {"S": _fired(found)},
            ":owed": {"S": json.dumps([encode(message) for message in owed], ensure_ascii=False)},
            ":exp": expires(route.within + KEEP_MARGIN + FIRED_MARGIN),
        }
        if state.fired:
            condition = "fired = :last AND attribute_not_exists(owed)"
            values[":last"] = {"S": state.fired}
        else:
            condition = "attribute_not_exists(fired) AND attribute_not_exists(owed)"
        return self._conditional(
            Key={"id": {"S": f"{JOIN_PREFIX}{route.name}"}},
            UpdateExpression="SET fired = :fired, owed = :owed, expiration = :exp",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def sent(self, route: Route, fired: str) -> None:
        """The starts owed for the set `fired` have been queued: forget them (not a later set's)."""
        self._conditional(
            Key={"id": {"S": f"{JOIN_PREFIX}{route.name}"}},
            UpdateExpression="REMOVE owed",
            ConditionExpression="fired = :fired AND attribute_exists(owed)",
            ExpressionAttributeValues={":fired": {"S": fired}},
        )

    def _conditional(self, **request: Any) -> bool:
        try:
            self.client.update_item(TableName=self.table, **request)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise JoinsUnavailable(error_code(error)) from None
        except BotoCoreError as error:
            raise JoinsUnavailable(error_code(error)) from None
        return True


def join(store: DynamoJoins, queue: Queue, route: Route, event: RunEvent) -> int:
    """Count this ending towards the join; queue its starts if it completes a set, and any a crash left
    owed. How many starts were queued (a start queued twice is one for the dispatcher)."""
    store.record(route, event)
    state = store.read(route)
    queued = _send_owed(store, queue, route, state)
    found = ready(route, state)
    if found is None:
        missing = sorted(set(route.upstreams) - set(state.endings))
        logger.debug(
            f"join {route.name}: {event.describe()} counted; "
            + (f"waiting for {', '.join(missing)}" if missing else "no new set within the window yet"),
            extra={"route": route.name, "execution_id": event.execution_id},
        )
        return queued
    messages = starts(route, found)
    if store.fire(route, state, found, messages):
        logger.info(
            f"join {route.name}: {', '.join(f'sync {e.sync} run {e.execution}' for e in found)} all ended:"
            f" {len(messages)} start(s) queued",
            extra={"status": "joined", "route": route.name, "runs": [[e.sync, e.execution] for e in found]},
        )
        for message in messages:
            queue.send(message, 0)
        store.sent(route, _fired(found))
        return queued + len(messages)
    # someone fired meanwhile (this set, or a newer one): what it owes may not be sent yet if it crashed
    return queued + _send_owed(store, queue, route, store.read(route))


def _send_owed(store: DynamoJoins, queue: Queue, route: Route, state: JoinState) -> int:
    if not state.owed:
        return 0
    for message in state.owed:
        queue.send(message, 0)
    store.sent(route, state.fired)
    return len(state.owed)


def _fired(found: tuple[Ending, ...]) -> str:
    return json.dumps([[ending.sync, ending.execution] for ending in found], ensure_ascii=False)


def _start(raw: Mapping[str, Any]) -> DeferredStart:
    message = decode(raw)
    if not isinstance(message, DeferredStart):  # `fire` writes only these
        raise JoinsUnavailable("a join's owed start is not a start")
    return message
