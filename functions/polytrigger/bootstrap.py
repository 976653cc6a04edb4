"""What each function needs, built once per container, by role: its flow, on its adapters.

One function per role: `triggers` (S3 and schedules), `reconciler`, `dispatcher`, `webhook`, `poller`, `route_wiring`.
Each reads the environment (`settings`) and the routes, makes its AWS clients from one boto3 session and hands
its flow what it needs. Built on the first invocation, not at import, so a configuration problem is one logged
line and a failed invocation (retried, then parked), not an init crash loop; the garbage collector, paused
while the handler's imports ran, resumes after (`gc_pause`).

The dispatch path, the reconciler and the webhook read the time from one `Clock` (a test's: `use_clock`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from polytrigger import gc_pause
from polytrigger.deadlines.book import DeadlineBook
from polytrigger.deadlines.watch import DeadlineWatch
from polytrigger.dispatch.calls import Calls
from polytrigger.dispatch.dedup import PowertoolsDedup
from polytrigger.dispatch.deferrals import SKEW_SECONDS, Deferrals
from polytrigger.dispatch.holds import DynamoHolds
from polytrigger.dispatch.landings import DynamoLandings
from polytrigger.dispatch.policy import DispatchPolicy, call_budget_ms
from polytrigger.dispatch.ports import Queue
from polytrigger.dispatch.queue import EventParking, SqsQueue
from polytrigger.dispatch.windows import DynamoWindows
from polytrigger.events.function_url import Encoding, SigningSecrets
from polytrigger.flows.on_dispatch_message import DispatchMessageFlow
from polytrigger.flows.on_poll import PollFlow
from polytrigger.flows.on_reconcile import ReconcileFlow
from polytrigger.flows.on_triggers import TriggerFlow
from polytrigger.flows.on_webhook_delivery import WebhookFlow
from polytrigger.flows.on_wiring_request import WiringFlow
from polytrigger.gating.objects import S3Objects
from polytrigger.gating.store import DynamoGates
from polytrigger.observability import record_configuration_error
from polytrigger.polytomic.client import PolytomicClient
from polytrigger.polytomic.contract import CredentialsError
from polytrigger.polytomic.credentials import SecretCredentials
from polytrigger.polytomic.reads import PolytomicReads
from polytrigger.reconciliation.cursor import DynamoCursors
from polytrigger.reconciliation.listing import S3Listing
from polytrigger.reconciliation.passes import Passes
from polytrigger.route_wiring.aws import DeployedRoutesTable, SchedulerGroup, hand_to_version
from polytrigger.routing import Routes, RoutesError, load_routes
from polytrigger.runs.bus import RunEventBus
from polytrigger.runs.dynamo_ledger import DynamoLedger
from polytrigger.runs.joins import DynamoJoins
from polytrigger.runs.ledger import StartedRuns
from polytrigger.runs.promises import DynamoPromises
from polytrigger.runs.set_off import QueuedChains
from polytrigger.settings import ConfigError, Settings, dedup_table, routes_file

DEFAULT_POOL = 10  # botocore's own default
WEBHOOK_SECRET_MAX_AGE = 300
F = TypeVar("F", bound=Callable[[], Any])


def client_config(pool: int = DEFAULT_POOL) -> Config:
    """Fail fast and clearly when a service is unreachable; one connection per fan-out thread."""
    return Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max(DEFAULT_POOL, pool),
    )


class AwsClients:
    """The container's AWS clients, all from one boto3 session: a client of a second session costs about
    40 ms more (botocore's data files loaded again). Clients are thread-safe, sessions are not, so they are
    made before any fan-out thread runs: DynamoDB and Secrets Manager at once, the rest when first asked for."""

    def __init__(self, pool: int = DEFAULT_POOL) -> None:
        self.session = boto3.session.Session()
        self.config = client_config(pool)
        self.dynamodb: Any = self.session.client("dynamodb", config=self.config)
        self.secretsmanager: Any = self.session.client("secretsmanager", config=self.config)
        self._sqs: Any = None
        self._events: Any = None
        self._s3: Any = None

    @property
    def sqs(self) -> Any:
        """Only deferral, debounce and parking send messages; made on first use (call it before fanning out)."""
        if self._sqs is None:
            self._sqs = self.session.client("sqs", config=self.config)
        return self._sqs

    @property
    def s3(self) -> Any:
        """Only gates with a manifest read objects; made on first use."""
        if self._s3 is None:
            self._s3 = self.session.client("s3", config=self.config)
        return self._s3

    @property
    def events(self) -> Any:
        if self._events is None:
            self._events = self.session.client("events", config=self.config)
        return self._events


@dataclass
class Clock:
    """Where the dispatch path reads the time (epoch seconds) and how it waits."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


CLOCK = Clock()
_ROLES: list[Callable[[], Any]] = []


def _role(build: F) -> F:
    """Built once per container; a configuration problem is one logged line (and the invocation fails)."""

    @functools.cache
    def once() -> Any:
        try:
            return build()
        except (ConfigError, RoutesError, CredentialsError) as error:
            record_configuration_error(str(error))
            raise
        finally:
            gc_pause.resume()  # initialisation is over, built or not

    _ROLES.append(once)
    return cast(F, functools.wraps(build)(once))


def reset() -> None:
    """Forget what the container built (tests and the demo change the environment between runs)."""
    for role in _ROLES:
        cast(Any, role).cache_clear()


def use_clock(now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
    """Build the roles on this clock from now on (no argument: the machine's); forgets what was built."""
    CLOCK.now, CLOCK.sleep = now, sleep
    reset()


# -- the roles ---------------------------------------------------------------------------------------


@_role
def triggers() -> TriggerFlow:
    """The S3 and schedule functions: triggers in, actions performed."""
    return _trigger_flow(Settings.from_env())[0]


@_role
def reconciler() -> ReconcileFlow:
    """The reconciliation function: the routes' prefixes listed, what no event brought handed to the trigger path."""
    flow, part = _trigger_flow(settings := Settings.from_env())
    cursors = DynamoCursors(part.aws.dynamodb, settings.idempotency_table)
    park = functools.partial(part.queue.park_start, clock=CLOCK.now)  # a refused start: no event to park it with
    handle = functools.partial(flow.handle, claimed=True, park=park)
    passes = Passes(S3Listing(lambda: part.aws.s3), cursors, part.landings, flow.claim, handle, clock=CLOCK.now)
    return ReconcileFlow(routes=part.routes, passes=passes, register=part.dedup.register)


def _trigger_flow(settings: Settings) -> tuple[TriggerFlow, _DispatchPart]:
    part = _DispatchPart(settings)
    return TriggerFlow(
        routes=part.routes,
        policy=part.policy,
        started=part.started,
        parking=EventParking(settings.dead_letter_queue_url, lambda: part.aws.sqs),
        concurrency=settings.polytomic_concurrency,
        call_budget_ms=call_budget_ms(settings.connect_timeout, settings.read_timeout),
        before_fan_out=part.before_fan_out,
        register=part.dedup.register,
        clock=CLOCK.now,
        landings=part.landings,
        gates=_gates(settings, part.aws, part.routes),
    ), part


@_role
def dispatcher() -> DispatchMessageFlow:
    """The dispatch queue's consumer: deferred starts and debounce windows."""
    settings = Settings.from_env()
    part = _DispatchPart(settings)
    return DispatchMessageFlow(
        routes=part.routes,
        policy=part.policy,
        started=part.started,
        queue=part.queue,
        call_budget_ms=call_budget_ms(settings.connect_timeout, settings.read_timeout),
        register=part.dedup.register,
    )


@_role
def webhook() -> WebhookFlow:
    """Polytomic's webhook receiver: its own secret, the ledger, the bus and the chained routes."""
    settings = Settings.from_env()
    if not settings.webhook_secret_id:
        raise ConfigError("POLYTOMIC_WEBHOOK_SECRET_ID is required by the webhook function but not set")
    aws = AwsClients()
    return WebhookFlow(
        ledger=DynamoLedger(aws.dynamodb, settings.idempotency_table),
        secrets=SigningSecrets(_webhook_secret(settings.webhook_secret_id, aws.secretsmanager), CLOCK.now),
        encoding=cast(Encoding, settings.webhook_signature),
        parking=EventParking(settings.dead_letter_queue_url, lambda: aws.sqs),
        bus=_bus(settings, aws),
        chains=_chains(settings, aws),
        clock=CLOCK.now,
    )


@_role
def poller() -> PollFlow:
    """The poller: Polytomic's reads, the ledger, the freshness promises, the bus, the chained routes and deadlines."""
    settings = Settings.from_env()
    aws = AwsClients()
    reads = PolytomicReads(_polytomic(settings, aws)[1])
    routes = load_routes(settings.routes_file)
    return PollFlow(
        reads=reads,
        ledger=DynamoLedger(aws.dynamodb, settings.idempotency_table),
        reconcile_after=timedelta(seconds=settings.run_reconcile_after_seconds),
        promises=DynamoPromises(aws.dynamodb, settings.idempotency_table),
        bus=_bus(settings, aws),
        chains=_chains(settings, aws),
        holds=(
            DynamoHolds(aws.dynamodb, settings.idempotency_table, clock=CLOCK.now),
            SqsQueue(settings.dispatch_queue_url, settings.dispatch_dead_letter_queue_url, lambda: aws.sqs),
            DynamoLandings(aws.dynamodb, settings.idempotency_table, clock=CLOCK.now),
        )
        if settings.dispatch_queue_url
        else None,
        gates=_gate_checks(settings, aws, routes),
        deadlines=DeadlineWatch(
            routes, DeadlineBook(aws.dynamodb, settings.idempotency_table, clock=CLOCK.now), reads.active
        )
        if any(route.expect for route in routes.routes)
        else None,
    )


@_role
def route_wiring() -> WiringFlow:
    """The deploy-time custom resource: the Scheduler's schedule groups, and one item of the table (the routes
    as deployed); never the secret. Nothing here can fail: the clients are made inside the flow, so a Scheduler
    that cannot be reached is answered FAILED with the reason (DynamoDB: the routes are not recorded, an ERROR line)."""
    scheduler = functools.cache(_scheduler_client)
    dynamodb = functools.cache(lambda: boto3.client("dynamodb", config=client_config()))
    return WiringFlow(
        routes_file=routes_file(),
        schedule_group=lambda name: SchedulerGroup(scheduler(), name),
        hand_to_version=hand_to_version,
        record_routes=DeployedRoutesTable(dynamodb, dedup_table()).put,
    )


def _scheduler_client() -> Any:
    try:
        return boto3.client("scheduler", config=client_config())
    except (BotoCoreError, ValueError) as error:  # no Region; an endpoint botocore cannot use
        problem = f"the Scheduler's client cannot be made: {error}"
        record_configuration_error(problem)
        raise ConfigError(problem) from error


# -- what the roles share ----------------------------------------------------------------------------


class _DispatchPart:
    """The start path, as the trigger functions and the dispatcher both need it."""

    def __init__(self, settings: Settings) -> None:
        self.routes = load_routes(settings.routes_file)
        self.aws = AwsClients(pool=settings.polytomic_concurrency)
        self.credentials, client = _polytomic(settings, self.aws)
        self.dedup = PowertoolsDedup(
            settings.idempotency_table, settings.idempotency_ttl_seconds, boto3_client=self.aws.dynamodb
        )
        self.queue = SqsQueue(
            _required(settings.dispatch_queue_url, "DISPATCH_QUEUE_URL"),
            settings.dispatch_dead_letter_queue_url,
            lambda: self.aws.sqs,
        )
        deferrals = Deferrals(
            self.queue,
            DynamoWindows(self.aws.dynamodb, settings.idempotency_table, settings.idempotency_ttl_seconds),
            max_age=settings.deferral_max_age_seconds,
            first_delay=settings.deferral_first_delay_seconds,
            clock=CLOCK.now,
            sleep=CLOCK.sleep,
        )
        request_seconds = settings.connect_timeout + settings.read_timeout + SKEW_SECONDS
        calls = Calls(client, self.dedup, request_seconds=request_seconds, clock=CLOCK.now)
        holds = DynamoHolds(self.aws.dynamodb, settings.idempotency_table, clock=CLOCK.now)
        self.policy = DispatchPolicy(calls, deferrals, holds, self.routes.hold_limit)
        self.landings = DynamoLandings(self.aws.dynamodb, settings.idempotency_table, clock=CLOCK.now)
        self.started = StartedRuns(
            DynamoLedger(self.aws.dynamodb, settings.idempotency_table),
            DynamoPromises(self.aws.dynamodb, settings.idempotency_table)
            if any(route.freshness for route in self.routes.routes)
            else None,
            self.routes,
            landings=self.landings,
            holds=(holds, self.queue),
            clock=CLOCK.now,
        )

    def before_fan_out(self) -> None:
        """Make, on one thread, what the fan-out threads would race to build: the dedup layer's configuration,
        the secret (which threads that all miss Powertools' cache would each read; a failure is left for the
        actions to report) and the SQS client (the session is not thread-safe). No-ops once done."""
        self.dedup.prepare()
        with contextlib.suppress(CredentialsError):
            self.credentials(False)
        _ = self.aws.sqs  # the dispatch queue, or the dead-letter queue for a refused action


def _polytomic(settings: Settings, aws: AwsClients) -> tuple[SecretCredentials, PolytomicClient]:
    """The Polytomic key (from its secret) and the client that sends it, as the settings say."""
    credentials = SecretCredentials(settings.secret_id, settings.secret_max_age, aws.secretsmanager)
    client = PolytomicClient(
        settings.base_url,
        settings.api_version,
        credentials,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        connections=settings.polytomic_concurrency,
        sleep=CLOCK.sleep,  # its pauses between retries (backoff, Retry-After)
    )
    return credentials, client


def _required(value: str, name: str) -> str:
    if value:
        return value
    raise ConfigError(f"{name} is required but not set")


def _bus(settings: Settings, aws: AwsClients) -> RunEventBus | None:
    """Where every Polytomic event received is handed on, if anywhere."""
    return RunEventBus(settings.run_event_bus_name, lambda: aws.events) if settings.run_event_bus_name else None


def _chains(settings: Settings, aws: AwsClients) -> QueuedChains | None:
    """The chained routes, if the routes have any (they queue their starts for the dispatcher)."""
    routes = load_routes(settings.routes_file)
    chained = [route.name for route in routes.routes if route.followed]
    if not chained:
        return None
    if not settings.dispatch_queue_url:
        raise ConfigError(f"DISPATCH_QUEUE_URL is required: route(s) {', '.join(chained)} chain syncs")
    queue = SqsQueue(settings.dispatch_queue_url, settings.dispatch_dead_letter_queue_url, lambda: aws.sqs)
    return QueuedChains(routes, queue, DynamoJoins(aws.dynamodb, settings.idempotency_table))


def _gates(settings: Settings, aws: AwsClients, routes: Routes) -> DynamoGates | None:
    """The gated routes' partitions, if the routes have any gate."""
    if not any(route.gate for route in routes.routes):
        return None
    return DynamoGates(aws.dynamodb, settings.idempotency_table, S3Objects(lambda: aws.s3), clock=CLOCK.now)


def _gate_checks(settings: Settings, aws: AwsClients, routes: Routes) -> tuple[DynamoGates, Queue, Routes] | None:
    """What the poller needs to look at gates that fell due (quiet periods, owed starts, timeouts)."""
    gates = _gates(settings, aws, routes)
    if gates is None:
        return None
    queue = SqsQueue(
        _required(settings.dispatch_queue_url, "DISPATCH_QUEUE_URL"),
        settings.dispatch_dead_letter_queue_url,
        lambda: aws.sqs,
    )
    return gates, queue, routes


def _webhook_secret(secret_id: str, client: Any) -> Callable[[bool], str]:
    """(force) -> the webhook's secret, cached WEBHOOK_SECRET_MAX_AGE by Powertools Parameters unless forced."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=client)

    def read(force: bool) -> str:
        value = provider.get(secret_id, max_age=WEBHOOK_SECRET_MAX_AGE, force_fetch=force)
        return value.decode() if isinstance(value, bytes) else str(value or "")

    return read
