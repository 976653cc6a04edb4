"""`polytrigger redrive`: send the events parked in the dead-letter queue back to their function.

The queue holds three kinds of message (template.yaml, ``DeadLetterQueue``):

- a Lambda **on-failure record** (both functions' asynchronous invocations, after Lambda's
  retries): ``{"version", "timestamp", "requestContext": {"requestId", "functionArn",
  "condition", "approximateInvokeCount"}, "requestPayload": <event>, "responseContext",
  "responsePayload"}`` - the event is ``requestPayload``, the function ``functionArn``;
- an **EventBridge rule** dead letter (the S3 rule could not invoke the function) and
- an **EventBridge Scheduler** dead letter (a schedule could not invoke it): the body is the
  event itself, and the message attributes say why and where (``RULE_ARN`` or ``SCHEDULE_ARN``,
  ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``, ``RETRY_ATTEMPTS``).

Each event is invoked again **asynchronously** (``InvocationType="Event"``), so a failure is
retried and parked again by Lambda instead of lost, and its message is deleted only once
Lambda has accepted the invocation (202). Actions that succeeded before come back
``duplicate``; only the failed ones run. A message that cannot be read, or whose invocation
is refused, stays in the queue and is reported. Nothing here depends on the handlers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from polytrigger.events.describe import describe_event, one_line

LAMBDA_RECORD = "lambda on-failure"
RULE_DEAD_LETTER = "eventbridge rule"
SCHEDULER_DEAD_LETTER = "scheduler"
#: Message attributes EventBridge and EventBridge Scheduler put on a dead letter.
DEAD_LETTER_ATTRIBUTES = ("RULE_ARN", "SCHEDULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE")
ACCEPTED = 202  # Lambda's answer to an accepted asynchronous invocation

Status = Literal["re-driven", "would re-drive", "skipped", "left"]


class SqsApi(Protocol):
    """The part of a boto3 SQS client that re-driving uses."""

    def receive_message(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_message(self, **kwargs: Any) -> object: ...
    def change_message_visibility(self, **kwargs: Any) -> object: ...


class LambdaApi(Protocol):
    """The part of a boto3 Lambda client that re-driving uses."""

    def invoke(self, **kwargs: Any) -> Mapping[str, Any]: ...


class UnreadableMessage(ValueError):
    """A message that is not one of the shapes above: it stays in the queue."""


@dataclass(frozen=True)
class Parked:
    """One dead-letter message, understood."""

    source: str  # LAMBDA_RECORD, RULE_DEAD_LETTER or SCHEDULER_DEAD_LETTER
    event: dict[str, Any]  # the original event, as the function first received it
    function: str | None  # the function the message names (ARN), if it names one
    error: str  # why it was parked, one line


def parse_message(message: Mapping[str, Any]) -> Parked:
    """The original event of an SQS message (as ``receive_message`` returns it), or ``UnreadableMessage``."""
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in (message.get("MessageAttributes") or {}).items()
        if isinstance(value, Mapping)
    }
    try:
        document = json.loads(message.get("Body") or "")
    except ValueError:
        raise UnreadableMessage("the body is not JSON") from None
    if isinstance(document, dict) and isinstance(document.get("requestContext"), dict):
        return _lambda_record(document)
    if any(name in attributes for name in DEAD_LETTER_ATTRIBUTES):
        if not isinstance(document, dict):
            raise UnreadableMessage("a dead letter whose body is not a JSON object")
        source = SCHEDULER_DEAD_LETTER if "SCHEDULE_ARN" in attributes else RULE_DEAD_LETTER
        error = f"{attributes.get('ERROR_CODE') or 'error'}: {attributes.get('ERROR_MESSAGE') or '(no message)'}"
        if "RETRY_ATTEMPTS" in attributes:
            error += f" (after {attributes['RETRY_ATTEMPTS']} retries"
            condition = attributes.get("EXHAUSTED_RETRY_CONDITION")
            error += f", {condition})" if condition else ")"
        return Parked(source, document, attributes.get("TARGET_ARN") or None, one_line(error))
    raise UnreadableMessage(
        "unknown shape: neither a Lambda on-failure record nor an EventBridge or Scheduler dead letter"
    )


def _lambda_record(record: dict[str, Any]) -> Parked:
    context: dict[str, Any] = record["requestContext"]
    event = record.get("requestPayload")
    if not isinstance(event, dict):
        raise UnreadableMessage("a Lambda on-failure record without a JSON object requestPayload")
    error = f"{context.get('condition') or 'failed'}"
    if "approximateInvokeCount" in context:
        error += f" after {context['approximateInvokeCount']} attempt(s)"
    response = record.get("responsePayload")
    if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
        error += f": {response.get('errorType') or 'error'}: {response.get('errorMessage') or ''}"
    function = context.get("functionArn")
    return Parked(LAMBDA_RECORD, event, function if isinstance(function, str) and function else None, one_line(error))


def function_name(name_or_arn: str) -> str:
    """``fn``, ``fn:alias``, ``123456789012:function:fn`` or a full (qualified) ARN -> ``fn``."""
    return name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]


@dataclass(frozen=True)
class Result:
    message_id: str
    status: Status
    line: str


@dataclass
class Summary:
    results: list[Result] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(result.status == status for result in self.results)

    @property
    def clean(self) -> bool:
        """True when no message had to be left in the queue (unreadable, or its invocation failed)."""
        return self.count("left") == 0

    def render(self) -> str:
        counts = ", ".join(
            f"{status} {self.count(status)}" for status in ("re-driven", "would re-drive", "skipped", "left")
        )
        return f"{len(self.results)} message(s): {counts}"


def _age(sent_ms: int, now_ms: int) -> str:
    minutes = max(0, now_ms - sent_ms) // 60_000
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _error_text(error: Exception) -> str:
    details = getattr(error, "response", None)
    if isinstance(details, dict) and isinstance(details.get("Error"), dict):
        return one_line(f"{details['Error'].get('Code')}: {details['Error'].get('Message')}")
    return one_line(f"{type(error).__name__}: {error}")


def redrive(
    queue_url: str,
    *,
    sqs: SqsApi,
    lambda_api: LambdaApi,
    function: str | None = None,
    max_messages: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], object] = print,
    wait_seconds: int = 2,
    visibility_timeout: int = 300,
    clock: Callable[[], float] = time.time,
) -> Summary:
    """Re-drive the messages of ``queue_url``; ``echo`` gets one line per message.

    ``function`` (name or ARN) re-drives only the messages for that function (and sends those
    that name none to it); without it each message goes to the function it names. A message
    sent to the queue after the run started (a re-drive that failed again) waits for the next run,
    so a persistent failure cannot loop. Messages left in the queue are made visible again at the end.
    """
    run = _Run(queue_url, sqs, lambda_api, function, dry_run, started_ms=int(clock() * 1000))
    summary = Summary()
    seen: set[str] = set()
    try:
        while max_messages is None or len(summary.results) < max_messages:
            wanted = 10 if max_messages is None else min(10, max_messages - len(summary.results))
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_timeout,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            fresh = [message for message in response.get("Messages", []) if message["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                result = run.one(message)
                summary.results.append(result)
                echo(result.line)
    finally:
        for receipt in run.leave:  # back in the queue now, not after the visibility timeout
            with contextlib.suppress(Exception):
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return summary


@dataclass
class _Run:
    queue_url: str
    sqs: SqsApi
    lambda_api: LambdaApi
    function: str | None
    dry_run: bool
    started_ms: int
    leave: list[str] = field(default_factory=list)  # receipt handles of the messages that stay

    def one(self, message: Mapping[str, Any]) -> Result:
        message_id, receipt = str(message["MessageId"]), str(message["ReceiptHandle"])

        def result(status: Status, text: str) -> Result:
            if status != "re-driven":
                self.leave.append(receipt)
            return Result(message_id, status, f"{status:<14} {message_id}  {text}")

        sent = str((message.get("Attributes") or {}).get("SentTimestamp", ""))
        if sent.isdigit() and int(sent) > self.started_ms:
            return result(
                "skipped", "parked after this run started (a re-drive that failed again?): left for the next run"
            )
        try:
            parked = parse_message(message)
        except UnreadableMessage as error:
            return result("left", f"unreadable: {error}")
        what, had, function = f"{parked.source}: {describe_event(parked.event)}", f"  [{parked.error}]", self.function
        if function and parked.function and function_name(parked.function) != function_name(function):
            return result("skipped", f"{what} -> {function_name(parked.function)}, not {function_name(function)}{had}")
        target = parked.function or function
        if target is None:
            return result("left", f"{what} -> no function named: pass --function{had}")
        where = f" -> {function_name(target)}" + (
            f" (parked {_age(int(sent), self.started_ms)} ago)" if sent.isdigit() else ""
        )
        if self.dry_run:
            return result("would re-drive", f"{what}{where}{had}")
        try:
            payload = json.dumps(parked.event).encode("utf-8")
            answer = self.lambda_api.invoke(FunctionName=target, InvocationType="Event", Payload=payload)
        except Exception as error:  # whatever refused it, the message stays and the run goes on
            return result("left", f"{what}{where}: invoke failed: {_error_text(error)}{had}")
        if answer.get("StatusCode") != ACCEPTED:
            return result("left", f"{what}{where}: invoke answered {answer.get('StatusCode')}, not {ACCEPTED}{had}")
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except Exception as error:  # invoked: a later re-drive of this message only finds duplicates
            return result("left", f"{what}{where}: invoked, but not deleted ({_error_text(error)}){had}")
        return result("re-driven", f"{what}{where}{had}")


# -- command line ----------------------------------------------------------------------------


def queue_region(queue_url: str) -> str | None:
    """The region in an SQS queue URL (``https://sqs.eu-west-1.amazonaws.com/...``), if it shows one."""
    match = re.match(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.", urlparse(queue_url).hostname or "")
    return match.group(1) if match else None


def default_clients(queue_url: str) -> tuple[SqsApi, LambdaApi]:
    """boto3 clients from the usual credential chain; the region defaults to the queue's."""
    import boto3

    session = boto3.session.Session()
    region = session.region_name or queue_region(queue_url)
    sqs: Any = session.client("sqs", region_name=region)
    lambda_api: Any = session.client("lambda", region_name=region)
    return sqs, lambda_api


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1 (got {text!r})")
    return int(text)


def add_parser(commands: Any) -> None:
    """Add the ``redrive`` subcommand to the CLI's subparsers."""
    command = commands.add_parser(
        "redrive",
        help="re-drive the events parked in the dead-letter queue (failed actions run, the rest are duplicates)",
        description=(
            "Invoke each parked event again, asynchronously, and delete its message once Lambda accepted it. "
            "Unreadable messages and refused invocations stay in the queue."
        ),
    )
    command.add_argument("--queue-url", required=True, help="the dead-letter queue (stack output DeadLetterQueueUrl)")
    command.add_argument(
        "--function",
        help="re-drive only the messages for this function (name or ARN); without it each goes to the function it names",
    )
    command.add_argument("--max", type=_positive, metavar="N", help="handle at most N messages")
    command.add_argument("--dry-run", action="store_true", help="list the messages; invoke and delete nothing")


def run(args: argparse.Namespace, *, clients: Callable[[str], tuple[SqsApi, LambdaApi]] | None = None) -> int:
    """0: every message handled was re-driven (or would be, or skipped); 1: some stay in the queue; 2: AWS error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs, lambda_api = (clients or default_clients)(args.queue_url)
        summary = redrive(
            args.queue_url,
            sqs=sqs,
            lambda_api=lambda_api,
            function=args.function,
            max_messages=args.max,
            dry_run=args.dry_run,
        )
    except (BotoCoreError, ClientError) as error:
        print(f"polytrigger: cannot read the queue: {_error_text(error)}", file=sys.stderr)
        return 2
    print(summary.render() + (" (dry run: nothing invoked, nothing deleted)" if args.dry_run else ""))
    return 0 if summary.clean else 1
