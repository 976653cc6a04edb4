"""What the dispatch unit tests share: a scripted Polytomic client (a `PolytomicApi`), actions, ids and times."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from local.memory import MemoryWindows
from polytrigger.core.actions import Action, ActionKind, SyncTarget, SyncType
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.ports import Window
from polytrigger.polytomic.contract import Execution

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
OTHER = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
EXECUTION = "9b2e1c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
COVERING = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
TRIGGER = Trigger.s3(bucket="acme-landing", key="orders/a.csv", event="created", sequencer="0055AED6DCD9", time=WHEN)
DEADLINE = 12345.0

Operation = Literal["start", "set_active", "executions"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One call the client received, with what it was sent."""

    operation: Operation
    sync_type: str
    sync_id: str
    deadline: float | None
    key: str | None = None  # the Idempotency-Key (start, set_active)
    body: dict[str, Any] | None = None  # start only
    active: bool | None = None  # set_active only


class StubClient:
    """A `PolytomicApi` as it stands (no cast, no ignore where `Starts` takes it), with scripted answers.

    Per operation, in order: a value to return, or an exception to raise. Once an operation's script
    is used up it succeeds (a started execution, the requested state, the sync's `runs`: none until
    `ran` adds one). `executions` answers may hold anything, as Polytomic's JSON may.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.runs: list[dict[str, Any]] = []  # the sync's executions, newest first
        self._starts: deque[Execution | Exception] = deque()
        self._set_active: deque[bool | Exception] = deque()
        self._executions: deque[list[Any] | Exception] = deque()

    def will_start(self, *answers: Execution | Exception) -> StubClient:
        self._starts.extend(answers)
        return self

    def will_set_active(self, *answers: bool | Exception) -> StubClient:
        self._set_active.extend(answers)
        return self

    def will_list(self, *answers: list[Any] | Exception) -> StubClient:
        self._executions.extend(answers)
        return self

    @property
    def operations(self) -> list[Operation]:
        return [call.operation for call in self.calls]

    def ran(self, execution_id: str, created: float) -> None:
        """A run of the sync created at `created` (epoch seconds), newer than the runs before it."""
        self.runs.insert(0, {"id": execution_id, "status": "running", "created_at": iso(created)})

    @property
    def start_keys(self) -> list[str | None]:
        return [call.key for call in self.calls if call.operation == "start"]

    @property
    def started(self) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        """Every start: sync id, body and Idempotency-Key."""
        return [(call.sync_id, call.body, call.key) for call in self.calls if call.operation == "start"]

    def start(
        self, sync_type: str, sync_id: str, body: dict[str, Any], *, idempotency_key: str, deadline: float | None = None
    ) -> Execution:
        self.calls.append(Call("start", sync_type, sync_id, deadline, key=idempotency_key, body=body))
        return _answer(self._starts, Execution(id=EXECUTION, status="created"))

    def set_active(
        self,
        sync_type: str,
        sync_id: str,
        active: bool,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        self.calls.append(Call("set_active", sync_type, sync_id, deadline, key=idempotency_key, active=active))
        return _answer(self._set_active, active)

    def executions(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> list[dict[str, Any]]:
        self.calls.append(Call("executions", sync_type, sync_id, deadline))
        return _answer(self._executions, self.runs)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def _answer(script: deque[T | Exception], default: T) -> T:
    answer = script.popleft() if script else default
    if isinstance(answer, Exception):
        raise answer
    return answer


def act(
    kind: ActionKind = "start",
    sync_type: SyncType = "model",
    *,
    sync_id: str = SYNC,
    options: tuple[tuple[str, Any], ...] = (),
    activate_first: bool = False,
    route: str = "orders-landing",
    trigger: Trigger = TRIGGER,
    debounce: int = 0,
    max_wait: int = 0,
) -> Action:
    return Action(
        route=route,
        kind=kind,
        sync=SyncTarget(id=sync_id, type=sync_type, options=options, activate_first=activate_first),
        trigger=trigger,
        debounce=debounce,
        max_wait=max_wait,
    )


def landed(key: str, sequencer: str) -> Trigger:
    """Another file landing in the same bucket, at the same time."""
    return Trigger.s3(bucket=TRIGGER.bucket, key=key, event="created", sequencer=sequencer, time=WHEN)


class Clock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class LateArrival(MemoryWindows):
    """A file lands (is absorbed) between the flush reading the window and closing it."""

    def __init__(self, clock: Clock, at: float) -> None:
        super().__init__()
        self.clock, self.at = clock, at

    def close(self, window_id: str, opened_at: float) -> Window | None:
        self.clock.now = self.at
        self.absorb(window_id, self.at, debounce=0, overdue_before=float("-inf"))
        return super().close(window_id, opened_at)
