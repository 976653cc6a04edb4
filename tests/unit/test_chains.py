"""Chained routes: a run's ending starts other syncs, once per ending, and no chain comes back to its start."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.messages import decode, deferred_start, encode
from polytrigger.routing import RoutesError, parse_routes

A = "248df4b7-aa70-47b8-a036-33ac447e668d"
B = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
C = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def chain(name: str, upstream: str, *syncs: str, events: Any = None, action: str = "start") -> dict[str, Any]:
    trigger: dict[str, Any] = {"sync": upstream} if events is None else {"sync": upstream, "events": events}
    route: dict[str, Any] = {"name": name, "polytomic": trigger, "syncs": [{"id": s, "type": "bulk"} for s in syncs]}
    if action != "start":
        route["action"] = action
    return route


def ending(sync: str, status: str = "completed", execution: str = "run-1") -> Trigger:
    return Trigger.polytomic(sync_id=sync, execution=execution, status=status, time=WHEN)


def test_a_chained_route_starts_its_syncs_on_the_endings_it_follows() -> None:
    routes = parse_routes({"routes": [chain("enrich", A, B, events=["completed", "completed_with_errors"])]})

    assert [(a.route, a.sync.id, a.kind) for a in routes.actions_for([ending(A)])] == [("enrich", B, "start")]
    assert routes.actions_for([ending(A, "completed_with_errors")])
    assert routes.actions_for([ending(A, "failed")]) == []
    assert routes.actions_for([ending(B)]) == []


def test_one_ending_is_one_identity_however_often_it_arrives() -> None:
    routes = parse_routes({"routes": [chain("enrich", A, B)]})
    (first,) = routes.actions_for([ending(A)])
    (again,) = routes.actions_for(
        [Trigger.polytomic(sync_id=A, execution="run-1", status="completed", time=datetime.now(UTC))]
    )
    (other,) = routes.actions_for([ending(A, execution="run-2")])
    assert first.dedup_key == again.dedup_key
    assert first.dedup_key != other.dedup_key


def test_a_chained_start_travels_the_dispatch_queue_and_the_dispatcher_accepts_it() -> None:
    routes = parse_routes({"routes": [chain("enrich", A, B)]})
    (action,) = routes.actions_for([ending(A)])
    message = deferred_start(action, since=WHEN.timestamp(), attempt=1, first_at=WHEN.timestamp())

    back = decode(encode(message))

    assert back == message
    assert back.action.trigger.describe() == f"sync {A} run run-1 completed"
    assert routes.refusal(back.action) is None


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            [chain("a-to-b", A, B), chain("b-to-a", B, A)],
            "routes 'a-to-b' -> 'b-to-a' -> 'a-to-b' chain syncs in a cycle",
        ),
        (
            [chain("a-to-b", A, B), chain("b-to-c", B, C), chain("c-to-a", C, A)],
            "'a-to-b' -> 'b-to-c' -> 'c-to-a' -> 'a-to-b'",
        ),
        ([chain("itself", A, A)], "routes 'itself' -> 'itself' chain syncs in a cycle"),
    ],
)
def test_a_cycle_is_refused_with_one_line_naming_its_routes(routes: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": routes})
    (problem,) = raised.value.problems
    assert expected in problem


def test_a_pause_on_an_ending_is_no_cycle_and_a_chain_without_one_is_accepted() -> None:
    parse_routes({"routes": [chain("a-to-b", A, B), chain("pause-a", B, A, action="deactivate")]})
    parse_routes({"routes": [chain("a-to-b", A, B), chain("b-to-c", B, C)]})


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ({"sync": "nope"}, "polytomic.sync: must be a sync UUID"),
        ({"sync": A, "events": ["done"]}, "polytomic.events: must be a list of completed"),
        ({"sync": A, "events": []}, "polytomic.events: must be a list of"),
        ({"sync": A, "on": "completed"}, "polytomic: unknown field(s): on"),
        ("A", "polytomic: must be a mapping with sync"),
    ],
)
def test_a_bad_chain_names_its_field(trigger: Any, expected: str) -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [{"name": "r", "polytomic": trigger, "syncs": [{"id": B}]}]})
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
