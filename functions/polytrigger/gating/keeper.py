"""What a gate does with an object that lands, and with the time that passes.

- **An object lands** (`admit`): it is counted in its partition; when that completes the partition, the
  invocation that claims the completion gets the route's actions for it, performed in the same
  invocation as the object's other actions (no polling between the completing object and the start).
- **Time passes** (`check_due`, on each poll): a quiet period that has run out completes its partition
  (its start queued); a start owed past `OWED_GRACE` (its maker died or failed) is queued; a partition
  still incomplete `timeout` after its first object is reported once, naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.deferrals import SKEW_SECONDS
from polytrigger.dispatch.messages import owed_start
from polytrigger.dispatch.ports import Queue
from polytrigger.gating.manifests import ManifestError
from polytrigger.gating.state import GateState, partition_text, seconds
from polytrigger.gating.store import OWED_GRACE, DynamoGates, partition_of
from polytrigger.observability import count, logger, record_problem
from polytrigger.routing.model import Arrival, Route, Routes


@dataclass(frozen=True, slots=True)
class Fired:
    """A partition's version completed by this invocation, and the actions its route makes of it."""

    route: Route
    state: GateState
    actions: tuple[Action, ...]


def fired_actions(route: Route, state: GateState) -> tuple[Action, ...]:
    trigger = state.trigger(route.bucket)
    return tuple(route.actions_for(trigger))


def admit(gates: DynamoGates, arrivals: Iterable[Arrival]) -> list[Fired]:
    """Count each arrival; the partitions this invocation completed, to start now.

    A manifest that cannot be read is one ERROR line (the gate waits, and its timeout report names it);
    a table that cannot be written raises `GatesUnavailable`, so the event is delivered again."""
    fired: list[Fired] = []
    for arrival in arrivals:
        route, gate = arrival.route, arrival.gate
        try:
            state = gates.arrive(arrival)
        except ManifestError as error:
            record_problem(
                f"gate {route.name} {partition_text(arrival.partition)}: manifest"
                f" s3://{arrival.trigger.bucket}/{arrival.trigger.key} {error}",
                "manifest_unreadable",
            )
            continue
        now = gates.clock()
        if state.ready(gate, now):
            won = gates.fire(state)
            if won is not None:
                fired.append(Fired(route, won, fired_actions(route, won)))
                _complete(route, won, arrival.trigger.describe())
                continue
        if not state.complete:
            logger.info(
                f"gate {route.name} {partition_text(state.partition)} waits:"
                f" {', '.join(state.missing(gate, datetime.fromtimestamp(now, UTC))) or 'its quiet period'}",
                extra={"route": route.name, "object": arrival.trigger.describe()},
            )
    return fired


def settle(gates: DynamoGates, fired: Sequence[Fired], outcomes: Mapping[Action, Outcome]) -> None:
    """A fired partition whose every action came to an end no retry changes owes nothing any more; one
    with a failure a retry can fix (or not reached) stays owed, and the poller queues it after `OWED_GRACE`."""
    for one in fired:
        done = [outcomes.get(action) for action in one.actions]
        if all(outcome is not None and not outcome.retryable for outcome in done):
            gates.settle(one.state)


def _complete(route: Route, state: GateState, by: str) -> None:
    logger.info(
        f"gate {route.name} {partition_text(state.partition)} complete (version {state.fired}): starting its syncs",
        extra={"route": route.name, "completed_by": by, "version": state.fired},
    )
    count("gate_fired")


@dataclass(frozen=True, slots=True)
class Checked:
    queued: int = 0
    timed_out: int = 0


def check_due(gates: DynamoGates, routes: Routes, queue: Queue, now: datetime, more: Callable[[], bool]) -> Checked:
    """Every gate due by `now`: completed by quiet, owed a start, or timed out; then when to look again."""
    queued = timed_out = 0
    for item in gates.due(now):
        if not more():
            break
        route = routes.named(item.get("route", {}).get("S", ""))
        partition = partition_of(item)
        state = GateState.from_item(item, route.name if route else "", partition)
        if route is None or route.gate is None:  # the route is gone or no longer gated: nothing to wait for
            gates.next_check(state, None)
            continue
        moment = now.timestamp()
        if state.owed and moment >= seconds(state.completed_at) + OWED_GRACE:
            queued += _queue(route, state, queue)
            gates.settle(state)
            state = GateState.from_item({**item, "owed": {"N": "0"}}, route.name, partition)
        elif state.ready(route.gate, moment):
            won = gates.fire(state)
            if won is not None:
                _complete(route, won, "its quiet period")
                queued += _queue(route, won, queue)
                gates.settle(won)
                continue
        if (
            not state.complete
            and moment >= seconds(state.first_at) + route.gate.timeout
            and state.reported < state.version
        ):
            # What is missing is read before the report is claimed: a read that fails fails the poll, which
            # is retried with the report still to make (claimed first, it would never be made).
            missing = state.missing(route.gate) + gates.missing(state, route.gate, route.bucket)
        else:
            missing = None
        if missing is not None and gates.reported(state):
            logger.error(
                f"gate timed out: route {route.name}, partition {partition_text(partition)} incomplete"
                f" {round((moment - seconds(state.first_at)) / 3600, 1)} h after its first object;"
                f" waiting for: {'; '.join(missing) or 'its quiet period'}",
                extra={"route": route.name, "partition": partition_text(partition), "version": state.version},
            )
            count("gate_timed_out")
            timed_out += 1
        gates.next_check(state, _next_look(route, state, moment))
    return Checked(queued, timed_out)


def _queue(route: Route, state: GateState, queue: Queue) -> int:
    """The fired version's starts, as dispatch messages under each action's own dedup key: a start the
    completing invocation made before it died is found made (its dedup record, and Polytomic's
    Idempotency-Key), one it never made is made now; either way once."""
    completed = seconds(state.completed_at)
    actions = fired_actions(route, state)
    for action in actions:
        queue.send(owed_start(action, since=completed + SKEW_SECONDS, first_at=completed), 0)
    return len(actions)


def _next_look(route: Route, state: GateState, now: float) -> float | None:
    gate = route.gate
    assert gate is not None
    looks: list[float] = []
    if state.owed:
        looks.append(seconds(state.completed_at) + OWED_GRACE)
    if not state.complete:
        if gate.quiet and state.last_at:
            looks.append(seconds(state.last_at) + gate.quiet)
        if state.reported < state.version:
            looks.append(seconds(state.first_at) + gate.timeout)
    later = [look for look in looks if look > now]
    return min(later) if later else (now + OWED_GRACE if state.owed else None)
