"""What the dispatch unit tests share: the fake Polytomic in process with the real client, actions, ids and times.

`Polytomic` is the one fake Polytomic (`local.polytomic`, the local stack's and the benchmarks')
answered without a socket, on the test's hand-moved `Clock`, reached by the REAL `PolytomicClient`:
a 409 comes from a run in progress, a replayed 500 from the fake's Idempotency-Key store, a 429
or a dropped connection from its fault injection, and the client's own retries, pauses and
answer reading run as in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from local.memory import MemoryWindows
from local.polytomic import DEFAULT_API_KEY, IN_PROCESS_URL, FakePolytomic
from polytrigger.core.actions import Action, ActionKind, SyncTarget, SyncType
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.ports import Window
from polytrigger.polytomic.client import PolytomicClient, RetryPolicy
from polytrigger.polytomic.contract import CredentialsError, Execution
from polytrigger.polytomic.credentials import Credentials
from polytrigger.settings import API_VERSIONS

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
OTHER = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
COVERING = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
TRIGGER = Trigger.s3(bucket="acme-landing", key="orders/a.csv", event="created", sequencer="0055AED6DCD9", time=WHEN)
DEADLINE = WHEN.timestamp() + 60  # the invocation's: a minute after the file landed
ATTEMPTS = RetryPolicy().attempts  # requests the client makes per call before it gives up on a transient answer
RUNNING = "Polytomic answered 409: a sync execution is already running"  # the fake's answer to a start meanwhile

Operation = Literal["start", "set_active", "executions"]


@dataclass(frozen=True, slots=True)
class Call:
    """One call the Polytomic port received, with what it was given (the deadline never reaches the wire)."""

    operation: Operation
    sync_type: str
    sync_id: str
    deadline: float | None
    key: str | None = None  # the Idempotency-Key (start, set_active)
    body: dict[str, Any] | None = None  # start only
    active: bool | None = None  # set_active only


class Clock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


UNREADABLE_SECRET = "cannot read the Polytomic secret 'p' from Secrets Manager: AccessDeniedException"


class Secret:
    """The client's credentials provider: the fake's API key; from its `failing_from`-th read on (1 is
    the first), an error: by default a `CredentialsError`, as when Secrets Manager cannot be read."""

    def __init__(self) -> None:
        self.reads = 0
        self.failing_from: int | None = None
        self.error: Exception = CredentialsError(UNREADABLE_SECRET)

    def fail_from(self, read: int, error: Exception | None = None) -> None:
        self.failing_from = read
        self.error = error or self.error

    def __call__(self, refresh: bool = False) -> Credentials:
        self.reads += 1
        if self.failing_from is not None and self.reads >= self.failing_from:
            raise self.error
        return Credentials(scheme="api_key", authorization=f"Bearer {DEFAULT_API_KEY}")


class RecordingClient(PolytomicClient):
    """The real client; it notes each port call as it was given, then makes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[Call] = []

    def start(
        self, sync_type: str, sync_id: str, body: dict[str, Any], *, idempotency_key: str, deadline: float | None = None
    ) -> Execution:
        self.calls.append(Call("start", sync_type, sync_id, deadline, key=idempotency_key, body=body))
        return super().start(sync_type, sync_id, body, idempotency_key=idempotency_key, deadline=deadline)

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
        return super().set_active(sync_type, sync_id, active, idempotency_key=idempotency_key, deadline=deadline)

    def executions(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> list[dict[str, Any]]:
        self.calls.append(Call("executions", sync_type, sync_id, deadline))
        return super().executions(sync_type, sync_id, deadline=deadline)


class Polytomic:
    """The fake Polytomic in process on `clock`, with SYNC and OTHER as model syncs, and the real client.

    `client` is what the policies call; `fake` is Polytomic's side (its runs, stored answers,
    faults). Nothing here scripts an answer: a test arranges Polytomic's state, or injects a fault.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock(WHEN.timestamp() + 10)
        self.fake = FakePolytomic(clock=self.clock, sleep=self.clock.sleep)
        self.secret = Secret()
        self.pauses: list[float] = []  # the client's pauses between attempts
        self.client = RecordingClient(
            IN_PROCESS_URL,
            API_VERSIONS[0],
            self.secret,
            http=self.fake.in_process(),
            sleep=self._pause,
            clock=self.clock,
        )
        for sync_id in (SYNC, OTHER):
            self.fake.add_sync(sync_id, run_seconds=90)

    def knows(self, action: Action) -> Action:
        """Polytomic's sync (SYNC, OTHER) is of the action's type (a bulk sync replaces a model one); a sync
        it does not know stays unknown."""
        sync = action.sync
        try:
            known = self.fake.sync(sync.id)
        except KeyError:
            return action
        if known.kind != sync.type:
            self.fake.add_sync(sync.id, kind=sync.type, run_seconds=90)
        return action

    # -- Polytomic's side ----------------------------------------------------------------------

    def ran(self, execution_id: str, created: float, sync_id: str = SYNC) -> None:
        """A run of the sync created at `created` (epoch seconds) by someone else, over by now."""
        self.fake.add_run(sync_id, created, execution_id=execution_id)
        self.fake.set_execution_status(execution_id, "completed")  # even one dated after the test's clock

    def busy(self, since: float | None = None, sync_id: str = SYNC) -> str:
        """A run of the sync in progress (begun at `since`, an hour ago by default): a start meanwhile gets 409."""
        begun = self.clock.now - 3600 if since is None else since
        return self.fake.add_run(sync_id, begun, run_seconds=1e9)

    def idle(self, sync_id: str = SYNC) -> None:
        """The run in progress ends: a start is accepted again."""
        self.fake.finish_running(sync_id)

    @property
    def started_ids(self) -> list[str]:
        """Ids of the executions that starts through the API created, oldest first."""
        return [e.id for e in self.fake.executions() if e.idempotency_key is not None]

    @property
    def started_id(self) -> str:
        """The id of the one execution a start created (the test expects exactly one)."""
        [execution_id] = self.started_ids
        return execution_id

    # -- the port calls ------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return self.client.calls

    @property
    def operations(self) -> list[Operation]:
        return [call.operation for call in self.calls]

    @property
    def start_keys(self) -> list[str | None]:
        return [call.key for call in self.calls if call.operation == "start"]

    @property
    def started(self) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        """Every start: sync id, body and Idempotency-Key."""
        return [(call.sync_id, call.body, call.key) for call in self.calls if call.operation == "start"]

    def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.clock.sleep(seconds)


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


class LateArrival(MemoryWindows):
    """A file lands (is absorbed) between the flush reading the window and closing it."""

    def __init__(self, clock: Clock, at: float) -> None:
        super().__init__()
        self.clock, self.at = clock, at

    def close(self, window_id: str, opened_at: float) -> Window | None:
        self.clock.now = self.at
        self.absorb(window_id, self.at, debounce=0, overdue_before=float("-inf"))
        return super().close(window_id, opened_at)
