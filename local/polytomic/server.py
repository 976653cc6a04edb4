"""The fake Polytomic API: served on 127.0.0.1, or answered in process; for tests, the demo and the benchmarks.

Why a fake and not mocks: polytrigger talks HTTP with urllib3, and the behaviours
that matter (auth, the version header, envelopes, 409 while a run is in progress,
``Idempotency-Key`` replay and in-flight 409, dropped connections, slow answers)
are Polytomic's, not a script's. The fake follows the Polytomic API notes
(``polytomic-api.md``); the official ``polytomic`` SDK pointed at it is the
independent check that its shapes are right.

The same fake answers over a real socket (``start``: ``url``) where a test wants
the wire, and without one (``in_process``: urllib3's interface, for the real
client) where a unit test or the burst simulation wants speed and an injected
clock (``clock``, ``sleep``). The request pipeline (latency, proxy faults, auth,
version, ``Idempotency-Key``, server faults, endpoint) is ``pipeline``; the
endpoints are ``api``. Executions produce events (``events``: ``GET
/api/events``) which the organisation's webhook receives, signed (``webhooks``),
when a test says so (``deliver_webhooks``) or in the background.

Usage::

    with FakePolytomic(api_keys=["k1"]) as fake:
        sync_id = fake.add_sync(kind="model", run_seconds=3600)
        ... point the client at fake.url ...
        assert fake.executions(sync_id)[0].options == {"resync": True}
        fake.subscribe_webhook("http://127.0.0.1:8123/hook", "s3cret")
        fake.finish_running(sync_id, "failed")
        report = fake.deliver_webhooks()  # the sync.failed event, signed, sent now

    fake = FakePolytomic(clock=clock, sleep=clock.sleep)  # in process, on a test's clock
    client = PolytomicClient(IN_PROCESS_URL, "2025-09-18", credentials, http=fake.in_process())
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal, Self

from local.polytomic.api import SUPPORTED_VERSIONS, Execution, FakeApi, SyncKind, SyncRecord
from local.polytomic.faults import UNSET, Fault, RandomFaults, normalise_statuses
from local.polytomic.http import LoopbackServer
from local.polytomic.idempotency import StoredResponse
from local.polytomic.inprocess import IN_PROCESS_URL, InProcess
from local.polytomic.pipeline import Call, PolytomicPipeline
from local.polytomic.records import FakeClock, Outcome
from local.polytomic.webhooks import Delivery, DeliveryReport, DeliverySettings, Encoding, Webhook, sign
from local.service import LocalService

__all__ = [
    "DEFAULT_API_KEY",
    "IN_PROCESS_URL",
    "SUPPORTED_VERSIONS",
    "Call",
    "Delivery",
    "DeliveryReport",
    "Execution",
    "FakePolytomic",
    "Fault",
    "InProcess",
    "StoredResponse",
    "SyncRecord",
    "Webhook",
    "sign",
]

DEFAULT_API_KEY = "fake-polytomic-api-key"


class FakePolytomic(PolytomicPipeline, LocalService):
    """The fake API server: configuration, state, fault injection and the recorded calls.

    All public methods are thread-safe and may be called while requests are in flight.
    """

    def __init__(
        self,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        deployment_keys: Iterable[tuple[str, str]] = (),
        *,
        organization_id: str | None = None,
        reject_reused_keys: bool = False,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """``deployment_keys`` are ``(organization_id, key)`` pairs accepted as Basic auth.

        ``reject_reused_keys=True`` answers 422 when an ``Idempotency-Key`` is reused
        with a different path or body (unconfirmed for Polytomic; the default replays).
        ``clock`` (epoch seconds) replaces the wall clock as the fake's time, and ``sleep``
        the real waiting of latency and delays: a simulation's virtual clock, or a unit
        test's hand-moved one (whose ``sleep`` moves it).
        """
        api = FakeApi(organization_id=organization_id or str(uuid.uuid4()), clock=FakeClock(clock))
        super().__init__(api, api_keys, deployment_keys, reject_reused_keys, sleep)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("FakePolytomic is already running")
        self._stopping.clear()
        self._server = LoopbackServer(self.respond, self._stopping)
        self._server.start("fake-polytomic")
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping/held requests, close every connection, join every thread."""
        self._api.hooks.stop_auto()
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakePolytomic is not running")
        return self._server.port

    @property
    def url(self) -> str:
        """Base URL to use as ``POLYTOMIC_BASE_URL``: ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def in_process(self, *, latency: float = 0.0) -> InProcess:
        """urllib3's interface answered by this fake without a socket (it need not be started):
        ``PolytomicClient(IN_PROCESS_URL, ..., http=fake.in_process())``. See ``inprocess``."""
        return InProcess(self, latency=latency)

    # -- credentials ----------------------------------------------------------------------

    @property
    def api_keys(self) -> frozenset[str]:
        with self._lock:
            return self._api_keys

    def set_api_keys(self, keys: Iterable[str]) -> None:
        """Replace the accepted API keys (key rotation: the old key gets 401 from now on)."""
        with self._lock:
            self._api_keys = frozenset(keys)

    @property
    def deployment_keys(self) -> frozenset[tuple[str, str]]:
        with self._lock:
            return self._deployment_keys

    def set_deployment_keys(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Replace the accepted ``(organization_id, deployment_key)`` pairs."""
        with self._lock:
            self._deployment_keys = frozenset(pairs)

    # -- syncs and executions -------------------------------------------------------------

    def add_sync(
        self,
        sync_id: str | None = None,
        kind: SyncKind = "model",
        active: bool = True,
        run_seconds: float = 0.0,
        name: str | None = None,
        *,
        outcome: Outcome = "completed",
    ) -> str:
        """Register (or replace) a sync; returns its id (a new UUID when none is given).

        An execution stays in progress for ``run_seconds`` (a start meanwhile gets
        409), then ends with ``outcome`` (completed, completed_with_errors, failed,
        canceled); use a large value and ``finish_running`` or ``advance_clock``
        to avoid timing in tests.
        """
        sync_id = sync_id or str(uuid.uuid4())
        self._api.add_sync(sync_id, kind, active, run_seconds, name or f"fake {kind} sync", outcome=outcome)
        return sync_id

    def add_run(
        self,
        sync_id: str,
        created: float | dt.datetime,
        *,
        run_seconds: float | None = None,
        outcome: Outcome | None = None,
        execution_id: str | None = None,
    ) -> str:
        """A run of the sync that no start through the API made (a schedule, the UI, another tool).

        It began at ``created`` (epoch seconds on the fake's clock, or a datetime) and, like a
        started one, is in progress for ``run_seconds`` after it (default: the sync's) and then
        ends with ``outcome`` (default: the sync's), events included. Returns its id. (A run dated
        after the fake's now counts as in progress: ``set_execution_status`` ends it outright.)
        """
        seconds = created.timestamp() if isinstance(created, dt.datetime) else float(created)
        return self._api.add_run(sync_id, seconds, run_seconds=run_seconds, outcome=outcome, execution_id=execution_id)

    def set_outcome(self, sync_id: str, outcome: Outcome) -> None:
        """How the sync's runs end from now on, including the runs in progress."""
        self._api.set_outcome(sync_id, outcome)

    def sync(self, sync_id: str) -> SyncRecord:
        """A copy of the sync's current state (``active`` changes through the activate endpoint)."""
        return self._api.sync(sync_id)

    def set_active(self, sync_id: str, active: bool) -> None:
        self._api.set_active(sync_id, active)

    def executions(self, sync_id: str | None = None) -> list[Execution]:
        """Executions created by starts, oldest first (the API lists them newest first)."""
        return self._api.executions(sync_id)

    def set_execution_status(self, execution_id: str, status: str) -> None:
        """Fix an execution's status from now on (meant for runs in progress: it rewrites an ended run's history).

        An outcome (``completed``, ``completed_with_errors``, ``failed``, ``canceled``;
        bulk ``errors`` too) also emits its terminal event, dated now; other statuses
        (``interrupted``, ``queued``...) emit none.
        """
        self._api.set_execution_status(execution_id, status)

    def finish_running(self, sync_id: str | None = None, status: str = "completed") -> int:
        """End in-progress executions (so a new start is accepted), with their events; returns how many."""
        return self._api.finish_running(sync_id, status)

    def stored_response(self, idempotency_key: str) -> StoredResponse | None:
        """What the fake will replay for this ``Idempotency-Key``, if anything."""
        return self._idempotency.get(idempotency_key)

    def hold_key(self, idempotency_key: str) -> None:
        """Another request with this ``Idempotency-Key`` is being processed, until ``release_key``:
        every request with it meanwhile gets the in-flight 409 (no thread has to be held)."""
        if self._idempotency.begin(idempotency_key) is not None:
            raise ValueError("that Idempotency-Key is already in flight or has a stored answer")

    def release_key(self, idempotency_key: str) -> None:
        """The held request ended without an answer: the key is free again."""
        self._idempotency.abandon(idempotency_key)

    # -- the clock, events and the webhook -------------------------------------------------

    def now(self) -> dt.datetime:
        """The fake's time (UTC): its clock (the wall clock unless injected) plus every ``advance_clock``."""
        return self._api.clock.now()

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's time forward: runs end, events age out after 48 h, without waiting."""
        self._api.clock.advance(seconds)

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Every retained event (as ``GET /api/events`` shows them, no limit), oldest first."""
        return [e.document for e in self._api.events() if type is None or e.type == type]

    def add_event(self, kind: str, created: float | dt.datetime | None = None) -> str:
        """An event of the organisation's log about no run (``connection.updated``, ``model.created``, ...),
        dated ``created`` (epoch seconds or a datetime; default now); its id. ``GET /api/events`` lists it
        among the run events (and the webhook sends it), as Polytomic's event log does."""
        when = self.now() if created is None else created
        at = when if isinstance(when, dt.datetime) else dt.datetime.fromtimestamp(when, dt.UTC)
        return self._api.add_event(kind, at)

    def set_event_order(self, order: Literal["oldest", "newest"]) -> None:
        """Which events a page of ``GET /api/events`` holds: the oldest matches, oldest first (the
        default), or the newest, newest first (Polytomic's own order is unconfirmed). Reset restores it."""
        if order not in ("oldest", "newest"):
            raise ValueError(f"order must be 'oldest' or 'newest', not {order!r}")
        self._api.event_order = order

    def subscribe_webhook(self, url: str, secret: str, *, encoding: Encoding = "hex") -> Webhook:
        """Make (or replace: one per organisation) the webhook; events from now on are sent to ``url``.

        ``url`` must be ``http://`` on loopback (ValueError otherwise). The signature is
        HMAC-SHA256 of the body with ``secret``, in ``encoding`` (hex or base64).
        """
        return self._api.hooks.subscribe(url, secret, encoding, replace_existing=True)

    def unsubscribe_webhook(self) -> bool:
        """Remove the webhook; whether there was one."""
        return self._api.hooks.delete()

    @property
    def webhook(self) -> Webhook | None:
        return self._api.hooks.current

    def configure_webhooks(
        self,
        *,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: bool = False,
        seed: int | None = None,
        max_retries: int = 5,
        backoff: float = 0.01,
        timeout: float = 5.0,
        encoding: Encoding = "hex",
    ) -> None:
        """Delivery faults (reproducible for a ``seed``) and policy; every call starts from these values.

        ``drop``: fraction of events never sent; ``duplicate``: fraction sent twice;
        ``reorder``: shuffle each batch. A non-2xx answer (or none) is retried up to
        ``max_retries`` more times after ``backoff``, ``2 * backoff``... seconds.
        ``encoding`` signs webhooks created through the API.
        """
        settings = DeliverySettings(drop, duplicate, reorder, seed, max_retries, backoff, timeout, encoding)
        self._api.hooks.configure(settings)

    def deliver_webhooks(self) -> DeliveryReport:
        """Send, now and synchronously, every event not handled yet; what was delivered, dropped, duplicated."""
        return self._api.hooks.deliver(self._api.events())

    def auto_deliver_webhooks(self, interval: float | None = 0.05) -> None:
        """Deliver in a background thread every ``interval`` seconds (None stops it; so do stop and reset)."""
        if interval is None:
            self._api.hooks.stop_auto()
        else:
            self._api.hooks.start_auto(self._api.events, interval)

    def webhook_deliveries(self) -> list[Delivery]:
        """Every delivery so far (each copy of a duplicate is one), in sending order."""
        return self._api.hooks.log()

    # -- faults ---------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
        retry_after: float | int | str | None = None,
        delay: float = 0.0,
        drop: bool = False,
        hold: bool = False,
        side_effects: bool = False,
        response_body: Any = UNSET,
        in_transit: bool = False,
    ) -> Fault:
        """Queue a fault for the next ``times`` matching requests (see ``faults``).

        ``delay`` sleeps before answering (client read timeouts): with no status the
        request is executed at once and answered after the delay, still holding its
        ``Idempotency-Key`` (a retry meanwhile gets the in-flight 409). ``drop`` closes the connection without
        an answer. ``hold`` parks the request until ``fault.release()``.
        ``response_body`` overrides the error body (a str is sent as text/html).
        ``in_transit`` lets Polytomic run the request and store its own answer, and sends the
        client the injected status/body (or nothing, with ``drop``) instead.
        """
        fault = Fault(
            status=status,
            times=times,
            path_contains=path_contains,
            method=method,
            retry_after=retry_after,
            delay=delay,
            drop=drop,
            hold=hold,
            side_effects=side_effects,
            response_body=response_body,
            in_transit=in_transit,
        )
        return self._faults.add(fault)

    def set_latency(self, seconds: float) -> None:
        """Sleep this long before handling every request."""
        self._faults.latency = max(0.0, seconds)

    def set_random_faults(
        self,
        rate: float,
        seed: int | None = None,
        *,
        statuses: Iterable[int] = (429, 502, 503, 504),
        drop: bool = True,
        path_contains: str | None = None,
        timeout: float = 0.0,
    ) -> None:
        """Fail each request with probability ``rate`` (0 disables), reproducibly for a given seed.

        A fault is one of ``statuses``, a dropped connection (``drop``) or, with ``timeout`` > 0, an
        answer that comes ``timeout`` seconds late although Polytomic ran the request (a client
        read timeout: the case the Idempotency-Key exists for).
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        config = RandomFaults(rate, seed, normalise_statuses(statuses), drop, path_contains, timeout)
        self._faults.set_random(config if rate > 0 else None)

    def clear_faults(self) -> None:
        """Forget queued and random faults and the latency; releases held requests."""
        for fault in self._faults.clear():
            fault.release()

    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    # -- recorded calls -------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request that reached the fake, in the order they were answered."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, match: str | Callable[[Call], bool], method: str | None = None) -> list[Call]:
        """Calls whose path ends with ``match`` (or for which ``match(call)`` is true)."""
        selected = [c for c in self.calls if (c.path.endswith(match) if isinstance(match, str) else match(c))]
        return [c for c in selected if method is None or c.method == method.upper()]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def reset(self) -> None:
        """Back to a freshly constructed fake (keeps running): calls, faults, syncs, keys, stored responses,
        the clock, the webhook and its deliveries."""
        self.clear_faults()
        self.reset_calls()
        self._api.reset()
        self._idempotency.clear()
        self.set_api_keys(self._initial_keys[0])
        self.set_deployment_keys(self._initial_keys[1])
