"""What the functions run on, for the burst simulation (benchmarks/sim.py): Lambda's concurrency and
asynchronous event queue, and the rate limit of the gateway in front of Polytomic, all on the
virtual clock. Polytomic itself is the shared fake (`local.polytomic`), not modelled here.

- `Platform`: how one side is deployed and how long things take (one Polytomic request, an
  invocation's own work), and the gateway's rate limit. `Platform()` is the old, unbounded model:
  nothing takes time and nothing is limited, so invocations run at once, inline.
- `Processes`: invocations whose code waits (a Polytomic request, a `Retry-After` pause) run as
  processes on worker threads, one at a time: the running one hands control back to the event
  loop when it waits and gets it back when the loop reaches the end of the wait. So the real
  policies, which call Polytomic synchronously, see every request answered at its virtual time,
  in order, whatever else runs meanwhile. Deterministic: exactly one thread runs at any moment.
- `AsyncFunction`: a function invoked asynchronously (EventBridge -> Lambda) with reserved
  concurrency. An event that finds every slot taken is throttled, not lost: Lambda keeps it in its
  queue and tries again after 1 s, 2 s, 4 s ... at most 5 min (seeded jitter) until the event is
  older than MaximumEventAgeInSeconds, when it goes to the dead-letter queue. An invocation that
  fails is retried after 1 and 2 min (EventInvokeConfig: MaximumRetryAttempts 2), then parked.
- `RateLimit`: the gateway's limit per organisation, N requests per 1-second window; a request over
  it is answered 429 with `Retry-After` (the seconds to the next window) and never reaches Polytomic.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from polytrigger.polytomic.client import RetryPolicy

T = TypeVar("T")
P = TypeVar("P")

LAMBDA_TIMEOUT = 60.0  # Globals.Function.Timeout
MAX_EVENT_AGE = 3600.0  # EventInvokeConfig.MaximumEventAgeInSeconds
FAILURE_RETRY_DELAYS = (60.0, 120.0)  # an asynchronous invocation that fails: two retries, then parked
THROTTLE_FIRST_RETRY = 1.0  # a throttled event is tried again after 1 s, doubling ...
THROTTLE_MAX_RETRY = 300.0  # ... to at most 5 minutes
ACCOUNT_CONCURRENCY = 1000  # the default regional quota: what "unbounded" means on a real account


@dataclass(frozen=True, slots=True)
class Platform:
    """One side's deployment. Concurrency None: no limit at all (the old, unbounded model)."""

    s3_concurrency: int | None = None  # S3TriggerConcurrency (reserved), or the account's pool
    dispatcher_concurrency: int | None = None  # DispatcherConcurrency (the mapping's MaximumConcurrency)
    batch_size: int = 1  # the mapping's BatchSize (template: 10)
    batching_window: float = 0.0  # MaximumBatchingWindowInSeconds (template: 1)
    call_seconds: float = 0.0  # one Polytomic request, answer included
    invoke_seconds: float = 0.0  # an invocation's own work (handler, logs, metrics)
    aws_seconds: float = 0.0  # DynamoDB and SQS requests, per action (S3) or record (dispatcher)
    rate_limit: int | None = None  # Polytomic requests per second per organisation
    honour_retry_after: bool = True  # the naive tool's client waits Retry-After (polytrigger's always does)
    attempts: int = RetryPolicy().attempts  # per Polytomic call (the client's RetryPolicy: 3)
    timeout: float = LAMBDA_TIMEOUT
    max_event_age: float = MAX_EVENT_AGE
    seed: int = 11
    polytomic_ahead: float = 0.0  # how far Polytomic's clock runs ahead of ours (created_at dated later)

    @property
    def timed(self) -> bool:
        """Whether anything takes time or waits: then invocations run as processes."""
        return self.call_seconds > 0 or self.rate_limit is not None or self.invoke_seconds > 0 or self.aws_seconds > 0


class Loop(Protocol):
    now: float

    def at(self, when: float, callback: Callable[[], None]) -> None: ...

    def after(self, delay: float, callback: Callable[[], None]) -> None: ...


class _Stopped(BaseException):
    """Unwinds a worker that is still waiting when the simulation is torn down."""


class _Worker:
    __slots__ = ("done", "error", "finished", "go", "result", "stopping", "task", "thread")

    def __init__(self) -> None:
        self.go = threading.Lock()
        self.go.acquire()
        self.task: Callable[[], Any] | None = None
        self.done: Callable[[Any, BaseException | None], None] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.stopping = False
        self.thread: threading.Thread | None = None


class Processes:
    """Invocations as processes on the virtual clock (see the module's docstring).

    `spawn` starts one now; its body may call `wait`; when it returns, `done(result, error)` runs on
    the loop's thread. With `threaded=False` (nothing ever waits) the body runs inline.
    """

    def __init__(self, loop: Loop, *, threaded: bool) -> None:
        self.loop = loop
        self.threaded = threaded
        self.workers = 0
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._back = threading.Lock()
        self._back.acquire()
        self._local = threading.local()

    def spawn(
        self, body: Callable[[], T], done: Callable[[T | None, BaseException | None], None], *, inline: bool = False
    ) -> None:
        """Run `body` as a process from now; `inline`: the caller knows it never waits (if it does, `wait` raises)."""
        if inline or not self.threaded:
            try:
                result = body()
            except Exception as error:
                done(None, error)
                return
            done(result, None)
            return
        worker = self._idle.pop() if self._idle else self._new_worker()
        worker.task, worker.done, worker.finished = body, done, False
        self._resume(worker)

    def wait(self, seconds: float) -> None:
        """Called by a process: give the loop back, and go on `seconds` of virtual time later."""
        if seconds <= 0:
            return
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is None:
            raise RuntimeError("only a process can wait: this invocation was run inline")
        self.loop.after(seconds, lambda: self._resume(worker))
        self._back.release()
        worker.go.acquire()
        if worker.stopping:
            raise _Stopped

    def close(self) -> None:
        """End every worker thread (idle ones, and any left waiting by an error)."""
        for worker in self._all:
            worker.stopping, worker.task = True, None
            worker.go.release()
        for worker in self._all:
            if worker.thread is not None:
                worker.thread.join(timeout=5)
        self._all.clear()
        self._idle.clear()

    def _new_worker(self) -> _Worker:
        worker = _Worker()
        worker.thread = threading.Thread(target=self._work, args=(worker,), name="sim-process", daemon=True)
        self._all.append(worker)
        self.workers += 1
        worker.thread.start()
        return worker

    def _resume(self, worker: _Worker) -> None:
        worker.go.release()
        self._back.acquire()
        if worker.finished:
            done, result, error = worker.done, worker.result, worker.error
            worker.task = worker.done = worker.result = worker.error = None
            self._idle.append(worker)
            assert done is not None
            done(result, error)

    def _work(self, worker: _Worker) -> None:
        self._local.worker = worker
        while True:
            worker.go.acquire()
            task = worker.task
            if worker.stopping or task is None:
                return
            try:
                worker.result, worker.error = task(), None
            except _Stopped:
                return
            except Exception as error:
                worker.result, worker.error = None, error
            worker.finished = True
            self._back.release()


class RateLimit:
    """N requests per 1-second window; over it, 429 with the seconds to the next window as Retry-After."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.accepted: dict[int, int] = {}  # window (whole virtual second) -> requests let through

    def admit(self, now: float) -> float | None:
        """None when the request goes through; else its Retry-After in whole seconds, as the header
        sends it: the next window begins within the second, so 1."""
        window = math.floor(now)
        taken = self.accepted.get(window, 0)
        if taken < self.per_second:
            self.accepted[window] = taken + 1
            return None
        return 1.0


@dataclass(slots=True)
class _Event(Generic[P]):
    payload: P
    accepted: float  # when Lambda took it into its queue
    failures: int = 0
    throttles: int = 0


@dataclass(slots=True)
class FunctionStats:
    invocations: int = 0
    throttles: int = 0  # tries that found every slot taken (the event waited, it was not lost)
    failures: int = 0  # invocations that failed (AWS retried them, or parked the event)
    peak: int = 0
    parked: list[tuple[Any, str]] = field(default_factory=list)
    longest_wait: float = 0.0  # from Lambda accepting an event to its first invocation
    last_end: float = 0.0


# An invocation's end: (succeeded, seconds of its own work to add), or the exception it raised.
Done = Callable[[tuple[bool, float] | None, BaseException | None], None]


class AsyncFunction(Generic[P]):
    """A function invoked asynchronously, with at most `concurrency` invocations at once (see the module).

    `start(payload, done)` begins one invocation now (as a process, or as events on the loop) and
    calls `done` when it ends, with whether it succeeded and the seconds of its own work: the slot
    stays taken that much longer. An exception is a bug in the simulation or the policies, raised.
    """

    def __init__(
        self,
        loop: Loop,
        start: Callable[[P, Done], None],
        *,
        concurrency: int | None,
        max_event_age: float = MAX_EVENT_AGE,
        seed: int = 0,
    ) -> None:
        self.loop = loop
        self.start = start
        self.concurrency = concurrency
        self.max_event_age = max_event_age
        self.stats = FunctionStats()
        self.in_flight = 0
        self._rng = random.Random(seed)

    def invoke(self, payload: P) -> None:
        """EventBridge hands Lambda the event now."""
        self._try(_Event(payload, self.loop.now))

    def _try(self, event: _Event[P]) -> None:
        now = self.loop.now
        if now - event.accepted > self.max_event_age:
            why = f"older than MaximumEventAgeInSeconds ({self.max_event_age:.0f} s) after {event.throttles} throttles"
            self.stats.parked.append((event.payload, why))
            return
        if self.concurrency is not None and self.in_flight >= self.concurrency:
            self.stats.throttles += 1
            event.throttles += 1
            backoff = min(THROTTLE_MAX_RETRY, THROTTLE_FIRST_RETRY * 2 ** (event.throttles - 1))
            self.loop.after(backoff * (0.5 + 0.5 * self._rng.random()), partial(self._try, event))
            return
        if event.failures == 0:
            self.stats.longest_wait = max(self.stats.longest_wait, now - event.accepted)
        self.in_flight += 1
        self.stats.invocations += 1
        self.stats.peak = max(self.stats.peak, self.in_flight)
        self.start(event.payload, lambda result, error: self._done(event, result, error))

    def _done(self, event: _Event[P], result: tuple[bool, float] | None, error: BaseException | None) -> None:
        if error is not None:  # the policies answer failures as outcomes: an exception is a bug, shown at once
            raise error
        assert result is not None
        succeeded, own_work = result
        self.loop.after(own_work, lambda: self._release(event, succeeded))

    def _release(self, event: _Event[P], succeeded: bool) -> None:
        self.in_flight -= 1
        self.stats.last_end = max(self.stats.last_end, self.loop.now)
        if succeeded:
            return
        self.stats.failures += 1
        if event.failures >= len(FAILURE_RETRY_DELAYS):
            self.stats.parked.append((event.payload, f"failed {event.failures + 1} times"))
            return
        delay = FAILURE_RETRY_DELAYS[event.failures]
        event.failures += 1
        self.loop.after(delay, lambda: self._try(event))
