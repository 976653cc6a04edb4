"""SQS: the dispatch queue where deferred and debounced starts wait (delays up to 15 minutes), and
the dead-letter queues where what a person must look at is parked, with the reason."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.actions import Action
from polytrigger.dispatch.messages import Message, deferred_start, encode
from polytrigger.dispatch.ports import DISPATCH_DEAD_LETTERS, MAX_DELAY_SECONDS, QueueUnavailable
from polytrigger.observability import error_code

# What a parked body may take of an SQS message's 256 KiB, leaving room for the reason attribute.
MAX_PARKED_BYTES = 250_000


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
        try:
            self.client.send_message(
                QueueUrl=self.queue_url, MessageBody=json.dumps(encode(message)), DelaySeconds=delay
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailable(error_code(error)) from None

    def park(self, message: Message, reason: str) -> None:
        self.park_body(json.dumps({**encode(message), "parked_because": reason}), reason)

    def park_start(self, action: Action, reason: str, *, clock: Callable[[], float] = time.time) -> str:
        """A refused start with no event to park it with (reconciliation found its object), as a start
        message: `polytrigger redrive` sends it to the dispatcher once the cause is fixed. Answers where."""
        now = clock()
        self.park(deferred_start(action, since=now, attempt=1, first_at=now), reason)
        return DISPATCH_DEAD_LETTERS

    def park_body(self, body: str, reason: str) -> None:
        """Park a message as it came (one that could not be read, or was refused), with why."""
        if not self.dead_letter_url:
            raise QueueUnavailable("DISPATCH_DEAD_LETTER_QUEUE_URL is not set: cannot park a dispatch message")
        if len(body.encode("utf-8")) > MAX_PARKED_BYTES:  # with the reason beside it, it must still fit
            body = body[: MAX_PARKED_BYTES // 4]
        _send(self.client, self.dead_letter_url, body, reason)


class EventParking:
    """Parks a trigger event in the stack's dead-letter queue as a Lambda on-failure record.

    The same shape Lambda writes there after its own retries (the event is `requestPayload`, the
    function `requestContext.functionArn`), so `polytrigger redrive` reads both alike and sends the
    event back to its function once the cause is fixed.
    """

    def __init__(self, queue_url: str, make_client: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self.queue_url = queue_url
        self._make_client = make_client
        self._clock = clock

    def park(self, event: Any, reason: str, *, function_arn: str, request_id: str) -> None:
        if not self.queue_url:
            raise QueueUnavailable("DEAD_LETTER_QUEUE_URL is not set: cannot park the event")
        stamp = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {
            "version": "1.0",
            "timestamp": stamp,
            "requestContext": {
                "requestId": request_id,
                "functionArn": function_arn,
                "condition": "PermanentFailure",
                "approximateInvokeCount": 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Parked"},
            "responsePayload": {"errorType": "Parked", "errorMessage": reason},
        }
        body = json.dumps(record)
        if len(body.encode("utf-8")) > MAX_PARKED_BYTES:  # an SQS message holds 256 KiB: keep what fits
            record["requestPayload"] = {"oversized_event": json.dumps(event)[: MAX_PARKED_BYTES // 8]}
            body = json.dumps(record)
        _send(self._make_client(), self.queue_url, body, reason)


def _send(client: Any, queue_url: str, body: str, reason: str) -> None:
    try:
        client.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={"ERROR_MESSAGE": {"DataType": "String", "StringValue": reason[:1000] or "parked"}},
        )
    except (BotoCoreError, ClientError) as error:
        raise QueueUnavailable(error_code(error)) from None
