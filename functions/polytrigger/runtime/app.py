"""Cold-start wiring: configuration, routes, credentials, client, dedup, queue — built once per container."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polytrigger.adapters.aws import AwsClients
from polytrigger.adapters.credentials import SecretCredentials
from polytrigger.adapters.dedup import PowertoolsDedup
from polytrigger.adapters.ledger import DynamoLedger
from polytrigger.adapters.polytomic import PolytomicClient
from polytrigger.adapters.promises import DynamoPromises
from polytrigger.adapters.queue import EventParking, SqsQueue
from polytrigger.adapters.windows import DynamoWindows
from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome, Report
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferred import SKEW_SECONDS, Deferrals, message_refusal
from polytrigger.dispatch.messages import Message
from polytrigger.dispatch.policy import ActionPolicy
from polytrigger.dispatch.ports import CredentialsError
from polytrigger.dispatch.queued import QueuedStarts
from polytrigger.dispatch.run import run
from polytrigger.dispatch.starts import Starts
from polytrigger.routing import Routes, load_routes
from polytrigger.runs.ports import LedgerUnavailable
from polytrigger.runs.started import note_promise, note_run
from polytrigger.runtime import gc_pause
from polytrigger.runtime.config import ConfigError, Settings
from polytrigger.runtime.observability import record_outcome, record_parked, record_unsupported
from polytrigger.runtime.run_outcomes import record_ledger_problem

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

DEAD_LETTERS = "the dead-letter queue"
DISPATCH_DEAD_LETTERS = "the dispatch dead-letter queue"
SAFETY_MARGIN_SECONDS = 3.0  # stop retrying this long before Lambda would cut the invocation off


def deadline(remaining_ms: int | None) -> float | None:
    """When to stop retrying (monotonic clock), from the invocation's remaining time; None: no limit."""
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS


@dataclass(slots=True)
class App:
    """One container's polytrigger: its routes, its policies and the adapters they run on."""

    routes: Routes
    policy: ActionPolicy
    queued: QueuedStarts | None
    dedup: PowertoolsDedup
    concurrency: int
    aws: AwsClients
    credentials: SecretCredentials
    queue: SqsQueue | None  # the dispatch queue and its dead-letter queue
    parking: EventParking  # the stack's dead-letter queue, for trigger events
    call_budget_ms: int  # the longest one Polytomic call can take: no record is taken with less time left
    ledger: DynamoLedger | None = None  # the runs started, so that their outcomes can be known
    promises: DynamoPromises | None = None  # the routes' freshness promises, checked by the poller

    def handle(self, triggers: Iterable[Trigger], remaining_ms: int | None = None) -> Report:
        """Every action the routes make of these triggers; a report of their outcomes."""
        until = deadline(remaining_ms)
        received = time.time()
        return run(
            self.routes.actions_for(triggers),
            lambda action: self._noted(action, self.policy.perform(action, until, received)),
            record_outcome,
            concurrency=self.concurrency,
            prepare=self._before_fan_out,
        )

    def handle_message(self, message: Message, remaining_ms: int | None = None) -> Outcome:
        """One dispatch queue message (deferred start or window flush), if the routes make its action."""
        if self.queued is None or self.queue is None:
            raise RuntimeError("DISPATCH_QUEUE_URL is not set: this function cannot handle dispatch queue messages")
        refusal = message_refusal(message) or self.routes.refusal(message.action)
        if refusal is not None:
            why = f"dispatch queue message refused: {refusal}"
            self.queue.park(message, why)  # QueueUnavailable: not acknowledged, the queue delivers it again
            record_unsupported(why, DISPATCH_DEAD_LETTERS)
            outcome = Outcome.of(message.action, "failed", reason=why).as_parked(DISPATCH_DEAD_LETTERS)
        else:
            outcome = self._noted(message.action, self.queued.perform(message, deadline(remaining_ms)))
        record_outcome(message.action, outcome, message.id)
        return outcome

    def _noted(self, action: Action, outcome: Outcome) -> Outcome:
        """A run the outcome started goes in the ledger, on the action's own thread (a ledger failure loses
        the watch, not the run); so does the route's freshness promise."""
        if self.ledger is None:
            return outcome
        try:
            note_run(self.ledger, action, outcome)
            if self.promises is not None:
                route = self.routes.named(action.route)
                note_promise(self.promises, action, outcome, route.freshness if route else 0)
        except LedgerUnavailable as error:
            record_ledger_problem(f"{error}: the outcome of {action.route}'s {outcome.status} start is not watched")
        return outcome

    def park_message(self, body: str, reason: str, *, unsupported: bool) -> None:
        """A dispatch queue message as it came (unreadable, or failing on its last receive), with why."""
        if self.queue is None:
            raise RuntimeError("DISPATCH_QUEUE_URL is not set: this function cannot park dispatch queue messages")
        self.queue.park_body(body, reason)
        if unsupported:
            record_unsupported(reason, DISPATCH_DEAD_LETTERS)
        else:
            record_parked(reason, DISPATCH_DEAD_LETTERS, first_word=True)

    def park_event(self, event: Any, reason: str, context: LambdaContext | None, *, unsupported: bool) -> None:
        """A trigger event a retry cannot fix, in the stack's dead-letter queue, for `polytrigger redrive`."""
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

    def _before_fan_out(self) -> None:
        """Make, on one thread, the lazily built state the fan-out threads would otherwise race to build.

        The dedup persistence layer's configuration (PowertoolsDedup.prepare); the secret, cached
        by Powertools Parameters, which threads that all miss the cache would each read (a failure
        is left for the actions to report); and the dispatch queue's SQS client, made on first use
        from the container's boto3 session, which must not be used from several threads at once.
        All three are no-ops once done.
        """
        self.dedup.prepare()
        with contextlib.suppress(CredentialsError):
            self.credentials(False)
        _ = self.aws.sqs  # the dispatch queue, or the dead-letter queue for a refused action


def polytomic(settings: Settings, aws: AwsClients) -> tuple[SecretCredentials, PolytomicClient]:
    """The Polytomic key (from its secret) and the client that sends it, as the settings say."""
    credentials = SecretCredentials(settings.secret_id, settings.secret_max_age, aws.secretsmanager)
    client = PolytomicClient(
        settings.base_url,
        settings.api_version,
        credentials,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        connections=settings.polytomic_concurrency,
    )
    return credentials, client


def build(settings: Settings | None = None) -> App:
    settings = settings or Settings.from_env()
    routes = load_routes(settings.routes_file)
    aws = AwsClients(pool=settings.polytomic_concurrency)
    credentials, client = polytomic(settings, aws)
    dedup = PowertoolsDedup(settings.idempotency_table, settings.idempotency_ttl_seconds, boto3_client=aws.dynamodb)
    starts = Starts(client, dedup, request_seconds=settings.connect_timeout + settings.read_timeout + SKEW_SECONDS)
    queue = deferrals = None
    if settings.dispatch_queue_url:
        queue = SqsQueue(settings.dispatch_queue_url, settings.dispatch_dead_letter_queue_url, lambda: aws.sqs)
        deferrals = Deferrals(
            queue,
            DynamoWindows(aws.dynamodb, settings.idempotency_table, settings.idempotency_ttl_seconds),
            max_age=settings.deferral_max_age_seconds,
            first_delay=settings.deferral_first_delay_seconds,
        )
    else:
        debounced = [route.name for route in routes.routes if route.debounce]
        if debounced:
            raise ConfigError(f"DISPATCH_QUEUE_URL is required: route(s) {', '.join(debounced)} use debounce")
    return App(
        routes=routes,
        policy=ActionPolicy(starts, deferrals),
        queued=QueuedStarts(starts, deferrals) if deferrals is not None else None,
        dedup=dedup,
        concurrency=settings.polytomic_concurrency,
        aws=aws,
        credentials=credentials,
        queue=queue,
        parking=EventParking(settings.dead_letter_queue_url, lambda: aws.sqs),
        call_budget_ms=int((settings.connect_timeout + settings.read_timeout + SAFETY_MARGIN_SECONDS) * 1000),
        ledger=DynamoLedger(aws.dynamodb, settings.idempotency_table),
        promises=DynamoPromises(aws.dynamodb, settings.idempotency_table)
        if any(route.freshness for route in routes.routes)
        else None,
    )


_app: App | None = None


def get(*, dispatcher: bool = False) -> App:
    """The container's App; configuration problems surface here, once, with a clear message.

    The dispatcher needs the dispatch queue (its messages come from there, and go back there).
    """
    global _app  # noqa: PLW0603 - one per container, by design
    if _app is None:
        try:
            _app = build()
        finally:
            gc_pause.resume()  # initialisation is over, built or not
    if dispatcher and _app.queue is None:
        raise ConfigError("DISPATCH_QUEUE_URL is required by the dispatcher function but not set")
    return _app


def reset() -> None:
    """Forget the container's App (tests and the demo change the environment between runs)."""
    global _app  # noqa: PLW0603
    _app = None
