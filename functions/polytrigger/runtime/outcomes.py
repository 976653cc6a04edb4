"""Cold-start wiring of the outcome functions (poller, webhook): the ledger, Polytomic's reads, the webhook secret."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from polytrigger.adapters.aws import AwsClients
from polytrigger.adapters.bus import RunEventBus
from polytrigger.adapters.ledger import DynamoLedger
from polytrigger.adapters.polytomic_reads import PolytomicReads
from polytrigger.adapters.promises import DynamoPromises
from polytrigger.adapters.queue import EventParking, SqsQueue
from polytrigger.events.webhook import Encoding, signed
from polytrigger.routing import RoutesError, load_routes
from polytrigger.runtime import gc_pause
from polytrigger.runtime.app import polytomic
from polytrigger.runtime.chains import QueuedChains
from polytrigger.runtime.config import ConfigError, Settings
from polytrigger.runtime.observability import record_configuration_error

WEBHOOK_SECRET_MAX_AGE = 300


@dataclass(slots=True)
class Outcomes:
    ledger: DynamoLedger
    reads: PolytomicReads | None  # the poller's: the events API and execution status
    webhook_secret: Callable[[bool], str] | None  # the receiver's: (force a re-read) -> the secret
    encoding: Encoding
    reconcile_after: timedelta
    parking: EventParking
    bus: RunEventBus | None = None  # where every Polytomic event received is handed on, if anywhere
    chains: QueuedChains | None = None  # the routes that start syncs when another sync's run ends
    promises: DynamoPromises | None = None  # the routes' freshness promises (the poller checks them)

    def verified(self, body: bytes, signature: str) -> bool:
        """Signed with the webhook secret; checked again against a fresh read once (a rotated secret)."""
        if self.webhook_secret is None:
            raise ConfigError("POLYTOMIC_WEBHOOK_SECRET_ID is required by the webhook function but not set")
        if signed(body, signature, self.webhook_secret(False), self.encoding):
            return True
        return bool(signature) and signed(body, signature, self.webhook_secret(True), self.encoding)


def build(settings: Settings | None = None, *, webhook: bool = False) -> Outcomes:
    settings = settings or Settings.from_env()
    aws = AwsClients()
    reads = secret = None
    if webhook:
        if not settings.webhook_secret_id:
            raise ConfigError("POLYTOMIC_WEBHOOK_SECRET_ID is required by the webhook function but not set")
        secret = _webhook_secret(settings.webhook_secret_id, aws.secretsmanager)
    else:
        reads = PolytomicReads(polytomic(settings, aws)[1])
    return Outcomes(
        ledger=DynamoLedger(aws.dynamodb, settings.idempotency_table),
        reads=reads,
        webhook_secret=secret,
        encoding=cast(Encoding, settings.webhook_signature),
        reconcile_after=timedelta(seconds=settings.run_reconcile_after_seconds),
        parking=EventParking(settings.dead_letter_queue_url, lambda: aws.sqs),
        chains=_chains(settings, aws),
        promises=DynamoPromises(aws.dynamodb, settings.idempotency_table),
        bus=RunEventBus(settings.run_event_bus_name, lambda: aws.session.client("events", config=aws.config))
        if settings.run_event_bus_name
        else None,
    )


def _chains(settings: Settings, aws: AwsClients) -> QueuedChains | None:
    """The chained routes, if the routes have any (they need the dispatch queue)."""
    routes = load_routes(settings.routes_file)
    chained = [route.name for route in routes.routes if route.upstream]
    if not chained:
        return None
    if not settings.dispatch_queue_url:
        raise ConfigError(f"DISPATCH_QUEUE_URL is required: route(s) {', '.join(chained)} chain syncs")
    queue = SqsQueue(settings.dispatch_queue_url, settings.dispatch_dead_letter_queue_url, lambda: aws.sqs)
    return QueuedChains(routes, queue)


def _webhook_secret(secret_id: str, client: Any) -> Callable[[bool], str]:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=client)

    def read(force: bool) -> str:
        value = provider.get(secret_id, max_age=WEBHOOK_SECRET_MAX_AGE, force_fetch=force)
        return value.decode() if isinstance(value, bytes) else str(value or "")

    return read


_outcomes: dict[bool, Outcomes] = {}


def get(*, webhook: bool = False) -> Outcomes:
    """The container's outcome wiring; a configuration problem is one clear line (and the invocation fails)."""
    if webhook not in _outcomes:
        try:
            _outcomes[webhook] = build(webhook=webhook)
        except (ConfigError, RoutesError) as error:
            record_configuration_error(str(error))
            raise
        finally:
            gc_pause.resume()
    return _outcomes[webhook]


def reset() -> None:
    _outcomes.clear()
