"""Lambda's asynchronous invocation, as the template configures it, for the reliability runs.

A failed invocation is retried `MaximumRetryAttempts` (2) times; then the event goes to the
on-failure destination — here an SQS queue on the moto server — as the same record Lambda
writes, so `polytrigger redrive` and the counts see exactly what production would park.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.stack.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
ACCOUNT = "123456789012"


@dataclass
class Delivery:
    """What happened to one asynchronous invocation: its answers, and whether it was parked."""

    summaries: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    parked: bool = False


def failure_record(function_name: str, event: dict[str, Any], error: BaseException, attempts: int) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination when retries are exhausted."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error)[:1000], "errorType": type(error).__name__},
    }


class AsyncInvoker:
    """Invoke a handler the way Lambda invokes it asynchronously: retries, then the dead-letter queue."""

    def __init__(
        self,
        handler: Handler,
        *,
        function_name: str,
        sqs: Any,
        dlq_url: str,
        retries: int = 2,
        retry_delays: tuple[float, ...] = (0.05, 0.1),
        timeout_seconds: float = 60.0,
    ) -> None:
        self.handler = handler
        self.function_name = function_name
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.retries = retries
        self.retry_delays = retry_delays
        self.timeout_seconds = timeout_seconds

    def invoke(self, event: dict[str, Any]) -> Delivery:
        delivery = Delivery()
        for attempt in range(self.retries + 1):
            context = LocalContext(function_name=self.function_name, timeout_seconds=self.timeout_seconds)
            try:
                delivery.summaries.append(self.handler(event, context))
                return delivery
            except Exception as error:  # any failure is retried, then parked, like Lambda
                delivery.errors.append(str(error))
                if attempt == self.retries:
                    self.park(event, error, attempt + 1)
                    delivery.parked = True
                    return delivery
                time.sleep(self.retry_delays[min(attempt, len(self.retry_delays) - 1)])
        return delivery

    def park(self, event: dict[str, Any], error: BaseException, attempts: int) -> None:
        record = failure_record(self.function_name, event, error, attempts)
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record))


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message body in a queue (deleting them): what an operator would find parked."""
    found: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
