"""A discrete-event simulation of polytrigger on a virtual clock, so hours of arrivals run in seconds.

The real code runs unchanged: `parse_routes` and `Routes` turn each landed file into actions, the
real dispatch policy performs them (`DispatchPolicy.perform` through `run` in the S3 function,
`DispatchPolicy.perform_message` in the dispatcher) over the real `Calls` and `Deferrals`, with the in-memory ports shared with the
unit tests (`local.memory`: `MemoryDedup`, `MemoryWindows`). Only the edges are simulated:

- `Loop`: the virtual clock, a heap of (time, seq, callback); the policies read no other clock
  (`Calls`, `Deferrals`, and `received` when an invocation begins), and `Deferrals` waits for a
  window's confirmation in virtual time (`Processes.wait`), never on the wall clock;
- S3 events dated in whole seconds, as EventBridge dates them (`event_time`);
- the S3 function: an `AsyncFunction` (benchmarks/platform.py) that EventBridge invokes once per
  event, throttled at its reserved concurrency, failed invocations retried twice, then parked;
- `SimQueue`: the SQS dispatch queue (`Queue`) and its event source mapping: a message becomes
  visible after its delay and is received in batches by at most the mapping's concurrency; a
  failed message is received again after the visibility timeout; `park` is the dead-letter queue;
- `Polytomic`: the shared fake Polytomic (`local.polytomic`, the local stack's and the unit tests')
  on the virtual clock, reached by the real `PolytomicClient` without a socket; in front of it,
  what is the platform's rather than Polytomic's: with a `Platform` that says so, the gateway's
  rate limit (429 with `Retry-After`) and each request's round trip, in virtual time.

`Platform()` (nothing takes time, nothing is limited) is the model the first table of
`make bench-bursts` uses: what the policies do. The burst of 100,000 objects adds the platform's
limits (benchmarks/storm.py).

The naive behaviour (one start per file; a 409 is dropped) is `_DirectNaive`, against its own
`Polytomic`, in the same run.

Coverage and staleness are measured from Polytomic's side, not from outcomes: a file is covered
by the first execution of its sync created at or after it landed, and its staleness is the time
from landing to that execution's creation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import json
import math
import random
import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import urllib3

from benchmarks.platform import AsyncFunction, Done, FunctionStats, Platform, Processes, RateLimit
from local.memory import MemoryDedup, MemoryWindows
from local.polytomic import DEFAULT_API_KEY, IN_PROCESS_URL, FakePolytomic, InProcess
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.calls import Calls
from polytrigger.dispatch.deferrals import FIRST_DELAY_SECONDS, Deferrals, delay_for, window_id
from polytrigger.dispatch.fan_out import OutcomeSink, run
from polytrigger.dispatch.messages import DeferredStart, Message, decode, encode
from polytrigger.dispatch.policy import SAFETY_MARGIN_SECONDS, DispatchPolicy
from polytrigger.dispatch.ports import MAX_DELAY_SECONDS, Queue, WindowStore
from polytrigger.polytomic.client import PolytomicClient, RetryPolicy
from polytrigger.polytomic.credentials import Credentials
from polytrigger.routing import parse_routes
from polytrigger.settings import API_VERSIONS, Settings

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()  # virtual time 0
BUCKET = "bench-landing"
DEFAULT_MAX_AGE = 21600  # DEFERRAL_MAX_AGE_SECONDS' default
SQS_VISIBILITY_TIMEOUT = 420.0  # DispatchQueue's VisibilityTimeout (template.yaml): received again after this
SQS_MAX_RECEIVES = 5  # the dispatcher parks a message that fails its 5th receive (MAX_RECEIVES)
API_VERSION = API_VERSIONS[0]  # POLYTOMIC_API_VERSION's default
# call_budget_ms: the dispatcher takes no record with less of the invocation left than one call may take
_DEFAULTS: dict[str, Any] = {item.name: item.default for item in dataclasses.fields(Settings)}
CALL_BUDGET_SECONDS = float(_DEFAULTS["connect_timeout"]) + float(_DEFAULTS["read_timeout"]) + SAFETY_MARGIN_SECONDS


def event_time(moment: float) -> datetime:
    """The S3 event's `time` as EventBridge delivers it: whole seconds, the fraction dropped."""
    return datetime.fromtimestamp(math.floor(moment), UTC)


class Loop:
    """Virtual time. Callbacks run in time order; equal times run in the order they were scheduled."""

    def __init__(self, start: float | None = None) -> None:
        self.now = EPOCH if start is None else start
        self.events = 0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when if when > self.now else self.now, next(self._seq), callback))

    def after(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self.now + (delay if delay > 0 else 0.0), next(self._seq), callback))

    def run(self) -> None:
        heap = self._heap
        while heap:
            when, _, callback = heapq.heappop(heap)
            self.now = when
            self.events += 1
            callback()


@dataclass(frozen=True, slots=True)
class Received:
    """One message of a batch, as the dispatcher gets it (decoded from its JSON), and its receive count."""

    message: Message
    receives: int
    wire: str


# A batch's consumer answers, per record, whether it is done (acknowledged), and the seconds of its own work.
Consumer = Callable[[list[Received]], tuple[list[bool], float]]


class SimQueue:
    """The dispatch queue (`polytrigger.dispatch.ports.Queue`) and the event source mapping that drains it.

    Messages travel as JSON text, as on SQS (`encode`, then `json.dumps`; `json.loads`, then
    `decode` on receipt). A message becomes visible `delay` seconds after `send`. The mapping
    receives visible messages in batches of up to `batch_size` (waiting up to `batching_window`
    to fill one) into at most `concurrency` invocations of `consume` at once (None: no limit);
    meanwhile they wait in the queue, unreceived, so nothing counts toward their receives. A
    record the consumer did not acknowledge is received again `SQS_VISIBILITY_TIMEOUT` after it
    was received, and after `SQS_MAX_RECEIVES` receives the redrive policy moves it to the
    dead-letter queue.
    """

    def __init__(
        self,
        loop: Loop,
        processes: Processes | None = None,
        *,
        concurrency: int | None = None,
        batch_size: int = 1,
        batching_window: float = 0.0,
    ) -> None:
        self.loop = loop
        self.processes = processes or Processes(loop, threaded=False)
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.consume: Consumer | None = None
        self.sent = 0
        self.parked: list[tuple[Message, str]] = []
        self.in_flight = 0
        self.peak = 0
        self.batches = 0
        self.last_end = 0.0
        self._visible: deque[tuple[str, int]] = deque()
        self._poll_pending = False

    def send(self, message: Message, delay_seconds: int) -> None:
        wire = json.dumps(encode(message))
        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        self.sent += 1
        self.loop.after(delay, partial(self._appear, wire, 0))

    def park(self, message: Message, reason: str) -> None:
        self.parked.append((decode(json.loads(json.dumps(encode(message)))), reason))

    def _appear(self, wire: str, receives: int) -> None:
        self._visible.append((wire, receives))
        self._poll_soon()

    def _poll_soon(self) -> None:
        if not self._visible or (self.concurrency is not None and self.in_flight >= self.concurrency):
            return  # an invocation that ends polls again
        if len(self._visible) >= self.batch_size or self.batching_window <= 0:
            self._poll()
        elif not self._poll_pending:
            self._poll_pending = True
            self.loop.after(self.batching_window, self._poll_due)

    def _poll_due(self) -> None:
        self._poll_pending = False
        self._poll()

    def _poll(self) -> None:
        assert self.consume is not None, "SimQueue.consume is not wired to a dispatcher"
        while self._visible and (self.concurrency is None or self.in_flight < self.concurrency):
            batch: list[Received] = []
            while self._visible and len(batch) < self.batch_size:
                wire, receives = self._visible.popleft()
                batch.append(Received(decode(json.loads(wire)), receives + 1, wire))
            self.in_flight += 1
            self.batches += 1
            self.peak = max(self.peak, self.in_flight)
            self.processes.spawn(partial(self.consume, batch), partial(self._done, batch, self.loop.now))

    def _done(
        self,
        batch: list[Received],
        received_at: float,
        result: tuple[list[bool], float] | None,
        error: BaseException | None,
    ) -> None:
        if error is not None:
            raise error
        assert result is not None
        acknowledged, own_work = result
        self.loop.after(own_work, partial(self._release, batch, received_at, acknowledged))

    def _release(self, batch: list[Received], received_at: float, acknowledged: list[bool]) -> None:
        self.in_flight -= 1
        self.last_end = max(self.last_end, self.loop.now)
        for record, done in zip(batch, acknowledged, strict=True):
            if done:
                continue
            if record.receives >= SQS_MAX_RECEIVES:
                self.parked.append((record.message, f"received {record.receives} times without success"))
            else:
                self.loop.at(received_at + SQS_VISIBILITY_TIMEOUT, partial(self._appear, record.wire, record.receives))
        self._poll_soon()


class Polytomic:
    """Polytomic for one behaviour: the shared fake (`local.polytomic`) on the virtual clock, behind
    the platform's gateway, reached without a socket.

    The fake is the one the local stack and the unit tests use: runs of `run_seconds` per sync on
    the virtual clock, 409 while one runs, Idempotency-Key replay, executions newest first.
    polytrigger reaches it through the REAL client (`client`: retries, backoff, Retry-After, the
    deadline, answers read as in production) over `Gateway`, an in-process transport that waits
    each request's round trip in virtual time. The naive tool has no such client: it asks `admit`
    and `start_plainly` (see `_DirectNaive`).

    Every request that reaches the gateway is counted in `calls` by kind, the 429s under "429", and
    in `sent` per whole virtual second. With `limit`, at most that many go through a second
    (`RateLimit`, the gateway's); the others are answered 429 with `Retry-After` and do nothing.
    `ahead`: Polytomic's clock runs this far ahead of ours, so it dates runs that much later.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        run_seconds: Mapping[str, float],
        *,
        limit: int | None = None,
        wait: Callable[[float], None] | None = None,
        call_seconds: float = 0.0,
        attempts: int = RetryPolicy().attempts,
        ahead: float = 0.0,
    ) -> None:
        self.ahead = ahead
        self.fake = FakePolytomic(clock=lambda: clock() + ahead, sleep=wait or _never_waits)
        for sync_id, seconds in run_seconds.items():
            self.fake.add_sync(sync_id, run_seconds=seconds)
        self.calls: Counter[str] = Counter()
        self.sent: Counter[int] = Counter()  # requests sent (429s included) per whole virtual second
        self.limit = RateLimit(limit) if limit is not None else None
        self.longest_pause = 0.0  # the longest wait between two attempts of one call
        self._clock = clock
        self._wait = wait or _never_waits
        self.gateway = Gateway(self, latency=call_seconds)
        self.client = PolytomicClient(
            IN_PROCESS_URL,
            API_VERSION,
            _credentials,
            retry=RetryPolicy(attempts=attempts),
            http=self.gateway,
            sleep=self._pause,
            clock=clock,
        )

    def admit(self, kind: str) -> float | None:
        """One request reaches the gateway now: None if it goes through (counted under `kind`), else
        its Retry-After."""
        self.calls[kind] += 1
        now = self._clock()
        self.sent[math.floor(now)] += 1
        retry_after = self.limit.admit(now) if self.limit is not None else None
        if retry_after is not None:
            self.calls["429"] += 1
        return retry_after

    def start_plainly(self, sync_id: str) -> int:
        """A start of a model sync as a plain HTTP client sends it (no Idempotency-Key), once admitted:
        whether Polytomic started a run (200) or one was in progress (409)."""
        headers = {"authorization": _credentials().authorization, "x-polytomic-version": API_VERSION}
        status = self.fake.respond("POST", f"/api/syncs/{sync_id}/executions", headers, b"").status
        if status not in (200, 409):
            raise RuntimeError(f"the fake answered a plain start {status}: the simulation set it up wrong")
        return status

    def created(self, sync_id: str) -> list[float]:
        """Creation times of the sync's executions, ascending, on our clock (virtual epoch seconds)."""
        return [execution.created_seconds - self.ahead for execution in self.fake.executions(sync_id)]

    def _pause(self, seconds: float) -> None:
        """The client's pause between two attempts of one call, waited in virtual time."""
        self.longest_pause = max(self.longest_pause, seconds)
        self._wait(seconds)


class Gateway(InProcess):
    """What stands between polytrigger's client and the fake: the gateway's rate limit (a 429 with
    `Retry-After` that does nothing) and each request's round trip, waited in virtual time."""

    def __init__(self, polytomic: Polytomic, *, latency: float) -> None:
        super().__init__(polytomic.fake, latency=latency)
        self.polytomic = polytomic

    def urlopen(  # type: ignore[override]  # PoolManager's own signature
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        kind = "executions" if method == "GET" else "start" if url.endswith("/executions") else "set_active"
        retry_after = self.polytomic.admit(kind)
        if retry_after is None:
            return super().urlopen(method, url, redirect, **kw)
        self.fake.pause(self.latency)
        body = b'{"status": 429, "message": "rate limited", "key": "rate_limited", "metadata": {}}'
        headers = {"Content-Type": "application/json", "Retry-After": f"{retry_after:g}"}
        return urllib3.HTTPResponse(body=body, headers=headers, status=429, preload_content=True)


def _credentials(refresh: bool = False) -> Credentials:
    return Credentials(scheme="api_key", authorization=f"Bearer {DEFAULT_API_KEY}")


def _never_waits(seconds: float) -> None:
    """An untimed platform's wait: nothing takes time there, so nothing may wait."""
    if seconds > 0:
        raise RuntimeError(f"a wait of {seconds} s on a platform where nothing takes time")


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """The real client jitters its backoff with `random`'s shared generator: seeded for the run (and put
    back after it), so a simulation gives the same figures every time, in any process."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


# -- scenarios and their results --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncSpec:
    id: str
    run_seconds: float


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One S3 route: the syncs it starts (indexes into Scenario.syncs) and its debounce."""

    syncs: tuple[int, ...]
    debounce: int = 0
    max_wait: int | None = None


@dataclass(frozen=True, slots=True)
class Landing:
    at: float  # seconds after virtual time 0
    route: int  # index into Scenario.route_specs() (by default, route i starts sync i)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Files landing on S3 routes. By default each sync has its own route, all with the same debounce."""

    name: str
    syncs: tuple[SyncSpec, ...]
    landings: tuple[Landing, ...]
    debounce: int  # 0: no debounce (a 409 is still deferred)
    max_wait: int | None = None
    max_executions: int | None = None  # target: polytrigger starts at most this many executions
    routes: tuple[RouteSpec, ...] | None = None  # None: one route per sync, with `debounce` and `max_wait`

    def route_specs(self) -> tuple[RouteSpec, ...]:
        if self.routes is not None:
            return self.routes
        return tuple(RouteSpec((index,), self.debounce, self.max_wait) for index in range(len(self.syncs)))

    def routes_document(self) -> dict[str, Any]:
        routes: list[dict[str, Any]] = []
        for index, spec in enumerate(self.route_specs()):
            route: dict[str, Any] = {
                "name": f"landing-{index:02d}",
                "s3": {"bucket": BUCKET, "key": f"{prefix(index)}**"},
                "syncs": [{"id": self.syncs[sync].id} for sync in spec.syncs],
            }
            if spec.debounce:
                route["debounce"] = spec.debounce
                if spec.max_wait is not None:
                    route["max_wait"] = spec.max_wait
            routes.append(route)
        return {"routes": routes}


def prefix(route_index: int) -> str:
    return f"in/s{route_index:02d}/"


def route_bound(
    debounce: int, max_wait: int | None, run_seconds: float, first_delay: int = FIRST_DELAY_SECONDS
) -> float:
    """The longest a file may wait for a covering execution, by the design's own rules (`staleness_bound`)."""
    window = (max_wait or debounce) + 1 if debounce else 0
    waited, attempt = 0, 1
    while waited < run_seconds:
        waited += delay_for(attempt, first_delay)
        attempt += 1
    return float(window + waited)


def staleness_bound(scenario: Scenario, run_seconds: float, first_delay: int = FIRST_DELAY_SECONDS) -> float:
    """The longest a file may wait for a covering execution, by the design's own rules.

    Its window flushes at most `max_wait` (+1 s: SQS delays are whole seconds) after it landed. If
    a run is in progress then, that run was created before the flush and ends within `run_seconds`;
    the deferred retries come at 30, 90, 210, ... s after the flush (`delay_for`, summed), and the
    first retry at or past the run's end either finds a run created since the flush (covered) or
    an idle sync (started). Without debounce the retries count from the landing itself. Nothing
    here waits for capacity: the bound is the policies', on a platform that is never full.
    """
    return route_bound(scenario.debounce, scenario.max_wait, run_seconds, first_delay)


def _bounds(scenario: Scenario, first_delay: int) -> dict[str, float]:
    bounds: dict[str, float] = {}
    for spec in scenario.route_specs():
        for index in spec.syncs:
            sync = scenario.syncs[index]
            bound = route_bound(spec.debounce, spec.max_wait, sync.run_seconds, first_delay)
            bounds[sync.id] = max(bounds.get(sync.id, 0.0), bound)
    return bounds


@dataclass(slots=True)
class Side:
    """What one behaviour (naive or polytrigger) achieved over a scenario."""

    files: int
    executions: int
    covered: int
    worst_staleness: float | None  # seconds, over the covered files
    late: int  # covered files that waited longer than their sync's staleness bound
    outcomes: Counter[str]
    parked: int  # events and dispatch messages in a dead-letter queue
    executions_by_sync: dict[str, int] = field(default_factory=dict)
    parked_files: int = 0  # files (per sync) that a parked event or message stands for
    unaccounted: int = 0  # files neither covered nor parked: the promise broken
    parked_uncovered: int = 0  # parked files that no run covered (a person re-drives them)
    calls: Counter[str] = field(default_factory=Counter)  # Polytomic requests by kind, 429s under "429"
    s3: FunctionStats = field(default_factory=FunctionStats)
    dispatcher_peak: int = 0
    dispatcher_batches: int = 0
    longest_pause: float = 0.0  # the longest wait between two attempts of one Polytomic call
    finished: float = 0.0  # virtual seconds until the last invocation ended
    messages: int = 0  # dispatch-queue messages sent
    busiest_second: int = 0  # the most Polytomic requests sent within one second (429s included)
    most_let_through: int = 0  # the most Polytomic let through within one second
    parked_reasons: Counter[str] = field(default_factory=Counter)  # what was parked, and why (in short)
    workers: int = 0  # threads the processes needed

    @property
    def coverage(self) -> float:
        return 100.0 * self.covered / self.files if self.files else 100.0

    @property
    def peak_concurrency(self) -> int:
        return self.s3.peak + self.dispatcher_peak

    @property
    def rate_limited(self) -> int:
        return self.calls["429"]

    @property
    def requests(self) -> int:
        return sum(count for kind, count in self.calls.items() if kind != "429")  # a 429 is counted under its kind too


@dataclass(slots=True)
class Result:
    scenario: Scenario
    bounds: dict[str, float]  # sync id -> staleness bound (seconds)
    naive: Side
    polytrigger: Side
    messages: int  # dispatch-queue messages polytrigger sent
    calls: Counter[str]  # polytrigger's Polytomic calls
    virtual_seconds: float
    wall_seconds: float

    @property
    def files(self) -> int:
        return len(self.scenario.landings)


def _counting(counter: Counter[str]) -> OutcomeSink:
    def sink(action: Action, outcome: Outcome, key: str) -> None:
        counter[outcome.status] += 1

    return sink


@dataclass(frozen=True, slots=True)
class _File:
    number: int
    landed: float
    actions: tuple[Action, ...]


FileKey = tuple[str, str]  # (sync id, object key): one file as one sync sees it


class _TrackedDeferrals(Deferrals):
    """`Deferrals` that also remember which files each debounce window gathered, so that a parked
    window message (or the deferred start of its window) can be traced back to its files."""

    def __init__(self, queue: Queue, windows: WindowStore, **options: Any) -> None:
        super().__init__(queue, windows, **options)
        self.members: dict[tuple[str, float], list[FileKey]] = {}
        self.opened: dict[FileKey, tuple[str, float]] = {}  # the file that opened a window -> the window
        self._ids: dict[tuple[str, SyncTarget], str] = {}  # window ids, as `window_id` makes them

    def debounce(self, action: Action) -> Outcome:
        outcome = super().debounce(action)
        wid = self._ids.get((action.kind, action.sync))
        if wid is None:
            wid = self._ids[(action.kind, action.sync)] = window_id(action)
        window = self.windows.get(wid)
        if window is not None and outcome.status in ("deferred", "coalesced"):
            file, ident = (action.sync.id, action.trigger.key), (window.id, window.opened_at)
            self.members.setdefault(ident, []).append(file)
            if outcome.status == "deferred":
                self.opened[file] = ident
        return outcome

    def files_of(self, message: Message) -> list[FileKey]:
        file = (message.action.sync.id, message.action.trigger.key)
        if isinstance(message, DeferredStart):
            ident = self.opened.get(file)
            return self.members.get(ident, [file]) if ident is not None else [file]
        return self.members.get((message.window, message.opened_at), [file])


class _Dispatcher:
    """The dispatcher function's batch: each record as `handlers.dispatcher` takes it.

    A record is not taken with less of the invocation left than one call may take (it goes back);
    a record that fails on its last receive is parked with the reason, not handed back.
    """

    def __init__(
        self, loop: Loop, policy: DispatchPolicy, queue: SimQueue, sink: OutcomeSink, platform: Platform
    ) -> None:
        self.loop = loop
        self.policy = policy
        self.queue = queue
        self.sink = sink
        self.platform = platform

    def consume(self, batch: list[Received]) -> tuple[list[bool], float]:
        began, platform = self.loop.now, self.platform
        ends = began + platform.timeout
        deadline = ends - SAFETY_MARGIN_SECONDS if platform.timed else None
        acknowledged: list[bool] = []
        for record in batch:
            if platform.timed and ends - self.loop.now < CALL_BUDGET_SECONDS:
                acknowledged.append(self._failed(record, "not tried: too little of the invocation left"))
                continue
            outcome = self.policy.perform_message(record.message, deadline)
            self.sink(record.message.action, outcome, record.message.id)
            acknowledged.append(not outcome.retryable or self._failed(record, outcome.reason or "failed"))
        return acknowledged, platform.invoke_seconds + platform.aws_seconds * len(batch)

    def _failed(self, record: Received, why: str) -> bool:
        """Handed back (False), or parked on its last receive (True: acknowledged)."""
        if record.receives < SQS_MAX_RECEIVES:
            return False
        self.queue.park(record.message, f"failed on its last receive ({record.receives} of {SQS_MAX_RECEIVES}): {why}")
        return True


class _World:
    """One behaviour on its own platform: its Polytomic, its functions, and what it parked."""

    loop: Loop
    platform: Platform
    processes: Processes
    polytomic: Polytomic
    outcomes: Counter[str]
    s3: AsyncFunction[_File]
    queue: SimQueue | None = None
    deferrals: _TrackedDeferrals | None = None

    def parked_files(self) -> set[FileKey]:
        parked = {(action.sync.id, action.trigger.key) for file, _ in self.s3.stats.parked for action in file.actions}
        if self.queue is not None and self.deferrals is not None:
            for message, _ in self.queue.parked:
                parked.update(self.deferrals.files_of(message))
        return parked

    def measure(self, landed: Mapping[str, list[tuple[float, str]]], bounds: Mapping[str, float]) -> Side:
        side = _measure(self.polytomic, landed, bounds, self.outcomes, self.parked_files())
        side.parked = len(self.s3.stats.parked) + (len(self.queue.parked) if self.queue is not None else 0)
        side.parked_reasons = Counter(_why("event", reason) for _, reason in self.s3.stats.parked)
        if self.queue is not None:
            side.parked_reasons.update(_why("message", reason) for _, reason in self.queue.parked)
        side.calls = self.polytomic.calls
        side.busiest_second = max(self.polytomic.sent.values(), default=0)
        if self.polytomic.limit is not None:
            side.most_let_through = max(self.polytomic.limit.accepted.values(), default=0)
        side.s3 = self.s3.stats
        side.longest_pause = self.polytomic.longest_pause
        side.workers = self.processes.workers
        side.finished = max(self.s3.stats.last_end, self.queue.last_end if self.queue is not None else 0.0) - EPOCH
        if self.queue is not None:
            side.dispatcher_peak, side.dispatcher_batches = self.queue.peak, self.queue.batches
        return side

    def _polytomic(self, durations: Mapping[str, float], *, round_trip: float) -> Polytomic:
        platform = self.platform
        return Polytomic(
            self.loop.clock,
            durations,
            limit=platform.rate_limit,
            wait=self.processes.wait,
            call_seconds=round_trip,
            attempts=platform.attempts,
            ahead=platform.polytomic_ahead,
        )

    def _function(self, start: Callable[[_File, Done], None]) -> AsyncFunction[_File]:
        platform = self.platform
        return AsyncFunction(
            self.loop,
            start,
            concurrency=platform.s3_concurrency,
            max_event_age=platform.max_event_age,
            seed=platform.seed + 1,
        )


class _PolicyWorld(_World):
    """The real policy: `DispatchPolicy.perform` in the S3 function, `perform_message` in the dispatcher."""

    def __init__(
        self,
        loop: Loop,
        durations: Mapping[str, float],
        platform: Platform,
        *,
        max_age: float,
        first_delay: int,
    ) -> None:
        self.loop = loop
        self.platform = platform
        self.processes = Processes(loop, threaded=platform.timed)
        self.polytomic = self._polytomic(durations, round_trip=platform.call_seconds)
        self.outcomes = Counter()
        self.sink = _counting(self.outcomes)
        calls = Calls(self.polytomic.client, MemoryDedup(), loop.clock)
        self.queue = SimQueue(
            loop,
            self.processes,
            concurrency=platform.dispatcher_concurrency,
            batch_size=platform.batch_size,
            batching_window=platform.batching_window,
        )
        self.deferrals = _TrackedDeferrals(
            self.queue,
            MemoryWindows(),
            max_age=max_age,
            first_delay=first_delay,
            clock=loop.clock,
            sleep=self.processes.wait,  # virtual time; inline, a wait raises rather than sleeping for real
        )
        self.policy = DispatchPolicy(calls, self.deferrals)
        dispatcher = _Dispatcher(loop, self.policy, self.queue, self.sink, platform)
        self.queue.consume = dispatcher.consume
        self.s3 = self._function(self._start)

    def _start(self, file: _File, done: Done) -> None:
        # A file whose every action is debounced only touches the windows and the queue: it never
        # waits for Polytomic, so it runs inline (no thread). Were that wrong, `wait` would raise.
        debounced = all(action.kind == "start" and action.debounce for action in file.actions)
        inline = debounced
        self.processes.spawn(partial(self._handle, file), done, inline=inline)

    def _handle(self, file: _File) -> tuple[bool, float]:
        """`App.handle` for one EventBridge event: `received` and the deadline are read as it begins."""
        received, platform = self.loop.now, self.platform
        deadline = received + platform.timeout - SAFETY_MARGIN_SECONDS if platform.timed else None
        report = run(file.actions, lambda action: self.policy.perform(action, deadline, received), self.sink)
        return not report.retryable, platform.invoke_seconds + platform.aws_seconds * len(file.actions)


class _DirectNaive(_World):
    """The naive tool: one start per file, a 409 the final word; event by event on the loop.

    A burst of 100,000 objects makes it send millions of requests. It does what a trigger function
    without a dispatch queue would, against the same fake Polytomic behind the same gateway: one
    start per action, in order; a 201 or a 409 is settled (a retried invocation skips it, as the
    dedup table makes it a `duplicate`); a 429 is retried by its client (`NaiveClient`), and after
    its last attempt the action fails and so does the invocation, which Lambda retries.
    `test_bench_bursts` holds the two to the same figures on a small burst.

    Its client is its own (a plain HTTP client with backoff), not polytrigger's, and it runs as
    events rather than as a process, so the millions of 429s cost microseconds each: the gateway is
    asked first (`Polytomic.admit`), and only what it lets through reaches the fake.
    """

    def __init__(self, loop: Loop, durations: Mapping[str, float], platform: Platform) -> None:
        self.loop = loop
        self.platform = platform
        self.processes = Processes(loop, threaded=False)
        self.polytomic = self._polytomic(durations, round_trip=0.0)  # the loop waits the round trip itself
        self.outcomes = Counter()
        self.settled: set[FileKey] = set()
        self.s3 = self._function(self._start)
        self.client = NaiveClient(platform, self.polytomic)

    def _start(self, file: _File, done: Done) -> None:
        invocation = _NaiveInvocation(file, self.loop.now + self.platform.timeout - SAFETY_MARGIN_SECONDS, done)
        self._action(invocation, 0, 0)

    def _action(self, invocation: _NaiveInvocation, index: int, attempt: int) -> None:
        actions, platform = invocation.file.actions, self.platform
        while index < len(actions) and (actions[index].sync.id, actions[index].trigger.key) in self.settled:
            self.outcomes["duplicate"] += 1
            index += 1
        if index == len(actions):
            invocation.done(
                (not invocation.failed, platform.invoke_seconds + platform.aws_seconds * len(actions)), None
            )
            return
        action = actions[index]
        retry_after = self.polytomic.admit("start")
        if retry_after is None:
            status = self.polytomic.start_plainly(action.sync.id)
            self.settled.add((action.sync.id, action.trigger.key))
            self.outcomes["already_running" if status == 409 else "started"] += 1
            self.loop.after(platform.call_seconds, partial(self._action, invocation, index + 1, 0))
            return
        pause = self.client.pause(attempt + 1, retry_after, self.loop.now, invocation.deadline)
        if pause is None:
            self.outcomes["failed"] += 1
            invocation.failed = True
            self.loop.after(platform.call_seconds, partial(self._action, invocation, index + 1, 0))
            return
        self.loop.after(platform.call_seconds + pause, partial(self._action, invocation, index, attempt + 1))


class NaiveClient:
    """The naive tool's own HTTP client: after a 429 it pauses with full jitter over the same capped
    exponential as polytrigger's client, at least `Retry-After` only if the platform says it honours
    it, and gives up after `attempts` requests or when the pause would end past the deadline."""

    def __init__(self, platform: Platform, polytomic: Polytomic) -> None:
        self.platform = platform
        self.polytomic = polytomic
        self.retry = RetryPolicy(attempts=platform.attempts)
        self._rng = random.Random(platform.seed)

    def pause(self, attempt: int, retry_after: float, now: float, deadline: float | None) -> float | None:
        """After the `attempt`-th 429 of a call (sent at `now`), the pause before the next request; None
        when it gives up."""
        if attempt >= self.retry.attempts:
            return None
        jittered = self._rng.random() * min(self.retry.max_delay, self.retry.base_delay * 2.0**attempt)
        pause = max(jittered, retry_after) if self.platform.honour_retry_after else jittered
        if deadline is not None and now + self.platform.call_seconds + pause >= deadline:
            return None
        self.polytomic.longest_pause = max(self.polytomic.longest_pause, pause)
        return pause


@dataclass(slots=True)
class _NaiveInvocation:
    file: _File
    deadline: float
    done: Done
    failed: bool = False


def simulate(
    scenario: Scenario,
    *,
    max_age: float = DEFAULT_MAX_AGE,
    first_delay: int = FIRST_DELAY_SECONDS,
    naive: Platform | None = None,
    polytrigger: Platform | None = None,
) -> Result:
    """Land every file at its time, run both behaviours until nothing is left to do, and measure.

    Each behaviour runs on its own platform (default `Platform()`: unbounded, instant).
    """
    wall = time.perf_counter()
    loop = Loop()
    durations = {sync.id: sync.run_seconds for sync in scenario.syncs}
    poly = _PolicyWorld(loop, durations, polytrigger or Platform(), max_age=max_age, first_delay=first_delay)
    plain = _DirectNaive(loop, durations, naive or Platform())
    landed = _play(loop, scenario, [poly, plain])
    bounds = _bounds(scenario, first_delay)
    assert poly.queue is not None
    return Result(
        scenario=scenario,
        bounds=bounds,
        naive=plain.measure(landed, bounds),
        polytrigger=poly.measure(landed, bounds),
        messages=poly.queue.sent,
        calls=poly.polytomic.calls,
        virtual_seconds=loop.now - EPOCH,
        wall_seconds=time.perf_counter() - wall,
    )


def simulate_one(
    scenario: Scenario | Prepared,
    platform: Platform,
    *,
    naive: bool,
    max_age: float = DEFAULT_MAX_AGE,
    first_delay: int = FIRST_DELAY_SECONDS,
) -> Side:
    """One behaviour alone on its platform (a storm's rows each run on their own)."""
    prepared = scenario if isinstance(scenario, Prepared) else prepare(scenario)
    scenario = prepared.scenario
    loop = Loop()
    durations = {sync.id: sync.run_seconds for sync in scenario.syncs}
    world = (
        _DirectNaive(loop, durations, platform)
        if naive
        else _PolicyWorld(loop, durations, platform, max_age=max_age, first_delay=first_delay)
    )
    landed = _play(loop, prepared, [world])
    side = world.measure(landed, _bounds(scenario, first_delay))
    side.messages = world.queue.sent if world.queue is not None else 0
    return side


@dataclass(frozen=True, slots=True)
class Prepared:
    """A scenario's files, routed once (routing is pure), to land in any number of runs."""

    scenario: Scenario
    files: tuple[_File, ...]
    landed: dict[str, list[tuple[float, str]]]  # sync id -> (landing time, object key), in landing order


def prepare(scenario: Scenario) -> Prepared:
    routes = parse_routes(scenario.routes_document(), source=f"scenario {scenario.name}")
    landed: dict[str, list[tuple[float, str]]] = {sync.id: [] for sync in scenario.syncs}
    files: list[_File] = []
    ordered = sorted(scenario.landings, key=lambda landing: landing.at)
    for number, landing in enumerate(ordered):
        moment = EPOCH + landing.at
        trigger = Trigger.s3(
            bucket=BUCKET,
            key=f"{prefix(landing.route)}part-{number:06d}.csv",
            event="created",
            sequencer=f"{number:016X}",
            time=event_time(moment),
        )
        file = _File(number, moment, tuple(routes.actions_for([trigger])))
        for action in file.actions:
            landed[action.sync.id].append((moment, trigger.key))
        files.append(file)
    return Prepared(scenario, tuple(files), landed)


def _play(loop: Loop, scenario: Scenario | Prepared, worlds: Sequence[_World]) -> dict[str, list[tuple[float, str]]]:
    """Land every file in every world at its time and run the loop dry; (landing time, key) per sync."""
    prepared = scenario if isinstance(scenario, Prepared) else prepare(scenario)
    for file in prepared.files:
        loop.at(file.landed, partial(_land, file, worlds))
    try:
        with _seeded(worlds[0].platform.seed):
            loop.run()
    finally:
        for world in worlds:
            world.processes.close()
    return prepared.landed


def _land(file: _File, worlds: Sequence[_World]) -> None:
    for world in worlds:
        world.s3.invoke(file)


def _why(what: str, reason: str) -> str:
    """A parked event's or message's reason, in a few words (the full reasons are in `parked`)."""
    if reason.startswith("older than MaximumEventAgeInSeconds"):
        return f"{what}: older than MaximumEventAgeInSeconds"
    if "still not started after" in reason:
        return f"{what}: retried past DEFERRAL_MAX_AGE_SECONDS"
    if reason.startswith(("failed on its last receive", "received")):
        return f"{what}: failed on its last receive"
    if reason.startswith("failed "):
        return f"{what}: failed 3 times"
    return f"{what}: {reason[:60]}"


def _measure(
    polytomic: Polytomic,
    landed: Mapping[str, list[tuple[float, str]]],
    bounds: Mapping[str, float],
    outcomes: Counter[str],
    parked: set[FileKey],
) -> Side:
    files = covered = executions = late = parked_files = unaccounted = parked_uncovered = 0
    worst: float | None = None
    by_sync: dict[str, int] = {}
    for sync_id, arrivals in landed.items():
        created = polytomic.created(sync_id)
        by_sync[sync_id] = len(created)
        executions += len(created)
        files += len(arrivals)
        for landed_at, key in arrivals:
            index = bisect_left(created, landed_at)
            was_parked = (sync_id, key) in parked
            parked_files += was_parked
            if index < len(created):
                covered += 1
                staleness = created[index] - landed_at
                worst = staleness if worst is None else max(worst, staleness)
                late += staleness > bounds[sync_id] + 1e-3  # float noise on epoch seconds
            elif was_parked:
                parked_uncovered += 1
            else:
                unaccounted += 1
    return Side(
        files,
        executions,
        covered,
        worst,
        late,
        outcomes,
        0,
        executions_by_sync=by_sync,
        parked_files=parked_files,
        unaccounted=unaccounted,
        parked_uncovered=parked_uncovered,
    )
