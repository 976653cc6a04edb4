"""The S3 intake at 100,000 objects a minute across 50 routes: direct EventBridge -> Lambda, or an SQS
buffer read in batches. A full-scale simulation on the virtual clock (`benchmarks.sim.Loop`).

Both intakes feed the same S3 function, whose work per object is the code path as it reads today
(`flows.on_triggers`, `dispatch.policy`, `dispatch.deferrals`) on a debounced route: the object's
landing (1 write), the action's dedup record (in progress, completed: 2), the debounce window
(a conditional open that fails, and the absorb; the opener: the open and its confirm: 2), the
opener's flush message (1 SQS send). The dispatcher's flush of a window costs one Polytomic start and
7 DynamoDB writes (the window's close, the start's dedup record 2, the run ledger 2 at the start and
2 when the run settles). Every such request takes AWS_SECONDS; each record costs RECORD_CPU_SECONDS
of the handler's own work and each invocation INVOKE_SECONDS; the records of a batch run one after
another (the handler reads them in order).

- direct: EventBridge invokes the function asynchronously, one object an invocation, with reserved
  concurrency (template: S3TriggerConcurrency 10). An invocation that finds every slot taken is
  throttled and retried from Lambda's queue (1 s doubling to 5 min, jittered) until the event is
  older than MaximumEventAgeInSeconds (1 hour; the EventBridge rule's retry policy, 8 attempts in
  an hour, only covers the rule's delivery to Lambda, which an asynchronous invocation accepts at
  once), then it goes to the dead-letter queue: `benchmarks.platform.AsyncFunction`, as in storm.py.
- sqs: EventBridge sends each object's event to a queue; an event source mapping reads it in batches
  of `batch_size` (or what arrived within `batching_window`) with at most `concurrency` invocations
  (MaximumConcurrency). Lambda starts its pollers at 5 concurrent invocations and adds up to 300 a
  minute (AWS's documented scaling for SQS). A message waits in the queue, not in a retry loop:
  nothing ages out short of the queue's retention (4 days by default).

Polytomic: each of the 50 routes starts one sync, debounce 60 s, at most 300 s (storm.py's debounced
route); a run takes RUN_SECONDS. An object is covered when a run of its route's sync created at or
after its landing ends (the coverage rule). What is not modelled: cold starts, faults, Polytomic's
rate limit (storm.py models those for the real policies at 2 routes); the dispatcher's own
concurrency (50 windows flush a few minutes apart, far below its bound).

Cost (us-east-1, arm64): Lambda $0.20 per million requests and $0.0000133334 per GB-second at the
template's MemorySize, billed per millisecond; DynamoDB on demand $0.625 per million writes (every
request above is a write, a conditional one that fails included); SQS $0.40 per million requests
(EventBridge's send 1 per object, the mapping's receive and delete 1 each per 10 messages, the
flush messages' send, receive and delete). EventBridge's delivery of AWS service events is free.
"""

from __future__ import annotations

import bisect
import math
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from benchmarks.cost import GB_SECOND, PER_REQUEST, WRITE_UNIT, memory_size
from benchmarks.platform import MAX_EVENT_AGE, AsyncFunction, Done
from benchmarks.report import Row, arguments, reference, show
from benchmarks.sim import Loop

OBJECTS = 100_000
SECONDS = 60.0
ROUTES = 50
DEBOUNCE = 60.0
MAX_WAIT = 300.0
RUN_SECONDS = 90.0
INVOKE_SECONDS = 0.005  # an invocation's own work (handler, logs, metrics), warm
RECORD_CPU_SECONDS = 0.004  # the handler's work per record (parse, match, the outcome's line)
AWS_SECONDS = 0.01  # one DynamoDB or SQS request, answer included
STRESS_AWS_SECONDS = 0.08  # the same burst when they are slow (a hot table retrying, a far region)
OBJECT_WRITES = 5  # landing 1, dedup 2, window 2 (failed open + absorb, or open + confirm)
FLUSH_WRITES = 7  # window close 1, start's dedup 2, run ledger 4
SQS_REQUEST = 0.40 / 1_000_000
RETENTION = 4 * 86400.0  # SQS MessageRetentionPeriod's default
SQS_FIRST_CONCURRENCY = 5  # an SQS mapping's pollers begin here ...
SQS_SCALE_PER_MINUTE = 300  # ... and add up to this many concurrent invocations a minute


@dataclass(frozen=True, slots=True)
class Intake:
    label: str
    kind: Literal["direct", "sqs"]
    concurrency: int
    batch_size: int = 1
    batching_window: float = 0.0


DIRECT = Intake("direct, reserved 10", "direct", 10)
SQS = Intake("SQS, batch 100 / 1 s, max 10", "sqs", 10, 100, 1.0)
INTAKES = (DIRECT, SQS)


@dataclass(slots=True)
class _Route:
    opened: float | None = None  # the open window's opening time
    last: float = 0.0  # its last absorbed object
    runs: list[float] = field(default_factory=list)  # the creation times of the runs started


@dataclass(slots=True)
class Result:
    intake: Intake
    objects: int
    handled: int = 0
    outlived: int = 0  # events parked for age: older than the retry window
    peak: int = 0
    throttles: int = 0
    invocations: int = 0
    billed_ms: int = 0
    oldest: float = 0.0  # the longest from landing to being handled
    last_handled: float = 0.0
    covered: int = 0
    last_covered: float = 0.0
    starts: int = 0
    dynamodb: int = 0
    sqs: int = 0

    @property
    def cost(self) -> float:
        gb = memory_size() / 1024
        return (
            self.invocations * PER_REQUEST
            + self.billed_ms / 1000 * gb * GB_SECOND
            + self.dynamodb * WRITE_UNIT
            + self.sqs * SQS_REQUEST
        )

    @property
    def held(self) -> bool:
        """Every object covered, none outlived the retry window, concurrency within its bound."""
        return self.covered == self.objects and self.outlived == 0 and self.peak <= self.intake.concurrency


class _World:
    """The routes' debounce windows and runs, and the S3 function's work per record, for one intake."""

    def __init__(self, loop: Loop, intake: Intake, objects: int, routes: int, aws_seconds: float) -> None:
        self.loop = loop
        self.aws_seconds = aws_seconds
        self.routes = [_Route() for _ in range(routes)]
        self.result = Result(intake, objects)

    def record(self, landed: float, route: int, now: float) -> float:
        """Handle one object's record at `now`; the seconds it took."""
        result, state = self.result, self.routes[route]
        result.handled += 1
        result.oldest = max(result.oldest, now - landed)
        result.last_handled = max(result.last_handled, now)
        result.dynamodb += OBJECT_WRITES
        requests = OBJECT_WRITES
        if state.opened is None:
            state.opened = state.last = now
            result.sqs += 1  # the flush message, delayed by the debounce
            requests += 1
            self.loop.at(now + DEBOUNCE, lambda: self._due(route))
        else:
            state.last = now
        return RECORD_CPU_SECONDS + requests * self.aws_seconds

    def _due(self, route: int) -> None:
        """The flush message arrives: start the sync, or come back when the window is due."""
        state, now = self.routes[route], self.loop.now
        assert state.opened is not None
        due = min(state.last + DEBOUNCE, state.opened + MAX_WAIT)
        self.result.sqs += 2  # its receive and delete
        if due > now:
            self.result.sqs += 1  # sent again for the rest of the window
            self.loop.at(due, lambda: self._due(route))
            return
        state.opened = None
        self.result.starts += 1
        self.result.dynamodb += FLUSH_WRITES
        state.runs.append(now)


def landings(objects: int, seconds: float, routes: int) -> list[tuple[float, int]]:
    """`objects` evenly over `seconds`, round-robin over the routes."""
    step = seconds / objects
    return [(index * step, index % routes) for index in range(objects)]


def simulate(
    intake: Intake,
    *,
    objects: int = OBJECTS,
    seconds: float = SECONDS,
    routes: int = ROUTES,
    aws_seconds: float = AWS_SECONDS,
) -> Result:
    loop = Loop(0.0)
    world = _World(loop, intake, objects, routes, aws_seconds)
    arrivals = landings(objects, seconds, routes)
    if intake.kind == "direct":
        _direct(loop, world, arrivals)
    else:
        _sqs(loop, world, arrivals)
    loop.run()
    _cover(world, arrivals)
    return world.result


def _direct(loop: Loop, world: _World, arrivals: list[tuple[float, int]]) -> None:
    result = world.result

    def start(payload: tuple[float, int], done: Done) -> None:
        took = INVOKE_SECONDS + world.record(*payload, loop.now)
        result.billed_ms += math.ceil(took * 1000)
        done((True, took), None)

    function: AsyncFunction[tuple[float, int]] = AsyncFunction(
        loop, start, concurrency=world.result.intake.concurrency, max_event_age=MAX_EVENT_AGE, seed=22
    )
    for landed, route in arrivals:
        loop.at(landed, partial(function.invoke, (landed, route)))

    def finish() -> None:
        stats = function.stats
        result.peak, result.throttles, result.invocations = stats.peak, stats.throttles, stats.invocations
        result.outlived = len(stats.parked)

    loop.at(RETENTION, finish)


def _sqs(loop: Loop, world: _World, arrivals: list[tuple[float, int]]) -> None:
    result, intake = world.result, world.result.intake
    queue: deque[tuple[float, int]] = deque()
    running = 0
    polling = False

    def bound() -> int:
        scaled = SQS_FIRST_CONCURRENCY + int(loop.now / 60 * SQS_SCALE_PER_MINUTE)
        return min(intake.concurrency, scaled)

    def arrive(message: tuple[float, int]) -> None:
        queue.append(message)
        result.sqs += 1  # EventBridge's SendMessage
        poll()

    def poll() -> None:
        nonlocal running, polling
        while queue and running < bound():
            waited = loop.now - queue[0][0]
            if len(queue) < intake.batch_size and waited < intake.batching_window:
                if not polling:
                    polling = True
                    loop.at(queue[0][0] + intake.batching_window, window_ends)
                return
            batch = [queue.popleft() for _ in range(min(intake.batch_size, len(queue)))]
            running += 1
            result.invocations += 1
            result.peak = max(result.peak, running)
            result.sqs += 2 * math.ceil(len(batch) / 10)  # ReceiveMessage and DeleteMessageBatch, 10 at a time
            took = INVOKE_SECONDS
            for landed, route in batch:
                took += world.record(landed, route, loop.now + took)
            result.billed_ms += math.ceil(took * 1000)
            loop.after(took, ended)
        if queue and running >= bound() and bound() < intake.concurrency:
            loop.after(1.0, poll)  # the pollers scale up

    def window_ends() -> None:
        nonlocal polling
        polling = False
        poll()

    def ended() -> None:
        nonlocal running
        running -= 1
        poll()

    for landed, route in arrivals:
        loop.at(landed, partial(arrive, (landed, route)))


def _cover(world: _World, arrivals: list[tuple[float, int]]) -> None:
    """The coverage rule: a run of the route's sync created at or after the landing covers the object."""
    result = world.result
    for landed, route in arrivals:
        runs = world.routes[route].runs
        index = bisect.bisect_left(runs, landed)
        if index < len(runs):
            result.covered += 1
            result.last_covered = max(result.last_covered, runs[index] + RUN_SECONDS)


# -- the report -------------------------------------------------------------------------------


def _minutes(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 60:.1f} min)"


def to_rows(results: Sequence[Result], stressed: Sequence[Result] = ()) -> list[Row]:
    """Per intake: the figures the issue asks for. The SQS intake carries the targets (it is the one
    that holds); the direct intake is shown beside it as its baseline. `stressed`: the same burst
    with every AWS request STRESS_AWS_SECONDS long, where only the buffer holds."""
    rows: list[Row] = []
    title = f"intake, {OBJECTS:,} objects in {SECONDS:g} s over {ROUTES} routes"
    for group, extra in ((results, ""), (stressed, f", AWS requests {STRESS_AWS_SECONDS * 1000:.0f} ms")):
        by_kind = {result.intake.kind: result for result in group}
        for result in group:
            other = by_kind.get("direct" if result.intake.kind == "sqs" else "sqs")
            gated = result.intake.kind == "sqs"

            def base(text: str, other: Result | None = other) -> str:
                return f"{text} ({other.intake.kind})" if other is not None else "-"

            label = f"{title}{extra}, {result.intake.label}"
            o = other or result
            rows += [
                _row(
                    f"{label}: events older than the retry window (parked)",
                    f"{result.outlived:,}",
                    base(f"{o.outlived:,}"),
                    "= 0",
                    passed=result.outlived == 0,
                    gated=gated,
                ),
                _row(
                    f"{label}: objects handled; covered",
                    f"{result.handled:,}; {result.covered:,}",
                    base(f"{o.handled:,}; {o.covered:,}"),
                    f"= {result.objects:,}",
                    passed=result.handled == result.covered == result.objects,
                    gated=gated,
                ),
                _row(
                    f"{label}: peak concurrency",
                    f"{result.peak}",
                    base(f"{o.peak}"),
                    f"<= {result.intake.concurrency}",
                    passed=result.peak <= result.intake.concurrency,
                    gated=gated,
                ),
                reference(
                    f"{label}: longest from landing to handled; last handled",
                    f"{result.oldest:,.0f} s; {result.last_handled:,.0f} s",
                    base(f"{o.oldest:,.0f} s; {o.last_handled:,.0f} s"),
                ),
                reference(
                    f"{label}: time until the last object is covered",
                    _minutes(result.last_covered),
                    base(_minutes(o.last_covered)),
                ),
            ]
            if extra:
                continue
            rows += [
                reference(
                    f"{label}: invocations (throttled tries)",
                    f"{result.invocations:,} ({result.throttles:,})",
                    base(f"{o.invocations:,} ({o.throttles:,})"),
                ),
                reference(
                    f"{label}: Polytomic calls; DynamoDB calls; SQS requests",
                    f"{result.starts:,}; {result.dynamodb:,}; {result.sqs:,}",
                    base(f"{o.starts:,}; {o.dynamodb:,}; {o.sqs:,}"),
                ),
                reference(
                    f"{label}: cost of the burst ({memory_size()} MB)",
                    f"${result.cost:.2f}",
                    base(f"${o.cost:.2f}"),
                ),
            ]
    return rows


def _row(name: str, value: str, baseline: str, target: str, *, passed: bool, gated: bool) -> Row:
    """A figure with a target for the intake that carries it; for the baseline intake, a reference that
    says when it would have missed it."""
    if gated:
        return Row(name, value, baseline, "-", target, passed)
    return reference(name, value if passed else f"{value} (misses {target})", baseline)


def rows(quick: bool = False) -> list[Row]:
    """Full scale even with --quick: the whole simulation takes seconds."""
    return to_rows(
        [simulate(intake) for intake in INTAKES],
        [simulate(intake, aws_seconds=STRESS_AWS_SECONDS) for intake in INTAKES],
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments("benchmarks.intake", __doc__, "the same: the simulation is full scale either way").parse_args(argv)
    return show(rows())


if __name__ == "__main__":
    sys.exit(main())
