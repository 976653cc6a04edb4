"""What the Lambda event source mapping does for the dispatcher, on the local stack (the demo).

Receives messages from the dispatch queue (moto honours DelaySeconds), hands them to the real
dispatcher handler as an SQS event, and deletes those not reported in `batchItemFailures`.
Every loop is time-boxed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from local.stack.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:polytrigger-dispatch"


def lambda_record(message: dict[str, Any], arn: str = QUEUE_ARN, region: str = "us-east-1") -> dict[str, Any]:
    """An SQS message (as `receive_message` returns it) as the Lambda event source mapping hands it over."""
    attributes = message.get("Attributes", {})
    now = str(int(time.time() * 1000))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", now),
            "SenderId": attributes.get("SenderId", "AROAEXAMPLE:polytrigger"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", now),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [lambda_record(message) for message in messages]}


def pump(sqs: Any, queue_url: str, handler: Handler, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Deliver until the queue holds nothing, delayed messages included; return the handler's answers."""
    answers: list[dict[str, Any]] = []
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = received.get("Messages", [])
        if not messages:
            if _pending(sqs, queue_url) == 0:
                return answers
            continue
        answer = handler(sqs_event(messages), LocalContext(function_name="polytrigger-dispatcher"))
        answers.append(answer)
        failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return answers


def _pending(sqs: Any, queue_url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, "0")) for name in names)
