"""The routes file: the bundled example, validation messages, and trigger → action mapping."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from polytrigger.core.actions import Action
from polytrigger.core.triggers import Trigger
from polytrigger.routing import Routes, RoutesError, load_routes, parse_routes
from polytrigger.settings import BUNDLED_ROUTES

ORDERS_MODEL = "248df4b7-aa70-47b8-a036-33ac447e668d"
WAREHOUSE_BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
CUSTOMERS_MODEL = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"
SYNC_A = "11111111-1111-4111-8111-111111111111"
SYNC_B = "22222222-2222-4222-8222-222222222222"
WHEN = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def s3(
    key: str, *, bucket: str = "acme-landing", event: str = "created", sequencer: str = "0055AED6DCD90281E5"
) -> Trigger:
    return Trigger.s3(bucket=bucket, key=key, event=event, sequencer=sequencer, time=WHEN)  # type: ignore[arg-type]


def scheduled(name: str) -> Trigger:
    return Trigger.scheduled(schedule=name, time=WHEN)


def summary(actions: list[Action]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    return [(a.route, a.kind, a.sync.type, a.sync.id, a.sync.body()) for a in actions]


@pytest.fixture(scope="module")
def bundled() -> Routes:
    return load_routes(BUNDLED_ROUTES)


# -- the bundled routes file --------------------------------------------------------------------


def test_bundled_routes_file_loads(bundled: Routes) -> None:
    assert len(bundled) == 7
    assert [route.name for route in bundled.routes] == [
        "orders-landing",
        "customer-exports",
        "snapshot-removed",
        "nightly-full",
        "weekend-freeze",
        "weekend-thaw",
        "customers-after-orders",
    ]


@pytest.mark.parametrize("key", ["orders/a.csv", "orders/2026/11/a.csv"])
def test_an_orders_csv_starts_the_model_and_an_incremental_bulk_run(bundled: Routes, key: str) -> None:
    assert summary(bundled.actions_for([s3(key)])) == [
        ("orders-landing", "start", "model", ORDERS_MODEL, {}),
        ("orders-landing", "start", "bulk", WAREHOUSE_BULK, {"fetch_mode": "incremental"}),
    ]


@pytest.mark.parametrize(
    "trigger",
    [
        s3("orders2/a.csv"),
        s3("orders/a.csv.bak"),
        s3("orders/a.csv", bucket="acme-other"),
        s3("orders/a.csv", event="deleted"),
        s3("exports/customers/sub/x.csv"),
        s3("snapshots/x.parquet"),  # created; the route only listens to deletions
        s3("snapshots/2026/x.parquet", event="deleted"),
        scheduled("unknown"),
    ],
)
def test_unrelated_triggers_yield_no_actions(bundled: Routes, trigger: Trigger) -> None:
    assert bundled.actions_for([trigger]) == []


def test_customer_exports_with_spaces_and_unicode(bundled: Routes) -> None:
    actions = bundled.actions_for([s3("exports/customers/Jan 2026 (final) é.csv")])
    assert summary(actions) == [
        ("customer-exports", "start", "model", CUSTOMERS_MODEL, {"identities": ["customer-export"]}),
    ]


def test_a_deleted_snapshot_resyncs_the_bulk_sync_for_one_schema(bundled: Routes) -> None:
    actions = bundled.actions_for([s3("snapshots/day.parquet", event="deleted")])
    assert summary(actions) == [
        (
            "snapshot-removed",
            "start",
            "bulk",
            WAREHOUSE_BULK,
            {"resync_mode": "resync", "schemas": ["public.snapshots"]},
        ),
    ]


def test_nightly_activates_first_then_starts_a_full_resync(bundled: Routes) -> None:
    actions = bundled.actions_for([scheduled("nightly")])
    assert [(a.kind, a.sync.id) for a in actions] == [("activate", ORDERS_MODEL), ("start", ORDERS_MODEL)]
    assert actions[1].sync.body() == {"resync": True}
    assert all(a.route == "nightly-full" for a in actions)
    assert actions[0].dedup_key != actions[1].dedup_key


def test_freeze_and_thaw_pause_and_resume_both_syncs(bundled: Routes) -> None:
    assert summary(bundled.actions_for([scheduled("freeze")])) == [
        ("weekend-freeze", "deactivate", "model", ORDERS_MODEL, {}),
        ("weekend-freeze", "deactivate", "bulk", WAREHOUSE_BULK, {}),
    ]
    assert summary(bundled.actions_for([scheduled("thaw")])) == [
        ("weekend-thaw", "activate", "model", ORDERS_MODEL, {}),
        ("weekend-thaw", "activate", "bulk", WAREHOUSE_BULK, {}),
    ]


def test_resync_is_never_set_unless_a_route_asks(bundled: Routes) -> None:
    for route in bundled.routes:
        for sync in route.syncs:
            if route.name not in ("nightly-full", "snapshot-removed"):
                assert "resync" not in sync.body()
                assert "resync_mode" not in sync.body()


# -- Routes.actions_for: one action per (action, sync type, sync id) per event ------------------


def _routes(*routes: dict[str, Any]) -> Routes:
    return parse_routes({"routes": list(routes)})


def test_same_sync_reached_by_two_routes_is_started_once_by_the_first() -> None:
    routes = _routes(
        {"name": "first", "s3": {"bucket": "b-1", "key": "a/**"}, "syncs": [{"id": SYNC_A}, {"id": SYNC_B}]},
        {"name": "second", "s3": {"bucket": "b-1", "key": "**/*.csv"}, "syncs": [{"id": SYNC_A}]},
    )
    actions = routes.actions_for([s3("a/x.csv", bucket="b-1")])
    assert summary(actions) == [
        ("first", "start", "model", SYNC_A, {}),
        ("first", "start", "model", SYNC_B, {}),
    ]


def test_a_plain_start_and_a_resync_of_one_sync_are_both_kept() -> None:
    """The resync route's start was once dropped as a duplicate of the plain one."""
    routes = _routes(
        {"name": "first", "s3": {"bucket": "b-1", "key": "a/**"}, "syncs": [{"id": SYNC_A}, {"id": SYNC_B}]},
        {"name": "second", "s3": {"bucket": "b-1", "key": "**/*.csv"}, "syncs": [{"id": SYNC_A, "resync": True}]},
    )
    actions = routes.actions_for([s3("a/x.csv", bucket="b-1")])
    assert summary(actions) == [
        ("first", "start", "model", SYNC_A, {}),
        ("first", "start", "model", SYNC_B, {}),
        ("second", "start", "model", SYNC_A, {"resync": True}),
    ]
    assert len({action.dedup_key for action in actions}) == 3


def test_same_sync_reached_by_two_triggers_of_one_event_is_started_once() -> None:
    routes = _routes({"name": "r", "s3": {"bucket": "b-1"}, "syncs": [{"id": SYNC_A}]})
    actions = routes.actions_for([s3("x.csv", bucket="b-1", sequencer="01"), s3("y.csv", bucket="b-1", sequencer="02")])
    assert len(actions) == 1
    assert actions[0].trigger.key == "x.csv"


def test_distinct_action_kinds_and_sync_types_are_kept_in_order() -> None:
    routes = _routes(
        {"name": "act", "schedule": "s", "action": "activate", "syncs": [{"id": SYNC_A}]},
        {"name": "go", "schedule": "s", "syncs": [{"id": SYNC_A}, {"id": SYNC_A, "type": "bulk"}]},
        {"name": "again", "schedule": "s", "syncs": [{"id": SYNC_A.upper()}]},
    )
    assert [(a.route, a.kind, a.sync.type, a.sync.id) for a in routes.actions_for([scheduled("s")])] == [
        ("act", "activate", "model", SYNC_A),
        ("go", "start", "model", SYNC_A),
        ("go", "start", "bulk", SYNC_A),
    ]


def test_activate_first_twice_in_one_event_activates_once() -> None:
    routes = _routes(
        {"name": "one", "schedule": "s", "syncs": [{"id": SYNC_A, "activate_first": True}]},
        {"name": "two", "schedule": "s", "syncs": [{"id": SYNC_A, "activate_first": True}]},
    )
    assert [(a.route, a.kind) for a in routes.actions_for([scheduled("s")])] == [("one", "activate"), ("one", "start")]


def test_defaults_key_glob_and_events() -> None:
    routes = _routes({"name": "all", "s3": {"bucket": "b-1"}, "syncs": [{"id": SYNC_A}]})
    assert len(routes.actions_for([s3("any/depth/key.bin", bucket="b-1")])) == 1
    assert routes.actions_for([s3("any/depth/key.bin", bucket="b-1", event="deleted")]) == []
    route = routes.routes[0]
    assert (route.key, route.action, route.events) == ("**", "start", frozenset({"created"}))


def test_sync_ids_are_normalised_to_lower_case() -> None:
    routes = _routes({"name": "r", "schedule": "s", "syncs": [{"id": SYNC_A.upper().replace("1", "A")}]})
    assert routes.routes[0].syncs[0].id == SYNC_A.replace("1", "a")


def test_events_may_be_a_single_string() -> None:
    routes = _routes({"name": "r", "s3": {"bucket": "b-1", "events": "deleted"}, "syncs": [{"id": SYNC_A}]})
    assert routes.routes[0].events == frozenset({"deleted"})


def test_json_is_a_valid_routes_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"routes": [{"name": "j", "schedule": "s", "syncs": [{"id": SYNC_A}]}]}))
    assert [r.name for r in load_routes(path).routes] == ["j"]


@pytest.mark.parametrize("empty", [[], None])
def test_an_empty_routes_list_is_refused_since_nothing_would_fire(empty: Any) -> None:
    assert error_of({"routes": empty}) == (
        "routes file routes.yaml: 'routes' is empty, so nothing would ever fire; add at least one route"
    )


# -- validation ---------------------------------------------------------------------------------

GOOD_ROUTE: dict[str, Any] = {
    "name": "good",
    "s3": {"bucket": "acme-landing", "key": "orders/**/*.csv", "events": ["created"]},
    "syncs": [{"id": SYNC_A}],
}


def error_of(document: Any) -> str:
    with pytest.raises(RoutesError) as caught:
        parse_routes(document, source="routes.yaml")
    return str(caught.value)


def route_with(**changes: Any) -> dict[str, Any]:
    route = copy.deepcopy(GOOD_ROUTE)
    for field, value in changes.items():
        if value is ...:
            route.pop(field, None)
        else:
            route[field] = value
    return route


def one_problem(route: dict[str, Any]) -> str:
    message = error_of({"routes": [route]})
    assert "(1 problem)" in message, message
    return message.splitlines()[1].removeprefix("  - ")


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (route_with(when="always"), "route 'good': unknown field(s): when"),
        (route_with(name=...), "routes[0]: name: required; 1-64 letters, digits, '-' or '_'"),
        (route_with(name=""), "routes[0]: name: required; 1-64 letters, digits, '-' or '_'"),
        (route_with(name="has space"), "route 'has space': name: required; 1-64 letters, digits, '-' or '_'"),
        (route_with(name="x" * 65), f"route '{'x' * 65}': name: required; 1-64 letters, digits, '-' or '_'"),
        (route_with(name=7), "routes[0]: name: required; 1-64 letters, digits, '-' or '_'"),
        (route_with(s3=...), "route 'good': needs exactly one trigger: s3, schedule or polytomic"),
        (route_with(schedule="nightly"), "route 'good': needs exactly one trigger: s3, schedule or polytomic"),
        (route_with(action="stop"), "route 'good': action: must be one of start, activate, deactivate (got 'stop')"),
        (route_with(syncs=...), "route 'good': syncs: must be a non-empty list of {id: <sync uuid>, ...}"),
        (route_with(syncs=[]), "route 'good': syncs: must be a non-empty list of {id: <sync uuid>, ...}"),
        (route_with(syncs={"id": SYNC_A}), "route 'good': syncs: must be a non-empty list of {id: <sync uuid>, ...}"),
        (route_with(syncs=[SYNC_A]), "route 'good': syncs[0]: must be a mapping with an id"),
        (route_with(s3="acme-landing"), "route 'good': s3: must be a mapping with bucket, key and events"),
        (
            route_with(s3={"bucket": "acme-landing", "prefix": "orders/"}),
            "route 'good': s3: unknown field(s): prefix",
        ),
        (route_with(s3={"key": "**"}), "route 'good': s3.bucket: must be an S3 bucket name (got None)"),
        (
            route_with(s3={"bucket": "Acme_Landing"}),
            "route 'good': s3.bucket: must be an S3 bucket name (got 'Acme_Landing')",
        ),
        (route_with(s3={"bucket": "ab"}), "route 'good': s3.bucket: must be an S3 bucket name (got 'ab')"),
        (route_with(s3={"bucket": "a..b"}), "route 'good': s3.bucket: must be an S3 bucket name (got 'a..b')"),
        (
            route_with(s3={"bucket": "s3://acme-landing"}),
            "route 'good': s3.bucket: must be an S3 bucket name (got 's3://acme-landing')",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "key": "orders/[0-9]*.csv"}),
            "route 'good': s3.key: character classes ([...]) are not supported; use * ? or ** (got 'orders/[0-9]*.csv')",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "key": "a**b"}),
            "route 'good': s3.key: ** must stand alone between slashes (e.g. orders/**/*.csv) (got 'a**b')",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "key": ""}),
            "route 'good': s3.key: the key glob is empty (got '')",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "key": 5}),
            "route 'good': s3.key: must be a glob string (got 5)",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "events": ["put"]}),
            "route 'good': s3.events: must be a list of created and/or deleted (got ['put']); did you mean created?",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "events": []}),
            "route 'good': s3.events: must be a list of created and/or deleted (got [])",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "events": ["created", "created"]}),
            "route 'good': s3.events: must be a list of created and/or deleted (got ['created', 'created'])",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "events": [{"x": 1}]}),
            "route 'good': s3.events: must be a list of created and/or deleted (got [{'x': 1}])",
        ),
        (
            route_with(s3=..., schedule="night ly"),
            "route 'good': schedule: must be a schedule name (1-64 letters, digits, '.', '-' or '_')",
        ),
        (
            route_with(s3=..., schedule=["nightly"]),
            "route 'good': schedule: must be a schedule name, or {name, cron | rate | at, timezone, flexible_window}",
        ),
        (route_with(syncs=[{"id": "12345"}]), "route 'good': syncs[0].id: must be a sync UUID (got '12345')"),
        (route_with(syncs=[{}]), "route 'good': syncs[0].id: must be a sync UUID (got None)"),
        (
            route_with(syncs=[{"id": "../../api/webhooks"}]),
            "route 'good': syncs[0].id: must be a sync UUID (got '../../api/webhooks')",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "elt"}]),
            "route 'good': syncs[0].type: must be model or bulk (got 'elt')",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "fetch_mode": "full"}]),
            "route 'good': syncs[0].fetch_mode: not an option of a model sync (options: identities, resync, test)",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "resync": True}]),
            "route 'good': syncs[0].resync: not an option of a bulk sync (options: fetch_mode, resync_mode, schemas, test);"
            " did you mean resync_mode?",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "identities": ["x"]}]),
            "route 'good': syncs[0].identities: not an option of a bulk sync (options: fetch_mode, resync_mode, schemas, test)",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "colour": "red"}]),
            "route 'good': syncs[0].colour: not an option of a model sync (options: identities, resync, test)",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "fetch_mode": "partial"}]),
            "route 'good': syncs[0].fetch_mode: must be one of none, incremental, full (got 'partial')",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "resync_mode": "everything"}]),
            "route 'good': syncs[0].resync_mode: must be one of refetch, resync, rebuild (got 'everything')",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "resync": "yes"}]),
            "route 'good': syncs[0].resync: must be a bool (got 'yes')",
        ),
        (route_with(syncs=[{"id": SYNC_A, "test": 1}]), "route 'good': syncs[0].test: must be a bool (got 1)"),
        (
            route_with(syncs=[{"id": SYNC_A, "identities": "a@b.c"}]),
            "route 'good': syncs[0].identities: must be a list (got 'a@b.c')",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "identities": ["ok", ""]}]),
            "route 'good': syncs[0].identities: must be a list of non-empty strings",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "schemas": [1]}]),
            "route 'good': syncs[0].schemas: must be a list of non-empty strings",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "fetch_mode": 3}]),
            "route 'good': syncs[0].fetch_mode: must be a str (got 3)",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "test": True, "resync_mode": "refetch"}]),
            "route 'good': syncs[0]: test cannot be combined with resync_mode (Polytomic rejects it)",
        ),
        (
            route_with(action="activate", syncs=[{"id": SYNC_A, "resync": True}]),
            "route 'good': syncs[0].resync: options only apply to action start",
        ),
        (
            route_with(action="deactivate", syncs=[{"id": SYNC_A, "type": "bulk", "fetch_mode": "full"}]),
            "route 'good': syncs[0].fetch_mode: options only apply to action start",
        ),
        (
            route_with(action="deactivate", syncs=[{"id": SYNC_A, "activate_first": True}]),
            "route 'good': syncs[0].activate_first: only applies to action start",
        ),
        (
            route_with(action="activate", syncs=[{"id": SYNC_A, "activate_first": True}]),
            "route 'good': syncs[0].activate_first: only applies to action start",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "activate_first": "yes"}]),
            "route 'good': syncs[0].activate_first: must be true or false",
        ),
        (
            route_with(syncs=[{"id": SYNC_A}, {"id": SYNC_A.upper()}]),
            f"route 'good': syncs[1].id: {SYNC_A} is listed twice in this route",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "key": "/orders/*.csv"}),
            "route 'good': s3.key: S3 keys never start with '/', so it can never match; drop the leading /"
            " (got '/orders/*.csv')",
        ),
        # a field one level off: where it belongs
        (route_with(key="orders/*.csv"), "route 'good': key: belongs under s3, not on the route itself"),
        (
            route_with(s3=..., schedule="nightly", key="orders/*.csv"),
            "route 'good': key: belongs under s3, not on the route itself",
        ),
        (
            route_with(s3=..., schedule="nightly", events=["created"]),
            "route 'good': events: belongs under s3, not on the route itself",
        ),
        (
            route_with(resync=True),
            "route 'good': resync: belongs under syncs[n], on each sync it applies to, not on the route itself",
        ),
        (
            route_with(fetch_mode="full"),
            "route 'good': fetch_mode: belongs under syncs[n], on each sync it applies to, not on the route itself",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "debounce": 60}),
            "route 'good': s3.debounce: belongs on the route itself, not under s3",
        ),
        (
            route_with(s3={"bucket": "acme-landing", "identities": ["x"]}),
            "route 'good': s3.identities: belongs under syncs[n], on each sync it applies to, not under s3",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "debounce": 60}]),
            "route 'good': syncs[0].debounce: belongs on the route itself, not under syncs[0]",
        ),
        (
            route_with(syncs=[{"id": SYNC_A, "type": "bulk", "key": "x/*"}]),
            "route 'good': syncs[0].key: belongs under s3, not under syncs[0]",
        ),
    ],
)
def test_each_kind_of_bad_route_names_its_route_and_field(route: dict[str, Any], expected: str) -> None:
    assert one_problem(route) == expected


def test_unknown_top_level_field() -> None:
    message = error_of({"routes": [GOOD_ROUTE], "version": 2})
    assert "(1 problem)" in message
    assert "unknown top-level field(s): version" in message


def test_a_route_field_at_the_top_level_says_it_belongs_in_a_route() -> None:
    message = error_of({"routes": [GOOD_ROUTE], "syncs": [{"id": SYNC_A}]})
    assert message.splitlines()[1:] == ["  - unknown top-level field(s): syncs; syncs belongs in a route, under routes"]


def test_a_route_that_is_not_a_mapping() -> None:
    problem = one_problem("orders")  # type: ignore[arg-type]
    assert problem == "routes[0]: must be a mapping with name, a trigger (s3, schedule or polytomic) and syncs"


def test_duplicate_route_names() -> None:
    message = error_of({"routes": [GOOD_ROUTE, GOOD_ROUTE]})
    assert "(1 problem)" in message
    assert "route 'good': name: 'good' is used by an earlier route; names must be unique" in message


def test_the_same_sync_id_may_appear_as_model_and_bulk() -> None:
    routes = _routes(route_with(syncs=[{"id": SYNC_A}, {"id": SYNC_A, "type": "bulk"}]))
    assert [s.type for s in routes.routes[0].syncs] == ["model", "bulk"]


@pytest.mark.parametrize("document", [[GOOD_ROUTE], "routes", None, 42, {"route": [GOOD_ROUTE]}])
def test_top_level_must_be_a_mapping_with_routes(document: Any) -> None:
    assert error_of(document) == "routes file routes.yaml: expected a mapping with a 'routes' list at the top"


def test_routes_must_be_a_list() -> None:
    assert error_of({"routes": {"good": GOOD_ROUTE}}) == "routes file routes.yaml: 'routes' must be a list"


def test_all_problems_of_a_file_are_reported_together() -> None:
    document = {
        "routes": [
            GOOD_ROUTE,
            route_with(name="bad-bucket", s3={"bucket": "B"}, syncs=[{"id": "nope", "resync": "yes"}]),
            route_with(name="bad-sync", syncs=[{"id": SYNC_B, "type": "bulk", "fetch_mode": "partial"}]),
            route_with(name="good"),
        ],
        "extra": True,
    }
    message = error_of(document)
    assert message.startswith("routes file routes.yaml is invalid (6 problems):\n  - ")
    assert message.splitlines()[1:] == [
        "  - unknown top-level field(s): extra",
        "  - route 'bad-bucket': s3.bucket: must be an S3 bucket name (got 'B')",
        "  - route 'bad-bucket': syncs[0].id: must be a sync UUID (got 'nope')",
        "  - route 'bad-bucket': syncs[0].resync: must be a bool (got 'yes')",
        "  - route 'bad-sync': syncs[0].fetch_mode: must be one of none, incremental, full (got 'partial')",
        "  - route 'good': name: 'good' is used by an earlier route; names must be unique",
    ]


def test_a_bad_file_never_yields_partial_routes(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump({"routes": [GOOD_ROUTE, route_with(name="bad", syncs=[{"id": "x"}])]}))
    with pytest.raises(RoutesError, match=r"route 'bad': syncs\[0\]\.id"):
        load_routes(path)


# -- reading the file ---------------------------------------------------------------------------


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - name: ok\n    schedule: nightly\n    syncs: [{id: x}\n  - name: broken\n")
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    message = str(caught.value)
    assert message.startswith(f"routes file {path}: not valid YAML at line ")
    assert " at line 5, column " in message


DUPLICATED = """\
routes:
  - name: orders
    s3:
      bucket: acme-landing
      key: "orders/*.csv"
      key: "exports/*.csv"
    syncs:
      - id: 11111111-1111-4111-8111-111111111111
        resync: true
        resync: false
  - name: nightly
    schedule: nightly
    syncs: [{id: 22222222-2222-4222-8222-222222222222, type: bulk, type: model}]
    name: nightly-full
  - name: broken
    schedule: nightly
    syncs: [{id: nope}]
"""


def test_duplicate_yaml_keys_are_refused_with_route_field_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(DUPLICATED)
    with pytest.raises(RoutesError) as caught:
        load_routes(path)

    last = "YAML would silently keep only the last one: remove one"
    assert str(caught.value).splitlines() == [
        f"routes file {path} is invalid (5 problems):",
        f"  - route 'orders': s3.key: given again at line 6 (first at line 5); {last}",
        f"  - route 'orders': syncs[0].resync: given again at line 10 (first at line 9); {last}",
        f"  - route 'nightly-full': syncs[0].type: given again at line 13 (first at line 13); {last}",
        f"  - route 'nightly-full': name: given again at line 14 (first at line 11); {last}",
        "  - route 'broken': syncs[0].id: must be a sync UUID (got 'nope')",
    ]
    assert len(caught.value.problems) == 5


def test_a_duplicate_top_level_key_is_listed_with_what_the_last_one_leaves(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(f"routes: [{{name: a, schedule: s, syncs: [{{id: {SYNC_A}}}]}}]\nroutes: []\n")
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    assert caught.value.problems == [
        "routes: given again at line 2 (first at line 1); YAML would silently keep only the last one: remove one",
        "'routes' is empty, so nothing would ever fire; add at least one route",
    ]


def test_yaml_merge_keys_may_override_without_being_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n  - name: a\n    schedule: s\n    syncs:\n"
        f"      - &base {{id: {SYNC_A}, resync: false}}\n      - {{<<: *base, id: {SYNC_B}, resync: true}}\n"
    )
    assert [sync.options for sync in load_routes(path).routes[0].syncs] == [
        (("resync", False),),
        (("resync", True),),
    ]


def test_a_cache_from_before_the_stricter_checks_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(f"routes: [{{name: a, s3: {{bucket: acme-landing, key: /x.csv}}, syncs: [{{id: {SYNC_A}}}]}}]\n")
    document = yaml.safe_load(path.read_text())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "routes.validated.json").write_text(
        json.dumps({"format": 1, "source_sha256": sha, "document": document})
    )
    with pytest.raises(RoutesError, match="drop the leading /"):
        load_routes(path)


def test_invalid_yaml_tab_indentation(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n\t- name: tabbed\n")
    with pytest.raises(RoutesError, match=r"not valid YAML at line 2, column 1: "):
        load_routes(path)


def test_missing_file_is_a_routes_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    assert str(caught.value) == f"routes file {path}: cannot be read (No such file or directory)"


def test_a_directory_is_a_routes_error(tmp_path: Path) -> None:
    with pytest.raises(RoutesError, match=r"cannot be read \(Is a directory\)"):
        load_routes(tmp_path)


def test_a_file_that_is_not_utf8_is_a_routes_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_bytes(b"routes:\n  - name: caf\xe9\n")
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    assert str(caught.value) == f"routes file {path}: not UTF-8 text (byte 21)"


def test_an_empty_file_is_a_routes_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("")
    with pytest.raises(RoutesError, match="expected a mapping with a 'routes' list at the top"):
        load_routes(path)


def test_a_yaml_list_at_the_top_is_a_routes_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("- name: x\n")
    with pytest.raises(RoutesError, match="expected a mapping with a 'routes' list at the top"):
        load_routes(path)


def test_trailing_newlines_do_not_pass_for_names_ids_or_schedules() -> None:
    document = {
        "routes": [
            {"name": "nightly\n", "schedule": "nightly\n", "syncs": [{"id": "248df4b7-aa70-47b8-a036-33ac447e668d\n"}]}
        ]
    }
    with pytest.raises(RoutesError) as raised:
        parse_routes(document)
    message = str(raised.value)
    assert "name: required" in message
    assert "schedule: must be a schedule name" in message
    assert "syncs[0].id: must be a sync UUID" in message


# -- what a queued message may ask for: exactly what the routes make ----------------------------


def _refusal_routes() -> Routes:
    return _routes(
        {"name": "orders", "s3": {"bucket": "b-1", "key": "orders/*.csv"}, "syncs": [{"id": SYNC_A}]},
        {"name": "full", "s3": {"bucket": "b-1", "key": "full/*.csv"}, "syncs": [{"id": SYNC_B, "resync": True}]},
        {"name": "freeze", "schedule": "freeze", "action": "deactivate", "syncs": [{"id": SYNC_A}]},
    )


def test_an_action_the_routes_make_is_not_refused() -> None:
    routes = _refusal_routes()
    for trigger in (s3("orders/a.csv", bucket="b-1"), s3("full/x.csv", bucket="b-1")):
        for action in routes.actions_for([trigger]):
            assert routes.refusal(action) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda a: replace(a, route="nope"), "no route is named 'nope'"),
        (lambda a: replace(a, route="freeze"), "route freeze does not match s3://b-1/orders/a.csv (created)"),
        (
            lambda a: replace(a, trigger=replace(a.trigger, key="other/a.csv")),
            "route orders does not match s3://b-1/other/a.csv (created)",
        ),
        (lambda a: replace(a, kind="deactivate"), "route orders does not deactivate model sync"),
        (lambda a: replace(a, sync=replace(a.sync, id=SYNC_B)), f"route orders does not start model sync {SYNC_B}"),
        (lambda a: replace(a, sync=replace(a.sync, type="bulk")), "route orders does not start bulk sync"),
        (
            lambda a: replace(a, sync=replace(a.sync, options=(("resync", True),))),
            "with these options",
        ),
        (lambda a: replace(a, debounce=5), "with these options"),
    ],
)
def test_a_forged_or_stale_action_is_refused_naming_what_differs(change: Any, why: str) -> None:
    """An injected message could once pause a sync, or post arbitrary options for any sync."""
    routes = _refusal_routes()
    (action,) = routes.actions_for([s3("orders/a.csv", bucket="b-1")])
    refusal = routes.refusal(change(action))
    assert refusal is not None
    assert why in refusal
