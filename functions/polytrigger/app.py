"""Cold-start wiring: configuration, routes, credentials, client, dedup — built once per container."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from polytrigger import gc_pause
from polytrigger.actions import Action, Outcome
from polytrigger.aws import AwsClients
from polytrigger.config import ConfigError, Settings
from polytrigger.credentials import CredentialsError, SecretCredentials
from polytrigger.dedup import KEY_PREFIX, Dedup
from polytrigger.deferral import Deferrals
from polytrigger.dispatch import Dispatcher, Report
from polytrigger.observability import record_outcome
from polytrigger.polytomic import PolytomicClient
from polytrigger.queue import SqsQueue
from polytrigger.routes import Routes, load_routes
from polytrigger.triggers import Trigger
from polytrigger.windows import DynamoWindows

SAFETY_MARGIN_SECONDS = 3.0  # stop retrying this long before Lambda would cut the invocation off


@dataclass(slots=True)
class App:
    settings: Settings
    routes: Routes
    client: PolytomicClient
    dedup: Dedup
    dispatcher: Dispatcher

    def handle(self, triggers: Iterable[Trigger], remaining_ms: int | None = None) -> Report:
        deadline = None
        if remaining_ms is not None:
            deadline = time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS
        actions = self.routes.actions_for(triggers)
        return self.dispatcher.run(actions, deadline)

    def dispatch(self, message: dict[str, Any], remaining_ms: int | None = None) -> tuple[Action, Outcome]:
        deadline = None
        if remaining_ms is not None:
            deadline = time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS
        return self.dispatcher.run_message(message, deadline)


def build(settings: Settings | None = None) -> App:
    settings = settings or Settings.from_env()
    routes = load_routes(settings.routes_file)
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
    dedup = Dedup(settings.idempotency_table, settings.idempotency_ttl_seconds, boto3_client=aws.dynamodb)
    deferrals = None
    if settings.dispatch_queue_url:
        deferrals = Deferrals(
            SqsQueue(settings.dispatch_queue_url, settings.dispatch_dead_letter_queue_url, lambda: aws.sqs),
            DynamoWindows(aws.dynamodb, settings.idempotency_table, settings.idempotency_ttl_seconds),
            max_age=settings.deferral_max_age_seconds,
            first_delay=settings.deferral_first_delay_seconds,
        )
    else:
        debounced = [route.name for route in routes.routes if route.debounce]
        if debounced:
            raise ConfigError(f"DISPATCH_QUEUE_URL is required: route(s) {', '.join(debounced)} use debounce")
    dispatcher = Dispatcher(
        client,
        dedup,
        record_outcome,
        deferrals,
        concurrency=settings.polytomic_concurrency,
        prepare=lambda: _before_fan_out(dedup, credentials, aws if deferrals is not None else None),
    )
    return App(settings, routes, client, dedup, dispatcher)


def _before_fan_out(dedup: Dedup, credentials: SecretCredentials, aws: AwsClients | None) -> None:
    """Make, on one thread, the lazily built state the dispatcher's threads would otherwise race to build.

    - Powertools configures the persistence layer inside every idempotent call, and its first
      `configure` sets `configured = True` before the JMESPath key expression: a second thread
      in that gap would hash the whole request and write a record under another key. Configuring
      it here first makes every later `configure` a no-op (it only re-assigns the same prefix).
    - The secret: cached by Powertools Parameters, but threads that all miss the cache would
      each call Secrets Manager. A failure is left for the actions to report, as before.
    - The dispatch queue's SQS client is made on first use from the container's boto3 session,
      which must not be used from several threads at once.
    All three are no-ops once done (a dict lookup for the cached secret).
    """
    if not dedup.persistence.configured:
        dedup.persistence.configure(dedup.config, key_prefix=KEY_PREFIX)
    with contextlib.suppress(CredentialsError):
        credentials(False)
    if aws is not None:
        _ = aws.sqs


_app: App | None = None


def get() -> App:
    """The container's App; configuration problems surface here, once, with a clear message."""
    global _app  # noqa: PLW0603 - one per container, by design
    if _app is None:
        try:
            _app = build()
        finally:
            gc_pause.resume()  # initialisation is over, built or not
    return _app


def reset() -> None:
    """Forget the container's App (tests and the demo change the environment between runs)."""
    global _app  # noqa: PLW0603
    _app = None
