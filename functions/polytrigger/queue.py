"""The dispatch queue: where deferred and debounced starts wait (SQS; delays up to 15 minutes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

MAX_DELAY_SECONDS = 900


class Queue(Protocol):
    def send(self, body: dict[str, Any], delay_seconds: int) -> None: ...

    def park(self, body: dict[str, Any], reason: str) -> None: ...


class SqsQueue:
    """SQS, with a dead-letter queue for what a person must look at; the client is made on first use."""

    def __init__(self, queue_url: str, dead_letter_url: str, make_client: Callable[[], Any]) -> None:
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url
        self._make_client = make_client

    @property
    def client(self) -> Any:
        return self._make_client()

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body), DelaySeconds=delay)

    def park(self, body: dict[str, Any], reason: str) -> None:
        if not self.dead_letter_url:
            raise RuntimeError("DISPATCH_DEAD_LETTER_QUEUE_URL is not set: cannot park a deferred start")
        self.client.send_message(
            QueueUrl=self.dead_letter_url,
            MessageBody=json.dumps({**body, "parked_because": reason}),
            MessageAttributes={"ERROR_MESSAGE": {"DataType": "String", "StringValue": reason[:1000]}},
        )
