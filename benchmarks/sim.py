"""A discrete-event simulation of polytrigger on a virtual clock, so hours of arrivals run in seconds.

The real code runs unchanged: `parse_routes` and `Routes` turn each landed file into actions, the
real dispatch policies perform them (`ActionPolicy` through `run` at landing time, `QueuedStarts`
when a queued message is due) over the real `Starts` and `Deferrals`, with the in-memory ports
shared with the unit tests (`local.memory`: `MemoryDedup`, `MemoryWindows`). Only the edges are
simulated:

- `Loop`: the virtual clock, a heap of (time, seq, callback); the policies read no other clock
  (`Starts`, `Deferrals`, and `received` when an invocation begins);
- S3 events dated in whole seconds, as EventBridge dates them (`event_time`);
- `SimQueue`: the SQS dispatch queue (`Queue`; delay = scheduling the dispatcher call at now + delay;
  a failed message is received again after the visibility timeout; `park` is the dead-letter queue);
- `SimPolytomic`: `PolytomicApi` with runs of a fixed duration per sync, 409 (`AlreadyRunning`) while
  a run is in progress, Idempotency-Key replay (same key, same answer, 409s included), executions
  newest first.

The naive behaviour (one start per file; a 409 is dropped) is the same `ActionPolicy` without a
dispatch queue (`deferrals=None`), against its own `SimPolytomic`, in the same run.

Coverage and staleness are measured from Polytomic's side, not from outcomes: a file is covered
by the first execution of its sync created at or after it landed, and its staleness is the time
from landing to that execution's creation.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from local.memory import MemoryDedup, MemoryWindows
from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferred import FIRST_DELAY_SECONDS, Deferrals, delay_for
from polytrigger.dispatch.messages import Message, decode, encode
from polytrigger.dispatch.policy import ActionPolicy
from polytrigger.dispatch.ports import MAX_DELAY_SECONDS, AlreadyRunning, Execution
from polytrigger.dispatch.queued import QueuedStarts
from polytrigger.dispatch.run import OutcomeSink, run
from polytrigger.dispatch.starts import Starts
from polytrigger.routing import parse_routes

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()  # virtual time 0
BUCKET = "bench-landing"
DEFAULT_MAX_AGE = 21600  # DEFERRAL_MAX_AGE_SECONDS' default
LAMBDA_RETRY_DELAYS = (60.0, 120.0)  # an asynchronous invocation that fails is retried twice, then parked
SQS_VISIBILITY_TIMEOUT = 420.0  # DispatchQueue's VisibilityTimeout (template.yaml): received again after this
SQS_MAX_RECEIVES = 5  # then the redrive policy moves it to the dispatch dead-letter queue
EXECUTIONS_PAGE = 50  # GET .../executions answers one page, newest first


def event_time(moment: float) -> datetime:
    """The S3 event's `time` as EventBridge delivers it: whole seconds, the fraction dropped."""
    return datetime.fromtimestamp(math.floor(moment), UTC)


def iso(moment: float) -> str:
    """Polytomic's `created_at`: ISO-8601 UTC with microseconds."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        heapq.heappush(self._heap, (max(when, self.now), next(self._seq), callback))

    def after(self, delay: float, callback: Callable[[], None]) -> None:
        self.at(self.now + delay, callback)

    def run(self) -> None:
        heap = self._heap
        while heap:
            when, _, callback = heapq.heappop(heap)
            self.now = when
            self.events += 1
            callback()


class SimQueue:
    """The dispatch queue (`polytrigger.dispatch.ports.Queue`): `send` delivers the message `delay` seconds later.

    Messages travel as JSON text, as on SQS (`encode`, then `json.dumps`; `json.loads`, then
    `decode` on receipt). `deliver` answers False when processing failed (a retryable outcome):
    the message is received again after the visibility timeout, and parked after
    `SQS_MAX_RECEIVES` receives, as the queue's redrive policy would.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.deliver: Callable[[Message], bool] | None = None
        self.sent = 0
        self.parked: list[tuple[Message, str]] = []

    def send(self, message: Message, delay_seconds: int) -> None:
        wire = json.dumps(encode(message))
        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        self.sent += 1
        self.loop.after(delay, lambda: self._receive(wire, 1))

    def park(self, message: Message, reason: str) -> None:
        self.parked.append((decode(json.loads(json.dumps(encode(message)))), reason))

    def _receive(self, wire: str, receives: int) -> None:
        assert self.deliver is not None, "SimQueue.deliver is not wired to a dispatcher"
        message = decode(json.loads(wire))
        if self.deliver(message):
            return
        if receives >= SQS_MAX_RECEIVES:
            self.parked.append((message, f"received {receives} times without success"))
        else:
            self.loop.after(SQS_VISIBILITY_TIMEOUT, lambda: self._receive(wire, receives + 1))


@dataclass(slots=True)
class _SimSync:
    run_seconds: float
    running_until: float = float("-inf")
    created: list[float] = field(default_factory=list)  # ascending
    ids: list[str] = field(default_factory=list)


class SimPolytomic:
    """Polytomic as the policies see it (`polytrigger.dispatch.ports.PolytomicApi`), on the virtual clock.

    A start creates an execution that runs `run_seconds[sync_id]`; a start while one runs answers
    409 (`AlreadyRunning`). The first request with an Idempotency-Key fixes the answer, 409s
    included: the same key gets the same answer again (as Polytomic, and the local fake, do).
    """

    def __init__(self, clock: Callable[[], float], run_seconds: Mapping[str, float]) -> None:
        self.clock = clock
        self.run_seconds = dict(run_seconds)
        self.calls: Counter[str] = Counter()
        self._syncs: dict[tuple[str, str], _SimSync] = {}
        self._answers: dict[str, Execution | str] = {}  # key -> the execution, or the 409's message
        self._numbers = itertools.count(1)

    def sync(self, sync_type: str, sync_id: str) -> _SimSync:
        state = self._syncs.get((sync_type, sync_id))
        if state is None:
            state = self._syncs[(sync_type, sync_id)] = _SimSync(self.run_seconds[sync_id])
        return state

    def created(self, sync_type: str, sync_id: str) -> list[float]:
        """Creation times of the sync's executions, ascending (virtual epoch seconds)."""
        return list(self.sync(sync_type, sync_id).created)

    def start(
        self,
        sync_type: str,
        sync_id: str,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        deadline: float | None = None,
    ) -> Execution:
        self.calls["start"] += 1
        answer = self._answers.get(idempotency_key)
        if answer is None:
            answer = self._answers[idempotency_key] = self._start(sync_type, sync_id)
        else:
            self.calls["replayed"] += 1
        if isinstance(answer, str):
            raise AlreadyRunning(answer, status=409, key=idempotency_key)
        return answer

    def _start(self, sync_type: str, sync_id: str) -> Execution | str:
        now, state = self.clock(), self.sync(sync_type, sync_id)
        if now < state.running_until:
            return f"POST /api/syncs/{sync_id}/executions: a run of this sync is already in progress"
        number = next(self._numbers)
        execution_id = f"{number:08x}-0000-4000-8000-{number:012x}"
        state.running_until = now + state.run_seconds
        state.created.append(now)
        state.ids.append(execution_id)
        return Execution(id=execution_id, status="created", created_at=iso(now))

    def set_active(
        self,
        sync_type: str,
        sync_id: str,
        active: bool,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        self.calls["set_active"] += 1
        return active

    def executions(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> list[dict[str, Any]]:
        """The first page of the sync's executions, newest first."""
        self.calls["executions"] += 1
        state, now = self.sync(sync_type, sync_id), self.clock()
        page: list[dict[str, Any]] = []
        for index in range(len(state.created) - 1, max(-1, len(state.created) - 1 - EXECUTIONS_PAGE), -1):
            running = index == len(state.created) - 1 and now < state.running_until
            page.append(
                {
                    "id": state.ids[index],
                    "status": "running" if running else "completed",
                    "created_at": iso(state.created[index]),
                }
            )
        return page


# -- scenarios and their results --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncSpec:
    id: str
    run_seconds: float


@dataclass(frozen=True, slots=True)
class Landing:
    at: float  # seconds after virtual time 0
    sync: int  # index into Scenario.syncs


@dataclass(frozen=True, slots=True)
class Scenario:
    """Files landing for one or more syncs; each sync has its own S3 route with the same debounce."""

    name: str
    syncs: tuple[SyncSpec, ...]
    landings: tuple[Landing, ...]
    debounce: int  # 0: no debounce (a 409 is still deferred)
    max_wait: int | None = None
    max_executions: int | None = None  # target: polytrigger starts at most this many executions

    def routes_document(self) -> dict[str, Any]:
        routes: list[dict[str, Any]] = []
        for index, sync in enumerate(self.syncs):
            route: dict[str, Any] = {
                "name": f"landing-{index:02d}",
                "s3": {"bucket": BUCKET, "key": f"{prefix(index)}**"},
                "syncs": [{"id": sync.id}],
            }
            if self.debounce:
                route["debounce"] = self.debounce
                if self.max_wait is not None:
                    route["max_wait"] = self.max_wait
            routes.append(route)
        return {"routes": routes}


def prefix(sync_index: int) -> str:
    return f"in/s{sync_index:02d}/"


def staleness_bound(scenario: Scenario, run_seconds: float, first_delay: int = FIRST_DELAY_SECONDS) -> float:
    """The longest a file may wait for a covering execution, by the design's own rules.

    Its window flushes at most `max_wait` (+1 s: SQS delays are whole seconds) after it landed. If
    a run is in progress then, that run was created before the flush and ends within `run_seconds`;
    the deferred retries come at 30, 90, 210, ... s after the flush (`delay_for`, summed), and the
    first retry at or past the run's end either finds a run created since the flush (covered) or
    an idle sync (started). Without debounce the retries count from the landing itself.
    """
    window = (scenario.max_wait or scenario.debounce) + 1 if scenario.debounce else 0
    waited, attempt = 0, 1
    while waited < run_seconds:
        waited += delay_for(attempt, first_delay)
        attempt += 1
    return float(window + waited)


@dataclass(slots=True)
class Side:
    """What one behaviour (naive or polytrigger) achieved over a scenario."""

    files: int
    executions: int
    covered: int
    worst_staleness: float | None  # seconds, over the covered files
    late: int  # covered files that waited longer than their sync's staleness bound
    outcomes: Counter[str]
    parked: int

    @property
    def coverage(self) -> float:
        return 100.0 * self.covered / self.files if self.files else 100.0


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


class _Lambda:
    """A function invoked asynchronously per event: a failed invocation is retried twice, then parked."""

    def __init__(self, loop: Loop, policy: ActionPolicy, sink: OutcomeSink) -> None:
        self.loop = loop
        self.policy = policy
        self.sink = sink
        self.parked = 0

    def invoke(self, actions: Sequence[Action], attempt: int = 0) -> None:
        received = self.loop.now  # as App.handle reads it when the invocation begins
        report = run(actions, lambda action: self.policy.perform(action, None, received), self.sink)
        if not report.retryable:
            return
        if attempt >= len(LAMBDA_RETRY_DELAYS):
            self.parked += 1
            return
        self.loop.after(LAMBDA_RETRY_DELAYS[attempt], lambda: self.invoke(actions, attempt + 1))


class _Dispatcher:
    """The dispatcher function: performs a queued message and reports its outcome (as `App.handle_message` does).

    `deliver` answers whether the message succeeded (False: retryable, so SQS receives it again).
    """

    def __init__(self, queued: QueuedStarts, sink: OutcomeSink) -> None:
        self.queued = queued
        self.sink = sink

    def deliver(self, message: Message) -> bool:
        outcome = self.queued.perform(message, None)
        self.sink(message.action, outcome, message.id)
        return not outcome.retryable


def simulate(
    scenario: Scenario,
    *,
    max_age: float = DEFAULT_MAX_AGE,
    first_delay: int = FIRST_DELAY_SECONDS,
) -> Result:
    """Land every file at its time, run both behaviours until nothing is left to do, and measure."""
    wall = time.perf_counter()
    loop = Loop()
    routes = parse_routes(scenario.routes_document(), source=f"scenario {scenario.name}")
    durations = {sync.id: sync.run_seconds for sync in scenario.syncs}

    queue = SimQueue(loop)
    deferrals = Deferrals(queue, MemoryWindows(), max_age=max_age, first_delay=first_delay, clock=loop.clock)
    poly_client, naive_client = SimPolytomic(loop.clock, durations), SimPolytomic(loop.clock, durations)
    poly_outcomes: Counter[str] = Counter()
    naive_outcomes: Counter[str] = Counter()
    poly_starts = Starts(poly_client, MemoryDedup(), loop.clock)
    poly_sink = _counting(poly_outcomes)
    queue.deliver = _Dispatcher(QueuedStarts(poly_starts, deferrals), poly_sink).deliver
    poly_lambda = _Lambda(loop, ActionPolicy(poly_starts, deferrals), poly_sink)
    naive_lambda = _Lambda(
        loop, ActionPolicy(Starts(naive_client, MemoryDedup(), loop.clock), None), _counting(naive_outcomes)
    )

    landed: dict[str, list[float]] = {sync.id: [] for sync in scenario.syncs}

    def land(number: int, landing: Landing) -> None:
        now = loop.now
        trigger = Trigger.s3(
            bucket=BUCKET,
            key=f"{prefix(landing.sync)}part-{number:06d}.csv",
            event="created",
            sequencer=f"{number:016X}",
            time=event_time(now),
        )
        actions = routes.actions_for([trigger])
        for action in actions:
            landed[action.sync.id].append(now)
        poly_lambda.invoke(actions)
        naive_lambda.invoke(actions)

    ordered = sorted(scenario.landings, key=lambda landing: landing.at)
    for number, landing in enumerate(ordered):
        loop.at(EPOCH + landing.at, partial(land, number, landing))
    loop.run()

    bounds = {sync.id: staleness_bound(scenario, sync.run_seconds, first_delay) for sync in scenario.syncs}
    return Result(
        scenario=scenario,
        bounds=bounds,
        naive=_measure(naive_client, landed, bounds, naive_outcomes, naive_lambda.parked),
        polytrigger=_measure(poly_client, landed, bounds, poly_outcomes, poly_lambda.parked + len(queue.parked)),
        messages=queue.sent,
        calls=poly_client.calls,
        virtual_seconds=loop.now - EPOCH,
        wall_seconds=time.perf_counter() - wall,
    )


def _measure(
    client: SimPolytomic,
    landed: Mapping[str, list[float]],
    bounds: Mapping[str, float],
    outcomes: Counter[str],
    parked: int,
) -> Side:
    files = covered = executions = late = 0
    worst: float | None = None
    for sync_id, times in landed.items():
        created = client.created("model", sync_id)
        executions += len(created)
        files += len(times)
        for landed_at in times:
            index = bisect_left(created, landed_at)
            if index < len(created):
                covered += 1
                staleness = created[index] - landed_at
                worst = staleness if worst is None else max(worst, staleness)
                late += staleness > bounds[sync_id] + 1e-3  # float noise on epoch seconds
    return Side(files, executions, covered, worst, late, outcomes, parked)
