"""Cold-start wiring: configuration, routes, credentials, client, dedup, queue — built once per container."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from polytrigger.adapters.aws import AwsClients
from polytrigger.adapters.credentials import SecretCredentials
from polytrigger.adapters.dedup import PowertoolsDedup
from polytrigger.adapters.polytomic import PolytomicClient
from polytrigger.adapters.queue import SqsQueue
from polytrigger.adapters.windows import DynamoWindows
from polytrigger.core.outcomes import Outcome, Report
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferred import Deferrals
from polytrigger.dispatch.messages import Message
from polytrigger.dispatch.policy import ActionPolicy
from polytrigger.dispatch.ports import CredentialsError
from polytrigger.dispatch.queued import QueuedStarts
from polytrigger.dispatch.run import run
from polytrigger.dispatch.starts import Starts
from polytrigger.routing import Routes, load_routes
from polytrigger.runtime import gc_pause
from polytrigger.runtime.config import ConfigError, Settings
from polytrigger.runtime.observability import record_outcome

SAFETY_MARGIN_SECONDS = 3.0  # stop retrying this long before Lambda would cut the invocation off


def deadline(remaining_ms: int | None) -> float | None:
    """When to stop retrying (monotonic clock), from the invocation's remaining time; None: no limit."""
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS


@dataclass(slots=True)
class App:
    """One container's polytrigger. `routes` is None in the dispatcher, which needs none."""

    routes: Routes | None
    policy: ActionPolicy
    queued: QueuedStarts | None
    dedup: PowertoolsDedup
    concurrency: int
    aws: AwsClients
    credentials: SecretCredentials

    def handle(self, triggers: Iterable[Trigger], remaining_ms: int | None = None) -> Report:
        """Every action the routes make of these triggers; a report of their outcomes."""
        if self.routes is None:
            raise RuntimeError("this App was built without routes (the dispatcher's): it handles messages only")
        until = deadline(remaining_ms)
        return run(
            self.routes.actions_for(triggers),
            lambda action: self.policy.perform(action, until),
            record_outcome,
            concurrency=self.concurrency,
            prepare=self._before_fan_out,
        )

    def handle_message(self, message: Message, remaining_ms: int | None = None) -> Outcome:
        """One dispatch queue message (deferred start or window flush)."""
        if self.queued is None:
            raise RuntimeError("DISPATCH_QUEUE_URL is not set: this function cannot handle dispatch queue messages")
        outcome = self.queued.perform(message, deadline(remaining_ms))
        record_outcome(message.action, outcome, message.id)
        return outcome

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
        if self.queued is not None:
            _ = self.aws.sqs


def build(settings: Settings | None = None, *, with_routes: bool = True) -> App:
    settings = settings or Settings.from_env()
    if not with_routes and not settings.dispatch_queue_url:  # the dispatcher: its messages need the queue
        raise ConfigError("DISPATCH_QUEUE_URL is required by the dispatcher function but not set")
    routes = load_routes(settings.routes_file) if with_routes else None
    aws = AwsClients(pool=settings.polytomic_concurrency)
    credentials = SecretCredentials(settings.secret_id, settings.secret_max_age, aws.secretsmanager)
    client = PolytomicClient(
        settings.base_url,
        settings.api_version,
        credentials,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        connections=settings.polytomic_concurrency,
    )
    dedup = PowertoolsDedup(settings.idempotency_table, settings.idempotency_ttl_seconds, boto3_client=aws.dynamodb)
    starts = Starts(client, dedup)
    deferrals = None
    if settings.dispatch_queue_url:
        deferrals = Deferrals(
            SqsQueue(settings.dispatch_queue_url, settings.dispatch_dead_letter_queue_url, lambda: aws.sqs),
            DynamoWindows(aws.dynamodb, settings.idempotency_table, settings.idempotency_ttl_seconds),
            max_age=settings.deferral_max_age_seconds,
            first_delay=settings.deferral_first_delay_seconds,
        )
    elif routes is not None:
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
    )


_app: App | None = None


def get(*, with_routes: bool = True) -> App:
    """The container's App; configuration problems surface here, once, with a clear message.

    In Lambda a container runs one function: the dispatcher asks for no routes and never loads them.
    (Where one process runs several handlers, as the tests and the demo do, a later need for routes
    builds the App again, with them.)
    """
    global _app  # noqa: PLW0603 - one per container, by design
    if _app is None or (with_routes and _app.routes is None):
        try:
            _app = build(with_routes=with_routes)
        finally:
            gc_pause.resume()  # initialisation is over, built or not
    return _app


def reset() -> None:
    """Forget the container's App (tests and the demo change the environment between runs)."""
    global _app  # noqa: PLW0603
    _app = None
