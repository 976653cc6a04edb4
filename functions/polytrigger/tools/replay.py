"""`polytrigger replay`'s live run: the plan's starts, one by one, under a starts-per-minute ceiling.

Each start goes through the path the functions take (`DispatchPolicy.perform`: dedup, the Polytomic
call with the action's Idempotency-Key, a deferral behind a running run, a hold while the sync is
paused; then the run ledger), so a start that meets a running run is `deferred`, as the functions
would answer it, not a failure. Before a start, each of its objects that no event brought gets a
`replay` landing (`DynamoLandings.landed`), so a late event or a reconciliation of it does not act
again; once the start is done, the landings are marked handled.

Interrupting (Ctrl-C) stops after the current start; running the same replay again makes no start
twice: the started groups' objects are covered by their runs now, and a start whose run was not yet
recorded has the same trigger (the group's newest object), so its dedup record answers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.landings import LandingsUnavailable
from polytrigger.tools.replay_plan import Plan, Start

DEFAULT_RATE = 30  # starts per minute
DONE = ("started", "covered", "deferred", "held", "duplicate", "coalesced")  # the start is made, or on its way


class Starter(Protocol):
    """Makes one planned start (its activation first, when the route asks for one): its outcome."""

    def start(self, start: Start) -> Outcome: ...


class Claims(Protocol):
    """The objects' landings: kept before a start (`landed`), marked handled after it."""

    def landed(self, trigger: Trigger, received: float) -> bool: ...

    def handled(self, trigger: Trigger) -> None: ...


@dataclass(slots=True)
class RateLimit:
    """At most `per_minute` starts in any minute: a start is made 60/per_minute seconds after the previous
    one was done (not begun), so however long a start takes, Polytomic never sees two closer together."""

    per_minute: int
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float | None = None

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError(f"per_minute must be at least 1 (got {self.per_minute})")

    def wait(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Return when the next start may be made, or as soon as `stop()` says so (a second at most)."""
        while self._next is not None and (left := self._next - self.now()) > 0 and not stop():
            self.sleep(min(left, 1.0))

    def made(self) -> None:
        """A start was just made (or tried): the next one waits a whole interval from now."""
        self._next = self.now() + 60.0 / self.per_minute


@dataclass(slots=True)
class Interrupt:
    """Set by Ctrl-C (the CLI's SIGINT handler): the run stops after the current start; a second Ctrl-C
    stops it at once (what was done is kept: a rerun finds it)."""

    requested: bool = False
    said: Callable[[str], None] = lambda text: None

    def request(self, *_: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.said("stopping after the current start (Ctrl-C again to stop now)")


@dataclass(slots=True)
class Result:
    plan: Plan
    outcomes: list[tuple[Start, Outcome]] = field(default_factory=list)
    interrupted: bool = False
    stopped_by: str = ""  # the table could not be written: the run stopped there (one line why)

    @property
    def failed(self) -> list[tuple[Start, Outcome]]:
        return [(start, outcome) for start, outcome in self.outcomes if outcome.status not in DONE]

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for _, outcome in self.outcomes:
            found[outcome.status] = found.get(outcome.status, 0) + 1
        return dict(sorted(found.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "outcomes": [
                {
                    **start.to_dict(),
                    "status": outcome.status,
                    "execution_id": outcome.execution_id,
                    "reason": outcome.reason,
                }
                for start, outcome in self.outcomes
            ],
            "interrupted": self.interrupted,
            "stopped_by": self.stopped_by,
            "not_made": len(self.plan.starts) - len(self.outcomes),
        }


class Progress:
    """A one-line bar on stderr while it is a terminal; nothing otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.shown = total > 0 and self.stream.isatty()

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.shown:
            return
        width = 30
        filled = width * self.done // self.total
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def carry_out(
    plan: Plan,
    starter: Starter,
    claims: Claims,
    limit: RateLimit,
    *,
    clock: Callable[[], float] = time.time,
    interrupt: Interrupt | None = None,
    progress: Progress | None = None,
) -> Result:
    """Make the plan's starts, in its order, each once; stop early when interrupted."""
    result = Result(plan)
    interrupt = interrupt or Interrupt()
    try:
        for start in plan.starts:
            limit.wait(lambda: interrupt.requested)
            if interrupt.requested:
                result.interrupted = True
                break
            received = clock()
            triggers = [listed.trigger("replay") for listed in start.objects]
            for trigger in triggers:
                claims.landed(trigger, received)
            try:
                outcome = starter.start(start)
            finally:
                limit.made()
            result.outcomes.append((start, outcome))
            if outcome.status in DONE:
                for trigger in triggers:
                    claims.handled(trigger)
            if progress is not None:
                progress.advance(f"{start.route} {start.sync.type} sync {start.sync.id[:8]}: {outcome.status}")
    except KeyboardInterrupt:  # no handler was installed (or a second Ctrl-C): what is done is kept
        result.interrupted = True
    except LandingsUnavailable as error:  # no start is made for objects whose landing was not kept
        result.stopped_by = str(error)
    finally:
        if progress is not None:
            progress.close()
    return result
