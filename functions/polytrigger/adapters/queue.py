"""The `Queue` port on SQS: where deferred and debounced starts wait (delays up to 15 minutes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.adapters.aws import error_code
from polytrigger.dispatch.messages import Message, encode
from polytrigger.dispatch.ports import MAX_DELAY_SECONDS, QueueUnavailable


class SqsQueue:
    """SQS, with a dead-letter queue for what a person must look at; the client is made on first use."""

    def __init__(self, queue_url: str, dead_letter_url: str, make_client: Callable[[], Any]) -> None:
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url
        self._make_client = make_client

    @property
    def client(self) -> Any:
        return self._make_client()

    def send(self, message: Message, delay_seconds: int) -> None:
        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        self._send(QueueUrl=self.queue_url, MessageBody=json.dumps(encode(message)), DelaySeconds=delay)

    def park(self, message: Message, reason: str) -> None:
        if not self.dead_letter_url:
            raise QueueUnavailable("DISPATCH_DEAD_LETTER_QUEUE_URL is not set: cannot park a deferred start")
        self._send(
            QueueUrl=self.dead_letter_url,
            MessageBody=json.dumps({**encode(message), "parked_because": reason}),
            MessageAttributes={"ERROR_MESSAGE": {"DataType": "String", "StringValue": reason[:1000]}},
        )

    def _send(self, **request: Any) -> None:
        try:
            self.client.send_message(**request)
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailable(error_code(error)) from None
