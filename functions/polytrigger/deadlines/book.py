"""The deadlines' items in the dedup table (`deadlines.watch` says what they mean), and what they read.

- `deadline#<route>`: `checked_until`, and `due_in`/`due_at` (`late#<shard>`): the route's next look.
- `late#<route>#<day>`: `state` (`warned`, `missed`, then `arrived`, `on time`, `never arrived`, ...),
  what was due and by when; in the index (`due_at`) only while missed and watched.

Every write that reports is conditional, so it succeeds for one look only: that look reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.dispatch.landings import DynamoLandings, Landing
from polytrigger.dispatch.table import due_in, due_items, expires, iso
from polytrigger.gating.state import GateState, read_gate
from polytrigger.observability import error_code
from polytrigger.routing.globs import Partition

KIND = "late"  # the `due` index partitions of both items
DEADLINE_PREFIX = "deadline#"
LATE_PREFIX = "late#"
_NEVER = datetime.max.replace(tzinfo=UTC)
KEEP_SECONDS = 14 * 86400  # an item outlives its last use this long (TTL)
MAX_ID_BYTES = 1024


class DeadlinesUnavailable(Exception):
    """The table could not be read or written (the next look tries again)."""


def late_id(route: str, day: date) -> str:
    """Day D's item: readable when it fits a DynamoDB key, else a digest of it."""
    text = f"{LATE_PREFIX}{route}#{day.isoformat()}"
    if len(text.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{LATE_PREFIX}sha256:{digest}#{day.isoformat()}"


@dataclass(frozen=True, slots=True)
class Late:
    """A missed day due for another look."""

    id: str
    route: str
    day: date
    by: datetime


@dataclass(frozen=True, slots=True)
class Due:
    """A route's next look (`deadline#…`) or a missed day (`late#…`), as the `due` index gives them."""

    route: str = ""  # a route to look at
    late: Late | None = None  # ... or a missed day


class DeadlineBook:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], float]) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.landings = DynamoLandings(client, table, clock=clock)

    # -- what is there ------------------------------------------------------------------------------

    def landing(self, bucket: str, key: str) -> Landing | None:
        return self.landings.get(bucket, key)

    def gate(self, route: str, partition: Partition) -> GateState | None:
        state: GateState | None = self._read(lambda: read_gate(self.client, self.table, route, partition))
        return state

    def due(self, now: datetime) -> Iterator[Due]:
        for item in due_items(self.client, self.table, KIND, now, self._read):
            ident = item["id"]["S"]
            if ident.startswith(DEADLINE_PREFIX):
                yield Due(route=ident[len(DEADLINE_PREFIX) :])
            elif "route" in item and "day" in item and "by" in item:
                by = datetime.fromisoformat(item["by"]["S"])
                yield Due(late=Late(ident, item["route"]["S"], date.fromisoformat(item["day"]["S"]), by))

    # -- a route's looks -------------------------------------------------------------------------------

    def checked_until(self, route: str) -> datetime | None:
        item = self._read(
            lambda: self.client.get_item(
                TableName=self.table, Key={"id": {"S": DEADLINE_PREFIX + route}}, ConsistentRead=True
            ).get("Item")
        )
        if not item or "checked_until" not in item:
            return None
        return datetime.fromisoformat(item["checked_until"]["S"])

    def checked(self, route: str, now: datetime, next_look: datetime | None) -> None:
        """Looked at up to `now`; next look at `next_look` (never moved back by a slower, older look)."""
        ident = DEADLINE_PREFIX + route
        values: dict[str, Any] = {
            ":now": {"S": iso(now)},
            ":expires": expires(KEEP_SECONDS, (next_look or now).timestamp()),
        }
        update = "SET checked_until = :now, expiration = :expires"
        if next_look is not None:
            update += ", due_in = :shard, due_at = :next"
            values[":shard"] = {"S": due_in(KIND, ident)}
            values[":next"] = {"S": iso(next_look)}
        else:
            update += " REMOVE due_in, due_at"
        self._update(ident, update, "attribute_not_exists(checked_until) OR checked_until <= :now", values)

    def forget(self, route: str) -> None:
        """A route without `expect` (any more): its next look is gone."""
        try:
            self.client.delete_item(TableName=self.table, Key={"id": {"S": DEADLINE_PREFIX + route}})
        except (BotoCoreError, ClientError) as error:
            raise DeadlinesUnavailable(error_code(error)) from None

    # -- a day's deadline ------------------------------------------------------------------------------

    def note(
        self, day: Late, what: str, state: str, now: datetime, *, until: datetime, again: datetime = _NEVER
    ) -> bool:
        """Note day D `warned` (if nothing is noted) or `missed` (if nothing, or a warning, is): True only for
        the look that made it so, which reports. A missed day is due again at `again`; kept until `until`."""
        ident = day.id
        values: dict[str, Any] = {
            ":route": {"S": day.route},
            ":day": {"S": day.day.isoformat()},
            ":due": {"S": what[:1000]},
            ":by": {"S": iso(day.by)},
            ":state": {"S": state},
            ":at": {"S": iso(now)},
            ":expires": expires(KEEP_SECONDS, until.timestamp()),
        }
        update = "SET #route = :route, #day = :day, #due = :due, #by = :by, #state = :state, expiration = :expires"
        condition = "attribute_not_exists(id)"
        if state == "missed":
            update += ", missed_at = :at, due_in = :shard, due_at = :next"
            values[":shard"] = {"S": due_in(KIND, ident)}
            values[":next"] = {"S": iso(again)}
            values[":warned"] = {"S": "warned"}
            condition += " OR #state = :warned"
        else:
            update += ", warned_at = :at"
        names = {"#route": "route", "#day": "day", "#due": "due", "#by": "by", "#state": "state"}
        return self._update(ident, update, condition, values, names)

    def again(self, ident: str, at: datetime) -> None:
        """Still missing: look again at `at`."""
        self._update(ident, "SET due_at = :next", "attribute_exists(due_at)", {":next": {"S": iso(at)}})

    def close(self, ident: str, state: str, *, only_if: str) -> bool:
        """Out of the index, with why; True only for the look that closed it (which reports)."""
        return self._update(
            ident,
            "SET #state = :state, closed_at = :at REMOVE due_in, due_at",
            "#state = :was",
            {
                ":state": {"S": state},
                ":was": {"S": only_if},
                ":at": {"S": iso(datetime.fromtimestamp(self.clock(), UTC))},
            },
            {"#state": "state"},
        )

    def _update(
        self, ident: str, update: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> bool:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"id": {"S": ident}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self.client.update_item(**request)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise DeadlinesUnavailable(error_code(error)) from None
        except BotoCoreError as error:
            raise DeadlinesUnavailable(error_code(error)) from None
        return True

    @staticmethod
    def _read(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (BotoCoreError, ClientError) as error:
            raise DeadlinesUnavailable(error_code(error)) from None
