"""What happens when a message arrives from the dispatch queue: a deferred start, or a debounce window to flush.

1. The message is read strictly (`dispatch.messages.decode`); one polytrigger did not write is parked
   as it came in the dispatch dead-letter queue with the reason.
2. Its action is checked against the routes this function was deployed with: one they do not make
   (forged, or left from routes since changed) is parked with the reason, never performed.
3. Its action is performed once per message id (`dispatch.policy`): the window starts once for the
   files it gathered, a deferred start is covered by a newer run, starts, or waits again; a start's
   run goes in the run ledger.
4. The message is acknowledged only when that is done or parked. Any other failure hands it back to
   the queue; on its last receive it is parked with the failure as its reason (rather than moved to
   the dead-letter queue by SQS with none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polytrigger.core.outcomes import ActionsFailed, Outcome, Report
from polytrigger.dispatch.deferrals import message_refusal
from polytrigger.dispatch.messages import Message, UnsupportedMessage, decode_body
from polytrigger.dispatch.policy import DispatchPolicy, deadline, take_in_time
from polytrigger.dispatch.ports import DISPATCH_DEAD_LETTERS
from polytrigger.dispatch.queue import SqsQueue
from polytrigger.observability import record_outcome, record_parked, record_unsupported
from polytrigger.routing import Routes
from polytrigger.runs.ledger import StartedRuns

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# DispatchQueue's redrive policy (template.yaml, maxReceiveCount): on its last receive a message
# that fails is parked by the dispatcher itself, with the reason, instead of moved there without one.
MAX_RECEIVES = 5


@dataclass(slots=True)
class DispatchMessageFlow:
    routes: Routes
    policy: DispatchPolicy
    started: StartedRuns
    queue: SqsQueue  # the dispatch queue and its dead-letter queue
    call_budget_ms: int
    register: Callable[[LambdaContext | None], None]  # an invocation's dedup records expire with it

    def sqs_record(self, body: Any, receives: int, context: LambdaContext | None) -> Report:
        """One message (its body, and how often it has been received), done, parked or handed back."""
        last = receives >= MAX_RECEIVES
        remaining = context.get_remaining_time_in_millis() if context is not None else None
        try:
            take_in_time(remaining, self.call_budget_ms)
            report = self._message(body, remaining)
        except Exception as error:
            if not last or not isinstance(body, str):
                raise
            self._park_last(body, receives, f"{type(error).__name__}: {str(error)[:800]}")
            return Report()
        if report.retryable and last and isinstance(body, str):  # a retryable failure that has no retry left
            self._park_last(body, receives, str(ActionsFailed(report))[:800])
            return report.parked_in(DISPATCH_DEAD_LETTERS, lambda outcome: outcome.retryable)
        return report

    def perform(self, message: Message, remaining_ms: int | None = None) -> Outcome:
        """One message, if the routes make its action; one log line and one metric for its outcome."""
        refusal = message_refusal(message) or self.routes.refusal(message.action)
        if refusal is not None:
            why = f"dispatch queue message refused: {refusal}"
            self.queue.park(message, why)  # QueueUnavailable: not acknowledged, the queue delivers it again
            record_unsupported(why, DISPATCH_DEAD_LETTERS)
            outcome = Outcome.of(message.action, "failed", reason=why).as_parked(DISPATCH_DEAD_LETTERS)
        else:
            outcome = self.started.note(message.action, self.policy.perform_message(message, deadline(remaining_ms)))
        record_outcome(message.action, outcome, message.id)
        return outcome

    def _message(self, body: Any, remaining_ms: int | None) -> Report:
        report = Report()
        try:
            message = decode_body(body)
        except UnsupportedMessage as error:
            why = f"dispatch queue message that polytrigger did not write: {error}"
            self.queue.park_body(body if isinstance(body, str) else repr(body), why)
            record_unsupported(why, DISPATCH_DEAD_LETTERS)
            return report
        report.add(self.perform(message, remaining_ms))
        return report

    def _park_last(self, body: str, receives: int, why: str) -> None:
        """The message as it came, failing on its last receive, with why."""
        reason = f"failed on its last receive ({receives} of {MAX_RECEIVES}): {why}"
        self.queue.park_body(body, reason)
        record_parked(reason, DISPATCH_DEAD_LETTERS, first_word=True)
