"""The `WindowStore` port on DynamoDB: debounce windows as conditional items of the dedup table.

The first trigger opens the window with a conditional write; later ones are absorbed into it;
the dispatcher closes it (conditionally, so exactly one close wins) and starts once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.dispatch.ports import Window, WindowsUnavailable
from polytrigger.dispatch.table import expires
from polytrigger.observability import error_code


class DynamoWindows:
    """Windows as items of the dedup table (no extra table, no extra permission)."""

    def __init__(self, client: Any, table: str, ttl_seconds: int) -> None:
        self.client = client
        self.table = table
        self.ttl_seconds = ttl_seconds

    def open(self, window: Window) -> bool:
        item = {
            "id": {"S": window.id},
            "opened_at": {"N": repr(window.opened_at)},
            "last_arrival": {"N": repr(window.last_arrival)},
            "deadline": {"N": repr(window.deadline)},
            "arrivals": {"N": str(window.count)},
            # kept at least until its deadline (a max_wait may be longer than the dedup TTL), then as long again
            "expiration": expires(self.ttl_seconds, window.deadline),
        }
        answer = self._conditional(
            lambda: self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(id)"
            )
        )
        return answer is not None

    def absorb(self, window_id: str, now: float, *, debounce: int, overdue_before: float) -> Window | None:
        """Join the open window, unless it is gone or overdue (its message was lost): its new state."""
        answer = self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": window_id}},
                UpdateExpression="SET last_arrival = :now ADD arrivals :one",
                # flush due = min(last_arrival + debounce, deadline) >= overdue_before
                ConditionExpression="attribute_exists(id) AND deadline >= :due AND last_arrival >= :quiet",
                ExpressionAttributeValues={
                    ":now": {"N": repr(now)},
                    ":one": {"N": "1"},
                    ":due": {"N": repr(overdue_before)},
                    ":quiet": {"N": repr(overdue_before - debounce)},
                },
                ReturnValues="ALL_NEW",
            )
        )
        item = answer.get("Attributes") if answer is not None else None
        return _window(item) if item else None

    def confirm(self, window_id: str, opened_at: float) -> None:
        self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": window_id}},
                UpdateExpression="SET sent = :yes",
                ConditionExpression="opened_at = :opened",
                ExpressionAttributeValues={":yes": {"BOOL": True}, ":opened": {"N": repr(opened_at)}},
            )
        )

    def get(self, window_id: str) -> Window | None:
        try:
            answer = self.client.get_item(TableName=self.table, Key={"id": {"S": window_id}}, ConsistentRead=True)
        except (BotoCoreError, ClientError) as error:
            raise WindowsUnavailable(error_code(error)) from None
        item = answer.get("Item")
        return _window(item) if item else None

    def close(self, window_id: str, opened_at: float) -> Window | None:
        answer = self._conditional(
            lambda: self.client.delete_item(
                TableName=self.table,
                Key={"id": {"S": window_id}},
                ConditionExpression="opened_at = :opened",
                ExpressionAttributeValues={":opened": {"N": repr(opened_at)}},
                ReturnValues="ALL_OLD",
            )
        )
        item = answer.get("Attributes") if answer is not None else None
        return _window(item) if item else None

    def _conditional(self, write: Callable[[], Any]) -> Any | None:
        """The write's answer, or None when its condition failed (another writer won)."""
        try:
            return write()
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        except (BotoCoreError, ClientError) as error:
            raise WindowsUnavailable(error_code(error)) from None


def _window(item: dict[str, Any]) -> Window:
    return Window(
        id=item["id"]["S"],
        opened_at=float(item["opened_at"]["N"]),
        last_arrival=float(item["last_arrival"]["N"]),
        deadline=float(item["deadline"]["N"]),
        count=int(item["arrivals"]["N"]),
        sent=bool(item.get("sent", {}).get("BOOL", False)),
    )
