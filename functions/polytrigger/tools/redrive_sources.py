"""What `polytrigger redrive` reads: the dead-letter messages, the events' own times, and the stack.

A dead-letter queue message is one of four shapes:

- a **dispatch message** (`polytrigger.dispatch.messages`: a deferred start or a debounce window
  flush), parked in the dispatch dead-letter queue by the dispatcher or by SQS after 5 receives.
  It is never an event for a function: it goes back to the dispatch queue. It is recognised first,
  because the dispatcher parks it with an ``ERROR_MESSAGE`` attribute, as EventBridge does;
- a Lambda **on-failure record** (``requestContext``, ``requestPayload``): written by Lambda after
  its retries, or by polytrigger itself when it parks an event for a permanent failure (condition
  ``PermanentFailure``, ``functionError`` ``Parked``); the event is ``requestPayload``, the function
  ``requestContext.functionArn``;
- an **EventBridge rule** or **EventBridge Scheduler** dead letter: the body is the event, and the
  attributes say where it came from (``RULE_ARN`` or ``SCHEDULE_ARN``), where it went
  (``TARGET_ARN``) and why it failed (``ERROR_CODE``, ``ERROR_MESSAGE``, ...).

Anything else is unreadable, and stays in the queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from polytrigger.core.triggers import parse_time
from polytrigger.dispatch.messages import DeferredStart, Message, UnsupportedMessage, WindowFlush, decode_body, encode
from polytrigger.events import trigger_groups
from polytrigger.events.describe import one_line

LAMBDA_RECORD = "lambda on-failure"
RULE_DEAD_LETTER = "eventbridge rule"
SCHEDULER_DEAD_LETTER = "scheduler"
#: Message attributes EventBridge and EventBridge Scheduler put on a dead letter.
DEAD_LETTER_ATTRIBUTES = ("RULE_ARN", "SCHEDULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE")
#: What a person's re-drive writes into a deferred start that does not say why it was parked.
REDRIVEN_BECAUSE = "re-driven by a person after it failed on the dispatch queue"
DEFAULT_DEDUP_TTL = 86400  # template.yaml, IdempotencyTtlSeconds


class UnreadableMessage(ValueError):
    """A message that is not one of the shapes above: it stays in the queue."""


@dataclass(frozen=True)
class Parked:
    """One dead-letter message for a function, understood."""

    source: str  # LAMBDA_RECORD, RULE_DEAD_LETTER or SCHEDULER_DEAD_LETTER
    event: dict[str, Any]  # the original event, as the function first received it
    function: str | None  # the function the message names (ARN), if it names one
    error: str  # why it was parked, one line


def message_attributes(message: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: str(value.get("StringValue", ""))
        for name, value in (message.get("MessageAttributes") or {}).items()
        if isinstance(value, Mapping)
    }


def parse_message(message: Mapping[str, Any]) -> Parked:
    """The original event of an SQS message (as ``receive_message`` returns it), or ``UnreadableMessage``."""
    attributes = message_attributes(message)
    try:
        document = json.loads(message.get("Body") or "")
    except (ValueError, RecursionError):
        raise UnreadableMessage("the body is not JSON") from None
    if isinstance(document, dict) and isinstance(document.get("requestContext"), dict):
        return _lambda_record(document)
    if "RULE_ARN" in attributes or "SCHEDULE_ARN" in attributes:  # EventBridge always says where it came from
        if not isinstance(document, dict):
            raise UnreadableMessage("a dead letter whose body is not a JSON object")
        source = SCHEDULER_DEAD_LETTER if "SCHEDULE_ARN" in attributes else RULE_DEAD_LETTER
        error = f"{attributes.get('ERROR_CODE') or 'error'}: {attributes.get('ERROR_MESSAGE') or '(no message)'}"
        if "RETRY_ATTEMPTS" in attributes:
            error += f" (after {attributes['RETRY_ATTEMPTS']} retries"
            condition = attributes.get("EXHAUSTED_RETRY_CONDITION")
            error += f", {condition})" if condition else ")"
        return Parked(source, document, attributes.get("TARGET_ARN") or None, one_line(error))
    if any(name in attributes for name in DEAD_LETTER_ATTRIBUTES):  # e.g. a dispatch message parked unread
        reason = attributes.get("ERROR_MESSAGE") or attributes.get("ERROR_CODE")
        raise UnreadableMessage(f"parked without saying where it came from (no RULE_ARN or SCHEDULE_ARN): {reason}")
    raise UnreadableMessage(
        "unknown shape: neither a dispatch message, a Lambda on-failure record nor an EventBridge or Scheduler dead letter"
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


# -- functions -------------------------------------------------------------------------------


def function_name(name_or_arn: str) -> str:
    """``fn``, ``fn:alias``, ``123456789012:function:fn`` or a full (qualified) ARN -> ``fn``."""
    return name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]


def same_function(one: str, other: str) -> bool:
    """The same function name and, where both say them, the same account and region."""
    if function_name(one) != function_name(other):
        return False
    where, other_where = _place(one), _place(other)
    return all(a == b for a, b in zip(where, other_where, strict=True) if a and b)


def _place(name_or_arn: str) -> tuple[str, str]:
    """(region, account) of ``arn:aws:lambda:REGION:ACCOUNT:function:fn`` or ``ACCOUNT:function:fn``; "" if unsaid."""
    head, found, _ = name_or_arn.partition(":function:")
    parts = head.split(":") if found else []
    return (parts[-2] if len(parts) >= 5 else "", parts[-1] if parts else "")


# -- dispatch messages -----------------------------------------------------------------------


def dispatch_message(message: Mapping[str, Any]) -> Message | None:
    """The dispatch message in an SQS message, or None when it is not one."""
    try:
        return decode_body(message.get("Body"))
    except UnsupportedMessage:
        return None


def describe_dispatch(message: Message) -> str:
    action = message.action
    kind = f"deferred start (attempt {message.attempt})" if isinstance(message, DeferredStart) else "debounce window"
    return one_line(f"dispatch {kind}: {action.trigger.describe()}, route {action.route}, sync {action.sync.id}")


def dispatch_body(message: Message, body: str) -> str:
    """What goes back to the dispatch queue: a deferred start says why it was parked, so it gets a fresh wait.

    The dispatcher re-parks a deferred start at its first 409 once its deferral has run out, unless
    the message has ``parked_because``. A window flush goes back as it came.
    """
    if not isinstance(message, DeferredStart) or message.parked_because is not None:
        return body
    return json.dumps({**encode(message), "parked_because": REDRIVEN_BECAUSE})


# -- the event's own time ----------------------------------------------------------------------


def event_time(event: Mapping[str, Any] | Message) -> float | None:
    """When the event happened, as it says itself (epoch seconds): the oldest of its triggers' times.

    A dispatch message's trigger time; an S3 EventBridge event's or a schedule's ``time``; an S3
    notification record's ``eventTime`` (also inside SQS and SNS deliveries). None if it says none.
    """
    if isinstance(event, DeferredStart | WindowFlush):
        return event.action.trigger.time.timestamp()
    try:
        times = [trigger.time.timestamp() for group in trigger_groups(event) for trigger in group]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # it may be parked for being odd
        times = []
    if not times:  # not a shape the handlers read: its raw time fields, if any
        records = event.get("Records")
        raw = (
            [event.get("time"), *(r.get("eventTime") for r in records if isinstance(r, dict))]
            if isinstance(records, list)
            else [event.get("time")]
        )
        times = [seconds for seconds in map(_seconds, raw) if seconds is not None]
    return min(times) if times else None


def _seconds(value: object) -> float | None:
    try:
        return parse_time(value).timestamp()
    except (ValueError, TypeError, OverflowError):
        return None


# -- the stack ---------------------------------------------------------------------------------


class CloudFormationApi(Protocol):
    """The part of a boto3 CloudFormation client that reading the stack uses."""

    def describe_stacks(self, **kwargs: Any) -> Mapping[str, Any]: ...


class StackError(ValueError):
    """The stack is not a polytrigger stack (or not one this version can read)."""


FUNCTION_OUTPUTS = ("S3TriggerFunctionArn", "ScheduleTriggerFunctionArn")


@dataclass(frozen=True)
class Stack:
    """What re-driving needs from a polytrigger stack's outputs and parameters."""

    name: str
    functions: tuple[str, ...]  # the only functions a re-drive may invoke (ARNs)
    dead_letter_queue_url: str | None
    dispatch_dead_letter_queue_url: str | None
    dispatch_queue_url: str | None
    dedup_ttl: int  # IdempotencyTtlSeconds


def read_stack(cloudformation: CloudFormationApi, name: str) -> Stack:
    """The stack's outputs and ``IdempotencyTtlSeconds`` (``describe_stacks``); ``StackError`` if it is not ours."""
    stacks = cloudformation.describe_stacks(StackName=name).get("Stacks") or []
    if not stacks:
        raise StackError(f"no stack named {name}")
    outputs = {str(o.get("OutputKey")): str(o.get("OutputValue") or "") for o in stacks[0].get("Outputs") or []}
    parameters = {str(p.get("ParameterKey")): p.get("ParameterValue") for p in stacks[0].get("Parameters") or []}
    functions = tuple(outputs[key] for key in FUNCTION_OUTPUTS if outputs.get(key))
    if not functions:
        raise StackError(f"stack {name} has no output {' or '.join(FUNCTION_OUTPUTS)}: is it a polytrigger stack?")
    ttl = str(parameters.get("IdempotencyTtlSeconds") or DEFAULT_DEDUP_TTL)
    if not ttl.isdigit() or int(ttl) < 1:
        raise StackError(f"stack {name}: parameter IdempotencyTtlSeconds is not a number of seconds ({ttl[:40]!r})")
    return Stack(
        name=name,
        functions=functions,
        dead_letter_queue_url=outputs.get("DeadLetterQueueUrl") or None,
        dispatch_dead_letter_queue_url=outputs.get("DispatchDeadLetterQueueUrl") or None,
        dispatch_queue_url=outputs.get("DispatchQueueUrl") or None,
        dedup_ttl=int(ttl),
    )
