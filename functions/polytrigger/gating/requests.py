"""The requests gates make to the dedup table, and what their failures mean to the caller.

A condition that fails is an answer (`ConditionFailed`, a cancelled transaction's reasons); any
other error is `GatesUnavailable`: the object's event fails and is delivered again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.observability import error_code

MAX_TRIES = 8  # a gate contended this often by one arrival is a busy gate: the event is retried
BATCH_WRITE, BATCH_GET = 25, 100


class GatesUnavailable(Exception):
    """The table could not be read or written: the object's event fails and is delivered again."""


class ConditionFailed(Exception):
    """A request's condition did not hold: an answer, not an error."""


class GateRequests:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.calls = 0  # requests made, for the benchmarks

    def _transact(self, items: list[dict[str, Any]], what: str) -> list[str] | None:
        """One transaction; None when written, else each item's cancellation code ("None" for the ones that held)."""
        try:
            self.calls += 1
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise GatesUnavailable(f"the gate could not {what}: {error_code(error)}") from None
            return [str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])]
        except BotoCoreError as error:
            raise GatesUnavailable(f"the gate could not {what}: {error_code(error)}") from None
        return None

    def _item(self, key: str) -> dict[str, Any]:
        answer = self._call(
            lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": key}}, ConsistentRead=True)
        )
        return answer.get("Item") or {}

    def _conditional(self, key: dict[str, Any], update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self._call(
                lambda: self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            )
        except ConditionFailed:
            return False
        return True

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        request = {self.table: [{"PutRequest": {"Item": item}} for item in items]}
        for _ in range(MAX_TRIES):
            answer = self._call(lambda request=request: self.client.batch_write_item(RequestItems=request))  # type: ignore[misc]
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
            time.sleep(0.05)
        raise GatesUnavailable("the manifest's entries could not all be written")

    def _batch_get(self, keys: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(keys), BATCH_GET):
            request = {
                self.table: {
                    "Keys": [{"id": {"S": key}} for key in keys[start : start + BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(MAX_TRIES):
                answer = self._call(lambda request=request: self.client.batch_get_item(RequestItems=request))  # type: ignore[misc]
                yield from answer.get("Responses", {}).get(self.table, [])
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05)

    def _call(self, call: Callable[[], Any]) -> Any:
        self.calls += 1
        try:
            return call()
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise ConditionFailed from None
            raise GatesUnavailable(f"the gate's table: {error_code(error)}") from None
        except BotoCoreError as error:
            raise GatesUnavailable(f"the gate's table: {error_code(error)}") from None
