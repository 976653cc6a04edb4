"""Perform actions: dedup first, then the Polytomic call, then an outcome for each.

The error policy lives here: which answers are outcomes, which are failures a person must fix,
and which a retry can fix (those make the invocation fail so AWS retries it, and finally park
it in the dead-letter queue). Nothing here knows of Lambda.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from polytrigger.actions import Action, Outcome
from polytrigger.credentials import CredentialsError
from polytrigger.dedup import Dedup
from polytrigger.deferral import Deferrals, decode, flush_delay, window_message
from polytrigger.polytomic import (
    AlreadyRunning,
    KeyInFlight,
    PolytomicClient,
    PolytomicError,
    Rejected,
    ServerError,
    Transient,
    Unauthorized,
)
from polytrigger.triggers import parse_time

OutcomeSink = Callable[[Action, Outcome, str], None]  # the key is the Idempotency-Key the action used


class RetryLater(Exception):
    """A failure that a later attempt can fix: the dedup record is dropped and the invocation fails."""


@dataclass(slots=True)
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    retryable: list[Outcome] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"outcomes": [outcome.to_dict() for outcome in self.outcomes]}

    def extend(self, other: Report) -> None:
        self.outcomes.extend(other.outcomes)
        self.retryable.extend(other.retryable)


class ActionsFailed(RuntimeError):
    """Raised by a handler so AWS retries the event; only the failed actions run again."""

    def __init__(self, report: Report) -> None:
        reasons = "; ".join(f"{o.action} {o.sync_id} ({o.route}): {o.reason}" for o in report.retryable)
        super().__init__(f"{len(report.retryable)} action(s) failed and will be retried: {reasons}")
        self.report = report


class Dispatcher:
    def __init__(
        self,
        client: PolytomicClient,
        dedup: Dedup,
        on_outcome: OutcomeSink,
        deferrals: Deferrals | None = None,
        *,
        concurrency: int = 1,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.dedup = dedup
        self.on_outcome = on_outcome
        self.deferrals = deferrals  # None: no dispatch queue, so a 409 is final and nothing is debounced
        self.concurrency = max(1, concurrency)  # syncs handled at once by `run`; 1 = the calling thread only
        self.prepare = prepare  # called before a parallel fan-out, on the calling thread

    def run(self, actions: Sequence[Action], deadline: float | None = None) -> Report:
        """Perform every action; outcomes (and `on_outcome`) come in action order, whatever ran first.

        Actions on one sync (same type and id) run one after another, in action order, so a start
        with `activate_first` always follows its activate; different syncs run in parallel, at most
        `concurrency` at a time. With `concurrency` 1 (or one sync) everything runs on this thread.
        """
        groups: dict[tuple[str, str], list[int]] = {}
        for index, action in enumerate(actions):
            groups.setdefault((action.sync.type, action.sync.id), []).append(index)
        outcomes: list[Outcome | None] = [None] * len(actions)
        report = Report()

        def emit(index: int) -> None:
            action, outcome = actions[index], outcomes[index]
            if outcome is None:  # only after an unexpected error, re-raised below
                return
            report.outcomes.append(outcome)
            if outcome.retryable:
                report.retryable.append(outcome)
            self.on_outcome(action, outcome, action.dedup_key)

        if self.concurrency <= 1 or len(groups) <= 1:  # as each finishes: a timeout keeps what was logged
            error = self._run_group(actions, range(len(actions)), outcomes, deadline, emit)
        else:  # all finished: in action order, from this thread
            error = self._fan_out(actions, list(groups.values()), outcomes, deadline)
            for index in range(len(actions)):
                emit(index)
        if error is not None:
            raise error
        return report

    def _fan_out(
        self,
        actions: Sequence[Action],
        groups: list[list[int]],
        outcomes: list[Outcome | None],
        deadline: float | None,
    ) -> BaseException | None:
        """One task per sync on a bounded pool; waits for all (nothing is left running behind the answer)."""
        if self.prepare is not None:
            self.prepare()  # shared lazy state (dedup configuration, secret, clients) is made here, once
        workers = min(self.concurrency, len(groups))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="polytrigger-dispatch") as pool:
            futures = [pool.submit(self._run_group, actions, group, outcomes, deadline) for group in groups]
            errors = [future.result() for future in futures]  # every group finishes: nothing runs past the answer
        return next((error for error in errors if error is not None), None)

    def _run_group(
        self,
        actions: Sequence[Action],
        indices: Iterable[int],
        outcomes: list[Outcome | None],
        deadline: float | None,
        done: Callable[[int], None] | None = None,
    ) -> BaseException | None:
        """Actions one after another, each outcome stored at its index; an unexpected error stops the group."""
        not_activated: dict[tuple[str, str], Outcome] = {}
        try:
            for index in indices:
                action = actions[index]
                target = (action.sync.type, action.sync.id)
                blocked = not_activated.get(target) if action.kind == "start" and action.sync.activate_first else None
                if blocked is not None:
                    outcome = Outcome.of(
                        action,
                        "failed",
                        reason="not started: activating the sync first failed",
                        retryable=blocked.retryable,
                    )
                else:
                    outcome = self._once(action, deadline)
                if action.kind == "activate" and outcome.status == "failed":
                    not_activated[target] = outcome
                outcomes[index] = outcome
                if done is not None:
                    done(index)
        except Exception as error:  # reported after the outcomes that were reached, as the sequential loop did
            return error
        return None

    def run_message(self, message: dict[str, Any], deadline: float | None = None) -> tuple[Action, Outcome]:
        """A message from the dispatch queue: a deferred start, or a debounce window to flush."""
        action = decode(message["action"])
        if message["kind"] == "window":
            outcome = self._once(
                action, deadline, key=str(message["id"]), perform=lambda: self._flush(action, message, deadline)
            )
        else:
            outcome = self._once(
                action, deadline, key=str(message["id"]), perform=lambda: self._retry(action, message, deadline)
            )
        self.on_outcome(action, outcome, str(message["id"]))
        return action, outcome

    def _retry(self, action: Action, message: dict[str, Any], deadline: float | None) -> Outcome:
        """A deferred start: covered by a run since the trigger, or started now, or deferred again."""
        since = datetime.fromtimestamp(float(message["since"]), UTC)
        try:
            covering = self._execution_since(action, since, deadline) if action.sync.coverable else None
        except (Transient, ServerError, KeyInFlight, CredentialsError, Unauthorized) as lookup:
            raise RetryLater(f"looking for a run since the trigger failed: {_message(lookup)}") from None
        except (Rejected, AlreadyRunning) as lookup:
            return Outcome.of(
                action, "failed", reason=f"looking for a run since the trigger failed: {_message(lookup)}"
            )
        if covering and action.sync.coverable:
            return Outcome.of(action, "covered", execution_id=covering, reason="a run created since the trigger has it")
        attempt, first_at = int(message["attempt"]), float(message["first_at"])
        if "parked_because" in message:  # moved back from the dead-letter queue by a person: a fresh wait
            assert self.deferrals is not None
            first_at = self.deferrals.clock()  # (attempts keep counting: each message id is used once)
        return self._perform(
            action,
            deadline,
            key=str(message["id"]),
            running=lambda error: self._defer(action, since.timestamp(), error, attempt + 1, first_at),
        )

    def _flush(self, action: Action, message: dict[str, Any], deadline: float | None) -> Outcome:
        """A debounce window's message: wait for quiet (never past max_wait), then close it and start once."""
        assert self.deferrals is not None  # a window message exists only where deferrals do
        deferrals, now = self.deferrals, self.deferrals.clock()
        window = deferrals.windows.get(str(message["window"]))
        arrivals, since = 0, now
        if window is not None and window.opened_at == float(message["opened_at"]):
            delay = flush_delay(window, action, now)
            if delay:
                generation = int(message["generation"]) + 1
                self._enqueue(window_message(action, window.id, window.opened_at, generation), delay)
                return Outcome.of(action, "deferred", reason=f"files are still landing: start in {delay} s")
            closed = deferrals.windows.close(window.id, window.opened_at)
            if closed is not None:
                # a file may have joined after `now` was read: only a run created after it covers it
                arrivals, since = closed.count, max(now, closed.last_arrival)
        # Closed now, or by an earlier attempt of this message whose start failed: start either way.
        outcome = self._perform(
            action,
            deadline,
            key=str(message["id"]),
            running=lambda error: self._defer(action, since, error, 1, now),
        )
        if arrivals and outcome.status == "started":
            return Outcome.of(
                action, "started", execution_id=outcome.execution_id, reason=f"one start for {arrivals} trigger(s)"
            )
        return outcome

    def _defer(self, action: Action, since: float, error: Exception, attempt: int, first_at: float) -> Outcome:
        assert self.deferrals is not None
        try:
            return self.deferrals.defer(action, since=since, reason=_message(error), attempt=attempt, first_at=first_at)
        except Exception as queue_error:
            raise RetryLater(f"{_message(error)}; deferring it failed: {type(queue_error).__name__}") from None

    def _enqueue(self, message: dict[str, Any], delay: int) -> None:
        assert self.deferrals is not None
        try:
            self.deferrals.queue.send(message, delay)
        except Exception as queue_error:
            raise RetryLater(f"the dispatch queue cannot be used: {type(queue_error).__name__}") from None

    def _once(
        self,
        action: Action,
        deadline: float | None,
        *,
        key: str | None = None,
        perform: Callable[[], Outcome] | None = None,
    ) -> Outcome:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        try:
            return self.dedup.once_key(key or action.dedup_key, perform or (lambda: self._perform(action, deadline)))
        except RetryLater as error:
            return _retryable(action, str(error))
        except IdempotencyAlreadyInProgressError:
            return _retryable(action, "another delivery of this trigger is doing this action right now")
        except IdempotencyPersistenceLayerError as error:
            return _retryable(action, f"the dedup table cannot be used, so nothing was called: {_first_line(error)}")

    def _perform(
        self,
        action: Action,
        deadline: float | None,
        *,
        key: str | None = None,
        running: Callable[[AlreadyRunning], Outcome] | None = None,
    ) -> Outcome:
        sync, key = action.sync, key or action.dedup_key
        try:
            if action.kind == "start":
                if running is None and action.debounce and self.deferrals is not None:
                    return self._debounce(action)
                execution = self.client.start(sync.type, sync.id, sync.body(), idempotency_key=key, deadline=deadline)
                if not execution.id:
                    return Outcome.of(action, "started", reason="Polytomic accepted the start without an execution id")
                return Outcome.of(action, "started", execution_id=execution.id)
            active = action.kind == "activate"
            self.client.set_active(sync.type, sync.id, active, idempotency_key=key, deadline=deadline)
            return Outcome.of(action, "activated" if active else "deactivated")
        except AlreadyRunning as error:
            if running is not None:
                return running(error)
            if self.deferrals is not None and action.kind == "start":
                return self._defer(action, action.trigger.time.timestamp(), error, 1, 0.0)
            return Outcome.of(action, "already_running", reason=_message(error))
        except ServerError as error:
            if action.kind != "start":
                raise RetryLater(_message(error)) from None
            return self._after_server_error(action, error, deadline)
        except Unauthorized as error:  # the secret may be fixed by the time AWS retries; else it is parked
            raise RetryLater(_message(error)) from None
        except Rejected as error:
            return Outcome.of(action, "failed", reason=_message(error))
        except (Transient, KeyInFlight) as error:
            raise RetryLater(_message(error)) from None
        except CredentialsError as error:
            raise RetryLater(str(error)) from None

    def _debounce(self, action: Action) -> Outcome:
        assert self.deferrals is not None
        try:
            return self.deferrals.debounce(action)
        except Exception as error:
            raise RetryLater(f"debouncing failed: {type(error).__name__}: {str(error)[:200]}") from None

    def _after_server_error(self, action: Action, error: ServerError, deadline: float | None) -> Outcome:
        """Polytomic replays a 500 for the same key for 24 hours: look first, then retry under a fresh key.

        An execution created since the trigger covers it, whoever started it (and it is how a 500
        that did start a run shows up), so nothing starts twice. Otherwise a fresh attempt goes out
        as `<key>-r<n>`, n counted in DynamoDB, so every later retry (by AWS, or a re-drive) is new
        to Polytomic too and the sync is never left unstarted behind a replayed 500.
        """
        sync = action.sync
        what = _message(error)
        try:
            covering = self._covering_execution(action, deadline)
        except (Transient, ServerError, KeyInFlight, CredentialsError, Unauthorized) as lookup:
            raise RetryLater(f"{what}; then looking for a run since the trigger failed: {_message(lookup)}") from None
        except (Rejected, AlreadyRunning) as lookup:
            return Outcome.of(
                action, "failed", reason=f"{what}; then looking for a run since the trigger failed: {_message(lookup)}"
            )
        if covering:
            return Outcome.of(
                action,
                "started",
                execution_id=covering,
                reason="Polytomic answered 500, but this execution was created since the trigger",
            )
        try:
            key = f"{action.dedup_key}-r{self.dedup.next_attempt(action.dedup_key)}"
        except Exception as counter:
            raise RetryLater(f"{what}; then the retry counter could not be kept: {type(counter).__name__}") from None
        try:
            execution = self.client.start(sync.type, sync.id, sync.body(), idempotency_key=key, deadline=deadline)
        except AlreadyRunning as running:
            return Outcome.of(action, "already_running", reason=_message(running))
        except (ServerError, Transient, KeyInFlight, CredentialsError, Unauthorized) as again:
            raise RetryLater(f"{what}; a fresh attempt failed too: {_message(again)}") from None
        except Rejected as again:
            return Outcome.of(action, "failed", reason=f"{what}; a fresh attempt failed too: {_message(again)}")
        return Outcome.of(action, "started", execution_id=execution.id or None)

    def _covering_execution(self, action: Action, deadline: float | None) -> str | None:
        return self._execution_since(action, action.trigger.time, deadline)

    def _execution_since(self, action: Action, since: datetime, deadline: float | None) -> str | None:
        """The newest execution created at or after the trigger, if any: it has seen what the trigger saw.

        No clock-skew allowance: one would let a run that began just before the file landed pass
        for covering it. The cost is a possible second start when Polytomic's clock runs behind
        by more than the event's delivery delay, which is the safer way to be wrong.
        """
        found: list[Any] = self.client.executions(action.sync.type, action.sync.id, deadline=deadline)
        for execution in found:
            if not isinstance(execution, dict):
                continue
            try:
                created = parse_time(execution.get("created_at"))
            except ValueError:
                continue
            if created >= since and isinstance(execution.get("id"), str):
                return str(execution["id"])
        return None


def _retryable(action: Action, reason: str) -> Outcome:
    return Outcome.of(action, "failed", reason=f"{reason}; the event will be retried", retryable=True)


def _message(error: Exception) -> str:
    return error.reason if isinstance(error, PolytomicError) else str(error)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
