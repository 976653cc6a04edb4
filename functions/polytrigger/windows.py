"""Debounce windows: one open window per (action, sync), kept in the dedup table.

The first trigger opens the window with a conditional write; later ones are absorbed into it;
the dispatcher closes it (conditionally, so exactly one close wins) and starts once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from polytrigger.actions import Action


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    opened_at: float  # epoch seconds, by the opener's clock
    last_arrival: float  # when the latest absorbed trigger arrived
    deadline: float  # opened_at + max_wait: the start happens by then whatever keeps landing
    count: int


def window_id(action: Action) -> str:
    # Start options are part of the window: a resync must not be absorbed into a plain start.
    options = [[name, list(value) if isinstance(value, tuple) else value] for name, value in action.sync.options]
    material = json.dumps(["window", action.kind, action.sync.type, action.sync.id, options])
    return "polytrigger#window#" + hashlib.sha256(material.encode()).hexdigest()


class WindowStore(Protocol):
    def open(self, window: Window) -> bool: ...

    def absorb(self, window_id: str, now: float, stale_before: float = float("-inf")) -> bool: ...

    def get(self, window_id: str) -> Window | None: ...

    def close(self, window_id: str, opened_at: float) -> Window | None: ...


class DynamoWindows:
    """Windows as items of the dedup table (no extra table, no extra permission)."""

    def __init__(self, client: Any, table: str, ttl_seconds: int) -> None:
        self.client = client
        self.table = table
        self.ttl_seconds = ttl_seconds

    def open(self, window: Window) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "id": {"S": window.id},
                    "opened_at": {"N": repr(window.opened_at)},
                    "last_arrival": {"N": repr(window.last_arrival)},
                    "deadline": {"N": repr(window.deadline)},
                    "arrivals": {"N": str(window.count)},
                    "expiration": {"N": str(int(time.time()) + self.ttl_seconds)},
                },
                ConditionExpression="attribute_not_exists(id)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def absorb(self, window_id: str, now: float, stale_before: float = float("-inf")) -> bool:
        """Join the open window, unless it is gone or stale (its deadline long past: its message was lost)."""
        cutoff = stale_before if stale_before != float("-inf") else -1.0
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": window_id}},
                UpdateExpression="SET last_arrival = :now ADD arrivals :one",
                ConditionExpression="attribute_exists(id) AND deadline >= :cutoff",
                ExpressionAttributeValues={
                    ":now": {"N": repr(now)},
                    ":one": {"N": "1"},
                    ":cutoff": {"N": repr(cutoff)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, window_id: str) -> Window | None:
        item = self.client.get_item(TableName=self.table, Key={"id": {"S": window_id}}, ConsistentRead=True).get("Item")
        return _window(item) if item else None

    def close(self, window_id: str, opened_at: float) -> Window | None:
        try:
            answer = self.client.delete_item(
                TableName=self.table,
                Key={"id": {"S": window_id}},
                ConditionExpression="opened_at = :opened",
                ExpressionAttributeValues={":opened": {"N": repr(opened_at)}},
                ReturnValues="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        item = answer.get("Attributes")
        return _window(item) if item else None


def _window(item: dict[str, Any]) -> Window:
    return Window(
        id=item["id"]["S"],
        opened_at=float(item["opened_at"]["N"]),
        last_arrival=float(item["last_arrival"]["N"]),
        deadline=float(item["deadline"]["N"]),
        count=int(item["arrivals"]["N"]),
    )


class MemoryWindows:
    """The same contract in memory: for simulations and unit tests."""

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}

    def open(self, window: Window) -> bool:
        if window.id in self.windows:
            return False
        self.windows[window.id] = window
        return True

    def absorb(self, window_id: str, now: float, stale_before: float = float("-inf")) -> bool:
        window = self.windows.get(window_id)
        if window is None or window.deadline < stale_before:
            return False
        self.windows[window_id] = Window(window.id, window.opened_at, now, window.deadline, window.count + 1)
        return True

    def get(self, window_id: str) -> Window | None:
        return self.windows.get(window_id)

    def close(self, window_id: str, opened_at: float) -> Window | None:
        window = self.windows.get(window_id)
        if window is None or window.opened_at != opened_at:
            return None
        return self.windows.pop(window_id)
