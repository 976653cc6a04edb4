"""Where a route's reconciliation stands: the `reconcile#<route>` item of the dedup table.

- `checkpoint`: when the last complete pass started. A pass keeps what landed at or after it, less the
  route's overlap; before any pass has completed, the pass's own start stands in (a first pass looks
  back the overlap only: what landed before reconciliation was turned on is `polytrigger replay`'s).
- `started` and `after`: the pass in progress, when it started and the last key whose page is handled
  (`StartAfter` for the next page; "" from the first). A pass cut short by its time budget, a retryable
  failure or a crash goes on from there at the next invocation, and keeps its start.
- `holder` and `lease_until`: the invocation listing now. Taking the cursor is a conditional write
  that succeeds only when no lease is held or it ran out, and every later write is conditional on
  holding it, so two invocations never list one route at once, and one whose lease was taken from it
  (it outlived its own time) stops at its next write. A crash leaves the lease to run out: it is as
  long as the invocation's time, never longer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.dispatch.table import expires, iso
from polytrigger.observability import error_code

PREFIX = "reconcile#"
KEEP_SECONDS = 30 * 86400  # renewed by every pass (at most a day apart): gone a month after its route is


class CursorsUnavailable(Exception):
    """The cursor could not be read or written: the pass stops, the next invocation takes it up."""


class CursorLost(Exception):
    """Another invocation holds the route's lease now: this one stops without moving the cursor."""


@dataclass(frozen=True, slots=True)
class Cursor:
    route: str
    holder: str  # this invocation's lease
    started: datetime  # when the pass in progress started
    after: str = ""  # the last key whose page is handled ("" from the start)
    checkpoint: datetime | None = None  # when the last complete pass started (None: none has)

    @property
    def since(self) -> datetime:
        """What a pass keeps landed at or after (before the overlap): the checkpoint, else its own start."""
        return self.checkpoint if self.checkpoint is not None else self.started


def cursor_id(route: str) -> str:
    return PREFIX + route


class DynamoCursors:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def take(self, route: str, now: float, lease_seconds: float) -> Cursor | None:
        """The route's cursor, leased to this invocation until `now + lease_seconds`; None while another
        invocation holds it. A pass in progress keeps its start; else one starts now."""
        holder = uuid.uuid4().hex
        item = self._update(
            route,
            "SET holder = :me, lease_until = :until, started = if_not_exists(started, :now),"
            " #after = if_not_exists(#after, :none), expiration = :expiration",
            "attribute_not_exists(lease_until) OR lease_until < :now_n",
            {
                ":me": {"S": holder},
                ":until": {"N": repr(now + lease_seconds)},
                ":now": {"S": iso(datetime.fromtimestamp(now, UTC))},
                ":now_n": {"N": repr(now)},
                ":none": {"S": ""},
                ":expiration": expires(KEEP_SECONDS, now),
            },
            taking=True,
        )
        if item is None:
            return None
        checkpoint = item.get("checkpoint", {}).get("S")
        return Cursor(
            route=route,
            holder=holder,
            started=datetime.fromisoformat(item["started"]["S"]),
            after=item.get("after", {}).get("S", ""),
            checkpoint=datetime.fromisoformat(checkpoint) if checkpoint else None,
        )

    def advance(self, cursor: Cursor, after: str, now: float, lease_seconds: float) -> Cursor:
        """The page ending at `after` is handled: the pass goes on after it (the lease renewed)."""
        self._update(
            cursor.route,
            "SET #after = :after, lease_until = :until",
            "holder = :me",
            {":after": {"S": after}, ":until": {"N": repr(now + lease_seconds)}, ":me": {"S": cursor.holder}},
        )
        return replace(cursor, after=after)

    def finish(self, cursor: Cursor) -> None:
        """The prefix is listed to its end: the checkpoint becomes the pass's start, and the lease is free."""
        self._update(
            cursor.route,
            "SET checkpoint = :started REMOVE started, #after, holder, lease_until",
            "holder = :me",
            {":started": {"S": iso(cursor.started)}, ":me": {"S": cursor.holder}},
        )

    def release(self, cursor: Cursor) -> None:
        """The pass stops where its cursor is (time is up, or a retry is due): the next invocation goes on."""
        self._update(cursor.route, "REMOVE holder, lease_until", "holder = :me", {":me": {"S": cursor.holder}})

    def _update(
        self, route: str, expression: str, condition: str, values: dict[str, Any], *, taking: bool = False
    ) -> dict[str, Any] | None:
        names = {"#after": "after"} if "#after" in expression else {}
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": cursor_id(route)}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                if taking:
                    return None  # another invocation holds the lease
                raise CursorLost(f"route {route}: another invocation took the reconciliation's lease") from None
            raise CursorsUnavailable(f"route {route}: the reconciliation's cursor: {error_code(error)}") from None
        except BotoCoreError as error:
            raise CursorsUnavailable(f"route {route}: the reconciliation's cursor: {error_code(error)}") from None
        attributes: dict[str, Any] = answer.get("Attributes", {})
        return attributes

    def read(self, route: str) -> dict[str, Any]:
        """The cursor's item as it is (for `status`-like questions and the tests); {} before any pass."""
        try:
            answer = self.client.get_item(
                TableName=self.table, Key={"id": {"S": cursor_id(route)}}, ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise CursorsUnavailable(f"route {route}: the reconciliation's cursor: {error_code(error)}") from None
        item: dict[str, Any] = answer.get("Item", {})
        return item
