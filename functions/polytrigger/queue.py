"""The dispatch queue: where deferred and debounced starts wait (SQS; delays up to 15 minutes)."""

from __future__ import annotations

import json
from typing import Any, Protocol

MAX_DELAY_SECONDS = 900


class Queue(Protocol):
    def send(self, body: dict[str, Any], delay_seconds: int) -> None: ...

    def park(self, body: dict[str, Any], reason: str) -> None: ...


class SqsQueue:
    """SQS, with a dead-letter queue for what a person must look at; the client is made on first use."""

    def __init__(self, queue_url: str, dead_letter_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
            self._client = boto3.client("sqs", config=config)
        return self._client

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
