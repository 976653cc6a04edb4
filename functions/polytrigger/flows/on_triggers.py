"""What happens when triggers arrive: an S3 object event (in any shape, alone or in an SQS batch) or a
schedule firing. The S3 and schedule functions share this story; only their parsers differ.

1. The handler's parser reads the payload into triggers. A payload nobody supports is parked, as it
   came, in the stack's dead-letter queue with the reason (a retry would bring the same bytes).
2. Each new object's landing is kept (one write per file), so `polytrigger status` can answer for
   it. The routes turn the triggers into actions: one per (action, sync, options), however many
   routes and triggers of the payload reach it. A gated route makes none per object: the object is
   counted in its partition (`gating`), and the invocation whose object completes the partition gets
   the route's actions for it, performed here with the rest (a table error fails the payload, so it
   comes again; counting twice is impossible).
3. Each action is performed once (`dispatch.policy`): debounced, started, deferred behind a running
   run, held while its sync is paused, or failed; syncs in parallel, outcomes in action order. A
   start's run, and its route's freshness promise, go in the run ledger on the action's own thread.
4. Each outcome is one log line and one metric. What a retry cannot fix is parked with the payload
   before it is acknowledged (if parking fails, the payload fails and AWS delivers it again); what a
   retry can fix makes the answer fail (`handlers.answers`) after every action was tried, so AWS
   delivers the payload again and only the failed actions run again (the rest come back `duplicate`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Report, reasons
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.fan_out import run
from polytrigger.dispatch.landings import DynamoLandings, LandingsUnavailable
from polytrigger.dispatch.policy import DispatchPolicy, deadline, take_in_time
from polytrigger.dispatch.queue import EventParking
from polytrigger.events import UnsupportedEvent
from polytrigger.gating.keeper import admit, settle
from polytrigger.gating.store import DynamoGates, GatesUnavailable
from polytrigger.observability import (
    record_ignored,
    record_ledger_problem,
    record_outcome,
    record_parked,
    record_problem,
    record_unsupported,
)
from polytrigger.routing import Routes
from polytrigger.runs.ledger import StartedRuns

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

DEAD_LETTERS = "the dead-letter queue"
Parser = Callable[[Any], list[Trigger]]


@dataclass(slots=True)
class TriggerFlow:
    routes: Routes
    policy: DispatchPolicy
    started: StartedRuns  # the runs the starts made (and freshness promises), for their outcomes
    parking: EventParking  # the stack's dead-letter queue, for payloads a retry cannot fix
    concurrency: int  # syncs of one payload called at once
    call_budget_ms: int  # the longest one Polytomic call can take: no SQS record is taken with less time left
    before_fan_out: Callable[[], None]  # makes, on one thread, what the fan-out threads would race to make
    register: Callable[[LambdaContext | None], None]  # an invocation's dedup records expire with it
    clock: Callable[[], float] = time.time  # when a trigger reached us (epoch seconds): the dispatch path's clock
    landings: DynamoLandings | None = None  # each object's landing, for `polytrigger status`
    gates: DynamoGates | None = None  # the gated routes' partitions (None: the routes have no gate)

    def sqs_record(self, body: Any, parse: Parser, context: LambdaContext | None) -> Report:
        """One record of an SQS batch (its body), if one more call can still finish in this invocation."""
        take_in_time(_remaining_ms(context), self.call_budget_ms)
        return self.payload(body, parse, context)

    def payload(self, payload: Any, parse: Parser, context: LambdaContext | None) -> Report:
        try:
            triggers = parse(payload)
        except UnsupportedEvent as error:
            self._park(_as_event(payload), str(error), context, unsupported=True)
            return Report()
        if not triggers:
            record_ignored("no trigger in the event (e.g. s3:TestEvent)")
            return Report()
        triggers = self.claim(triggers, self.clock())
        report = self.handle(triggers, _remaining_ms(context), claimed=True)
        if triggers and not report.outcomes and not self._gated(triggers):
            record_ignored(f"no route matches {', '.join(t.describe() for t in triggers)}")
        if report.to_park and not report.retryable:
            refused = report.to_park
            self._park(_as_event(payload), f"refused: {reasons(refused)}", context, unsupported=False)
            report = report.parked_in(DEAD_LETTERS, lambda outcome: outcome in refused)
        return report

    def handle(
        self,
        triggers: Iterable[Trigger],
        remaining_ms: int | None = None,
        *,
        claimed: bool = False,
        park: Callable[[Action, str], str] | None = None,
    ) -> Report:
        """Every action the routes make of these triggers, performed; a report of their outcomes.
        `claimed`: their landings are kept already (`claim`), as a listing does before it reports them.
        `park`: where a refused action goes (it answers where), when there is no event to park with it."""
        until = deadline(remaining_ms)
        received = self.clock()
        triggers = list(triggers)
        if not claimed:
            triggers = self.claim(triggers, received)
        try:
            fired = admit(self.gates, self.routes.arrivals(triggers)) if self.gates is not None else []
        except GatesUnavailable as error:  # nothing of the payload is done yet: all of it comes again
            record_problem(f"gates: {error}; the event fails and is delivered again", "gate_unavailable")
            raise
        actions = self.routes.actions_for(triggers) + [action for one in fired for action in one.actions]
        report = run(
            actions,
            lambda action: self.started.note(action, self.policy.perform(action, until, received)),
            record_outcome,
            concurrency=self.concurrency,
            prepare=self.before_fan_out,
        )
        if fired and self.gates is not None:
            settle(self.gates, fired, dict(zip(actions, report.outcomes, strict=False)))
        if park is not None and report.to_park:
            refused = report.to_park
            where = ""
            for action, outcome in zip(actions, report.outcomes, strict=False):
                if outcome in refused:
                    where = park(action, outcome.reason or "refused")
                    record_parked(f"{action.kind} {action.sync.id} ({action.route}): {outcome.reason}", where)
            report = report.parked_in(where, lambda outcome: outcome in refused)
        return report

    def _gated(self, triggers: list[Trigger]) -> bool:
        """Some gated route counted these objects (a partition that waits is no "no route matches")."""
        return self.gates is not None and bool(self.routes.arrivals(triggers))

    def claim(self, triggers: list[Trigger], received: float) -> list[Trigger]:
        """Each new object's landing kept (one write per file, for `polytrigger status`), and the
        triggers still to act on: an object's event and a listing that found it act once between them."""
        if self.landings is None:
            return triggers
        kept: list[Trigger] = []
        for trigger in triggers:
            if trigger.kind != "s3" or trigger.event != "created":
                kept.append(trigger)
                continue
            try:
                new = self.landings.landed(trigger, received)
            except LandingsUnavailable as error:
                if trigger.found_by != "event":
                    raise  # a listing acts only on a landing it kept: it comes again, the event may yet
                record_ledger_problem(f"{error}: {trigger.describe()}")  # its actions go on: only its story is lost
                new = True
            if new:
                kept.append(trigger)
            else:
                record_ignored(f"{trigger.describe()}: this upload was found by a listing first, and acted on then")
        return kept

    def _park(self, event: Any, reason: str, context: LambdaContext | None, *, unsupported: bool) -> None:
        """A payload a retry cannot fix, as a Lambda on-failure record, for `polytrigger redrive`."""
        self.parking.park(
            event,
            f"unsupported event: {reason}" if unsupported else reason,
            function_arn=getattr(context, "invoked_function_arn", "") or "",
            request_id=getattr(context, "aws_request_id", "") or "",
        )
        if unsupported:
            record_unsupported(reason, DEAD_LETTERS)
        else:
            record_parked(reason, DEAD_LETTERS)


def _remaining_ms(context: LambdaContext | None) -> int | None:
    return context.get_remaining_time_in_millis() if context is not None else None


def _as_event(payload: Any) -> Any:
    """The payload as the function would be invoked with it: an SQS record's body is its JSON."""
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return {"unreadable_sqs_body": payload[:100_000]}
