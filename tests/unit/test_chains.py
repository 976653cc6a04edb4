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


# -- joins: a route that waits for several upstream syncs ----------------------------------------

D = "0b7c2e4f-6a1d-4e3b-9f8a-2c5d7e9f1a3b"


def join_route(upstreams: list[str], *syncs: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "c-after-a-and-b",
        "polytomic": {"syncs": upstreams, **fields},
        "syncs": [{"id": s, "type": "bulk"} for s in syncs],
    }


def joined(*pairs: tuple[str, str], last: str = A, status: str = "completed") -> Trigger:
    execution = dict(pairs)[last]
    return Trigger.polytomic(sync_id=last, execution=execution, status=status, time=WHEN, after=pairs)


def test_a_join_reads_its_upstreams_its_window_and_defaults_to_a_day() -> None:
    routes = parse_routes({"routes": [join_route([A, B.upper()], C, events=["completed"], within="12h")]})
    (route,) = routes.routes
    assert (route.upstreams, route.within, route.upstream, route.followed) == ((A, B), 12 * 3600, "", (A, B))
    (default,) = parse_routes({"routes": [join_route([A, B], C)]}).routes
    assert default.within == 86400
    assert default.upstream_statuses == frozenset({"completed"})


def test_a_join_starts_only_on_its_whole_set_never_on_one_ending() -> None:
    routes = parse_routes({"routes": [join_route([A, B], C)]})

    assert routes.actions_for([ending(A)]) == []
    assert [route.name for route in routes.joins_waiting_for(A, "completed")] == ["c-after-a-and-b"]
    assert routes.joins_waiting_for(A, "failed") == []
    assert routes.joins_waiting_for(C, "completed") == []
    (action,) = routes.actions_for([joined((A, "run-a"), (B, "run-b"))])
    assert (action.route, action.sync.id) == ("c-after-a-and-b", C)
    assert routes.actions_for([joined((A, "run-a"), (D, "run-d"))]) == []  # not its set
    assert routes.actions_for([joined((A, "run-a"), (B, "run-b"), (D, "run-d"))]) == []


def test_a_single_upstream_route_never_takes_a_joins_set_for_its_ending() -> None:
    routes = parse_routes({"routes": [chain("enrich", A, B)]})
    assert routes.actions_for([joined((A, "run-1"), (C, "run-c"))]) == []


def test_a_joins_identity_is_its_set_whichever_ending_completed_it() -> None:
    routes = parse_routes({"routes": [join_route([A, B], C)]})
    (by_a,) = routes.actions_for([joined((A, "run-a"), (B, "run-b"), last=A)])
    (by_b,) = routes.actions_for([joined((B, "run-b"), (A, "run-a"), last=B)])
    (next_day,) = routes.actions_for([joined((A, "run-a2"), (B, "run-b"))])
    assert by_a.dedup_key == by_b.dedup_key
    assert by_a.dedup_key != next_day.dedup_key


def test_a_joins_start_travels_the_dispatch_queue_and_the_dispatcher_accepts_only_its_set() -> None:
    routes = parse_routes({"routes": [join_route([A, B], C)]})
    (action,) = routes.actions_for([joined((A, "run-a"), (B, "run-b"), last=B)])
    message = deferred_start(action, since=WHEN.timestamp(), attempt=1, first_at=WHEN.timestamp())

    back = decode(encode(message))

    assert back == message
    assert back.action.trigger.describe() == f"sync {A} run run-a, sync {B} run run-b ended (completed last)"
    assert routes.refusal(back.action) is None
    body = encode(message)
    body["action"]["trigger"].pop("after")  # one ending alone is not the set the join starts on
    assert routes.refusal(decode(body).action) is not None


@pytest.mark.parametrize(
    "after",
    [[[A, "run-a"]], [["nope", "run-a"], [B, "run-b"]], "A,B", [[A, ""], [B, "run-b"]]],
)
def test_a_message_whose_set_is_malformed_is_unsupported(after: Any) -> None:
    from polytrigger.dispatch.messages import UnsupportedMessage

    routes = parse_routes({"routes": [join_route([A, B], C)]})
    (action,) = routes.actions_for([joined((A, "run-a"), (B, "run-b"))])
    body = encode(deferred_start(action, since=0.0, attempt=1, first_at=0.0))
    body["action"]["trigger"]["after"] = after
    with pytest.raises(UnsupportedMessage, match="field after"):
        decode(body)


def test_a_join_that_comes_back_to_one_of_its_upstreams_is_a_cycle() -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [join_route([A, B], C), chain("c-to-b", C, B)]})
    (problem,) = raised.value.problems
    assert "'c-to-b' -> 'c-after-a-and-b' -> 'c-to-b' chain syncs in a cycle" in problem
    assert f"({C} -> {B} -> {C})" in problem


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ({"syncs": [A]}, "polytomic.syncs: must be a list of 2 to 10 distinct sync UUIDs"),
        ({"syncs": [A]}, "for one upstream write sync: ID"),
        ({"syncs": [A, A.upper()]}, "distinct sync UUIDs"),
        ({"syncs": [A, "nope"]}, "polytomic.syncs: must be a list of 2 to 10"),
        ({"syncs": A}, "polytomic.syncs: must be a list"),
        ({"sync": A, "syncs": [A, B]}, "polytomic: give sync (one upstream) or syncs (several), not both"),
        ({"sync": A, "within": "1h"}, "polytomic.within: only applies with syncs"),
        ({"syncs": [A, B], "within": "9d"}, "polytomic.within: must be a duration from 1 minute to 7 days"),
        ({"syncs": [A, B], "within": "12 hourz"}, "did you mean 12 hours?"),
        ({"syncs": [A, B], "window": "1h"}, "polytomic.window: unknown field; did you mean within?"),
        ({"upstreams": [A, B]}, "polytomic.upstreams: unknown field; did you mean syncs?"),
    ],
)
def test_a_bad_join_names_its_field_in_one_line(trigger: Any, expected: str) -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [{"name": "r", "polytomic": trigger, "syncs": [{"id": C}]}]})
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
    assert all("\n" not in problem for problem in raised.value.problems)


def test_validate_says_what_a_join_waits_for_and_a_single_chain_as_before(tmp_path: Any) -> None:
    from polytrigger.tools.validate import validate

    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""\
routes:
  - name: c-after-a-and-b
    polytomic: {{syncs: [{A}, {B}], events: [completed], within: 12h}}
    syncs: [{{id: {C}, type: bulk}}]
  - name: d-after-a
    polytomic: {{sync: {A}}}
    syncs: [{{id: {D}}}]
""",
        encoding="utf-8",
    )
    report = validate(path)
    assert report.problems == []
    assert report.chains == [
        f"route c-after-a-and-b starts bulk sync {C} once {A} and {B} have both completed within 12 hours"
        " of each other (once per new set of endings)",
        f"route d-after-a follows sync {A}: completed",
    ]


def run_event_body(sync: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": "ev-1",
        "type": f"sync.{status}",
        "created_at": "2026-11-30T12:00:00Z",
        "event": {"execution_id": "run-9", "sync_id": sync, "status": status},
    }


def test_explain_says_an_ending_counts_towards_a_join_and_what_the_join_waits_for(tmp_path: Any) -> None:
    from polytrigger.tools.explain import explain, render, would_act

    path = tmp_path / "routes.yaml"
    path.write_text(
        f"routes:\n  - name: c-after-a-and-b\n    polytomic: {{syncs: [{A}, {B}], within: 12h}}\n"
        f"    syncs: [{{id: {C}, type: bulk}}]\n",
        encoding="utf-8",
    )

    rows = explain(run_event_body(A), path)

    assert would_act(rows)
    assert render(rows).splitlines()[:2] == [
        f"sync {A} run run-9 completed",
        f"  -> route c-after-a-and-b: counted towards its join, which starts bulk sync {C} once {A} and {B}"
        " have both completed within 12 hours of each other",
    ]
    failed = explain(run_event_body(A, "failed"), path)
    assert not would_act(failed)
    assert failed[0]["near_misses"] == ["route c-after-a-and-b: follows completed only"]
    assert not would_act(explain(run_event_body(C), path))
