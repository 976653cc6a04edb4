"""`polytrigger redrive`: send what is parked in the dead-letter queues back where it belongs.

What the messages are is read in `redrive_sources`; the command line is `redrive_cli`. An event for a function is invoked again
**asynchronously** (``InvocationType="Event"``), so a failure is retried and parked again by Lambda
instead of lost, and its message is deleted only once Lambda has accepted the invocation (202).
Only the stack's own functions are invoked (``--stack``, else those given with ``--function``):
a message naming another function stays in the queue. A dispatch message (a deferred start or a
debounce window) is never an event: it goes back to the dispatch queue, then is deleted.

Actions that succeeded before come back ``duplicate`` - as long as their dedup records live
(``IdempotencyTtlSeconds``). A message whose event is older than that stays in the queue unless
``--force``: its records have expired, so actions that did succeed the first time would run again.
A message that cannot be read, or whose invocation is refused, stays in the queue and is reported.
Nothing here depends on the handlers.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from polytrigger.dispatch.messages import DeferredStart, Message
from polytrigger.events.describe import describe_event, one_line
from polytrigger.tools.redrive_sources import (
    DEFAULT_DEDUP_TTL,
    UnreadableMessage,
    describe_dispatch,
    dispatch_body,
    dispatch_message,
    event_time,
    function_name,
    message_attributes,
    parse_message,
    same_function,
)

ACCEPTED = 202  # Lambda's answer to an accepted asynchronous invocation
FORCE_MEANS = (
    "the dedup records have expired, so actions that did succeed the first time will run again (a second start)"
)
WOULD_REPEAT = (
    "its dedup records have expired, so actions that did succeed the first time would run again (a second start)"
)

Status = Literal["re-driven", "would re-drive", "skipped", "left"]
STATUSES: tuple[Status, ...] = ("re-driven", "would re-drive", "skipped", "left")
# Why a message was left in the queue, in the order the summary counts them.
UNREADABLE, NO_FUNCTION, NOT_ALLOWED, TOO_OLD, NO_DISPATCH_QUEUE, FAILED = (
    "unreadable",
    "no function",
    "not allowed",
    "too old",
    "no dispatch queue",
    "failed",
)
LEFT_BECAUSE = (UNREADABLE, NO_FUNCTION, NOT_ALLOWED, TOO_OLD, NO_DISPATCH_QUEUE, FAILED)


class SqsApi(Protocol):
    """The part of a boto3 SQS client that re-driving uses."""

    def receive_message(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_message(self, **kwargs: Any) -> object: ...
    def change_message_visibility(self, **kwargs: Any) -> object: ...
    def send_message(self, **kwargs: Any) -> object: ...


class LambdaApi(Protocol):
    """The part of a boto3 Lambda client that re-driving uses."""

    def invoke(self, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Policy:
    """What a run may do: the functions it may invoke, where dispatch messages go, how old is too old."""

    functions: tuple[str, ...] = ()  # the only functions it may invoke (names or ARNs); none: it invokes nothing
    only: tuple[str, ...] = ()  # --function: re-drive only the messages for these (and send those naming none there)
    dispatch_queue_url: str | None = None
    dedup_ttl: int = DEFAULT_DEDUP_TTL  # seconds: an older event's dedup records have expired
    force: bool = False  # re-drive events older than dedup_ttl all the same
    stack: str | None = None  # the stack the functions come from, for the lines

    def allowed(self, function: str) -> str | None:
        """What to invoke for a function a message names: the allowed function itself (never the message's ARN)."""
        return next((mine for mine in self.functions if same_function(mine, function)), None)

    @property
    def scope(self) -> str:
        return f"stack {self.stack}'s functions" if self.stack else "the functions given with --function"


@dataclass(frozen=True)
class Result:
    message_id: str
    status: Status
    line: str
    why: str = ""  # for "left": one of LEFT_BECAUSE


@dataclass
class Summary:
    results: list[Result] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(result.status == status for result in self.results)

    def left(self, why: str) -> int:
        return sum(result.status == "left" and result.why == why for result in self.results)

    @property
    def clean(self) -> bool:
        """True when no message had to be left in the queue."""
        return self.count("left") == 0

    def render(self) -> str:
        counts = ", ".join(f"{status} {self.count(status)}" for status in STATUSES)
        reasons = ", ".join(f"{why} {self.left(why)}" for why in LEFT_BECAUSE if self.left(why))
        return f"{len(self.results)} message(s): {counts}" + (f" ({reasons})" if reasons else "")


def _age(ms: int) -> str:
    minutes = max(0, ms) // 60_000
    if minutes < 60:
        return f"{minutes}m"
    return (
        f"{minutes // 60}h{minutes % 60:02d}m" if minutes < 48 * 60 else f"{minutes // 1440}d{minutes // 60 % 24:02d}h"
    )


def error_text(error: Exception) -> str:
    details = getattr(error, "response", None)
    if isinstance(details, dict) and isinstance(details.get("Error"), dict):
        return one_line(f"{details['Error'].get('Code')}: {details['Error'].get('Message')}")
    return one_line(f"{type(error).__name__}: {error}")


def redrive(
    queue_url: str,
    *,
    sqs: SqsApi,
    lambda_api: LambdaApi,
    policy: Policy | None = None,
    max_messages: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], object] = print,
    wait_seconds: int = 2,
    visibility_timeout: int = 300,
    clock: Callable[[], float] = time.time,
) -> Summary:
    """Re-drive the messages of ``queue_url`` as ``policy`` allows; ``echo`` gets one line per message.

    A message sent to the queue after the run started (a re-drive that failed again) waits for the
    next run, so a persistent failure cannot loop. Messages left in the queue are made visible again
    at the end. Without a policy nothing is invoked: every event for a function is left.
    """
    run = _Run(queue_url, sqs, lambda_api, policy or Policy(), dry_run, started_ms=int(clock() * 1000))
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
    policy: Policy
    dry_run: bool
    started_ms: int
    leave: list[str] = field(default_factory=list)  # receipt handles of the messages that stay

    def one(self, message: Mapping[str, Any]) -> Result:
        message_id, receipt = str(message["MessageId"]), str(message["ReceiptHandle"])

        def result(status: Status, text: str, why: str = "") -> Result:
            if status != "re-driven":
                self.leave.append(receipt)
            return Result(message_id, status, f"{status:<14} {message_id}  {text}", why)

        sent = str((message.get("Attributes") or {}).get("SentTimestamp", ""))
        if sent.isdigit() and int(sent) > self.started_ms:
            return result(
                "skipped", "parked after this run started (a re-drive that failed again?): left for the next run"
            )
        dispatch = dispatch_message(message)
        if dispatch is not None:
            return self._dispatch(message, dispatch, sent, receipt, result)
        try:
            parked = parse_message(message)
        except UnreadableMessage as error:
            return result("left", f"unreadable: {error}", UNREADABLE)
        what, had, policy = f"{parked.source}: {describe_event(parked.event)}", f"  [{parked.error}]", self.policy
        named = parked.function
        if named and policy.allowed(named) is None:
            text = f"{what} -> names function {function_name(named)}, which is not one of {policy.scope}: left{had}"
            return result("left", text, NOT_ALLOWED)
        if named and policy.only and not any(same_function(named, only) for only in policy.only):
            others = ", ".join(function_name(only) for only in policy.only)
            return result("skipped", f"{what} -> {function_name(named)}, not {others}{had}")
        if named is None and len(policy.only) != 1:
            return result("left", f"{what} -> no function named: pass --function{had}", NO_FUNCTION)
        target = policy.allowed(named or policy.only[0])
        if target is None:
            return result(
                "left", f"{what} -> {policy.only[0]}, which is not one of {policy.scope}: left{had}", NOT_ALLOWED
            )
        where = f" -> {function_name(target)}"
        refused, ages = self._too_old(sent, event_time(parked.event))
        if refused:
            return result("left", f"{what}{where}{ages}: {refused}{had}", TOO_OLD)
        if self.dry_run:
            return result("would re-drive", f"{what}{where}{ages}{had}")
        try:
            payload = json.dumps(parked.event).encode("utf-8")
            answer = self.lambda_api.invoke(FunctionName=target, InvocationType="Event", Payload=payload)
        except Exception as error:  # whatever refused it, the message stays and the run goes on
            return result("left", f"{what}{where}{ages}: invoke failed: {error_text(error)}{had}", FAILED)
        if answer.get("StatusCode") != ACCEPTED:
            text = f"{what}{where}{ages}: invoke answered {answer.get('StatusCode')}, not {ACCEPTED}{had}"
            return result("left", text, FAILED)
        deleted = self._delete(receipt)
        if deleted:  # invoked: a later re-drive of this message only finds duplicates
            return result("left", f"{what}{where}{ages}: invoked, but not deleted ({deleted}){had}", FAILED)
        return result("re-driven", f"{what}{where}{ages}{had}")

    def _dispatch(
        self,
        message: Mapping[str, Any],
        dispatch: Message,
        sent: str,
        receipt: str,
        result: Callable[..., Result],
    ) -> Result:
        """Back to the dispatch queue, never to a function; a deferred start says it was parked (a fresh wait)."""
        why = dispatch.parked_because if isinstance(dispatch, DeferredStart) else None
        why = why or message_attributes(message).get("ERROR_MESSAGE") or "parked"
        what, had, url = describe_dispatch(dispatch), f"  [{one_line(why)}]", self.policy.dispatch_queue_url
        if not url:
            text = (
                f"{what}: goes back to the dispatch queue, which is unknown: pass --stack or --dispatch-queue-url{had}"
            )
            return result("left", text, NO_DISPATCH_QUEUE)
        refused, ages = self._too_old(sent, event_time(dispatch))
        if refused:
            return result("left", f"{what} -> dispatch queue{ages}: {refused}{had}", TOO_OLD)
        if self.dry_run:
            return result("would re-drive", f"{what} -> dispatch queue{ages}{had}")
        try:
            self.sqs.send_message(QueueUrl=url, MessageBody=dispatch_body(dispatch, str(message["Body"])))
        except Exception as error:  # the message stays and the run goes on
            return result("left", f"{what} -> dispatch queue{ages}: send failed: {error_text(error)}{had}", FAILED)
        deleted = self._delete(receipt)
        if deleted:  # sent: the dispatcher does a message id once, so a second copy comes back duplicate
            return result("left", f"{what} -> dispatch queue{ages}: sent, but not deleted ({deleted}){had}", FAILED)
        return result("re-driven", f"{what} -> dispatch queue{ages}{had}")

    def _too_old(self, sent: str, happened: float | None) -> tuple[str, str]:
        """Why the message must stay for its age ("" if it may go), and its ages as words.

        Its age is the older of the event's own time and the time the message was sent (SQS keeps
        the first queue's when it moves a message): the dedup records were written in between.
        """
        event_ms = self.started_ms - int(happened * 1000) if happened is not None else None
        parked_ms = self.started_ms - int(sent) if sent.isdigit() else None
        words = [f"event {_age(event_ms)} old"] if event_ms is not None else []
        words += [f"parked {_age(parked_ms)} ago"] if parked_ms is not None else []
        ages = f" ({', '.join(words)})" if words else ""
        known = [age for age in (event_ms, parked_ms) if age is not None]
        ttl = self.policy.dedup_ttl
        if known and max(known) <= ttl * 1000:
            return "", ages
        how_old = f"older than the dedup TTL ({ttl} s)" if known else "of unknown age"
        if self.policy.force:
            return "", f"{ages} [--force: {how_old}; a second start is possible]"
        return f"too old: {how_old}: {WOULD_REPEAT}; --force re-drives it anyway", ages

    def _delete(self, receipt: str) -> str:
        """Delete the message: "" once done, else why not."""
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except Exception as error:
            return error_text(error)
        return ""
