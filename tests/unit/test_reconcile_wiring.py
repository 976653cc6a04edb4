"""Reconciliation is wired from the routes file: one Scheduler schedule per reconciled route, to the
reconciler, and the buckets it may list answered to the template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from polytrigger.flows.on_wiring_request import WiringRefused, apply
from polytrigger.route_wiring.cloudformation import parse_request
from polytrigger.route_wiring.plan import answer_data, plan
from polytrigger.route_wiring.reconcile_schedules import reconcile_schedules, schedule_name, wanted_reconcile
from polytrigger.route_wiring.schedule_group import Target
from polytrigger.routing import Routes, parse_routes
from tests.unit.test_wiring import MemoryGroup, request

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
RECONCILER = "arn:aws:lambda:eu-west-1:123456789012:function:polytrigger-ReconcilerFunction-Xy"
TARGET = Target(
    "arn:aws:lambda:eu-west-1:123456789012:function:f",
    "arn:aws:iam::123456789012:role/r",
    "arn:aws:sqs:q",
    reconcile_arn=RECONCILER,
)


def routes_with(reconcile: Any, *more: dict[str, Any]) -> Routes:
    s3: dict[str, Any] = {"bucket": "acme-landing", "key": "orders/**"}
    if reconcile is not None:
        s3["reconcile"] = reconcile
    return parse_routes({"routes": [{"name": "orders", "s3": s3, "syncs": [{"id": SYNC}]}, *more]})


def test_a_reconciled_route_gets_a_schedule_at_its_period_invoking_the_reconciler() -> None:
    (schedule,) = reconcile_schedules(routes_with({"every": "15m", "overlap": "2h"}))
    wanted = wanted_reconcile(schedule, TARGET)

    assert (schedule.name, wanted["ScheduleExpression"]) == ("reconcile-orders", "rate(15 minutes)")
    assert wanted["Target"]["Arn"] == RECONCILER
    assert json.loads(wanted["Target"]["Input"]) == {"reconcile": "orders"}
    assert wanted["Target"]["DeadLetterConfig"] == {"Arn": TARGET.dead_letter_arn}


def test_only_the_reconciled_buckets_are_answered_for_the_listing_grant() -> None:
    other = {"name": "other", "s3": {"bucket": "acme-other"}, "syncs": [{"id": SYNC}]}
    assert answer_data(plan(routes_with("1h", other)), "0", "")["ReconciledBuckets"] == "arn:aws:s3:::acme-landing"
    assert answer_data(plan(routes_with(None, other)), "0", "")["ReconciledBuckets"] == "arn:aws:s3:::no-bucket.invalid"


def test_a_long_route_name_still_gives_a_schedule_name_the_scheduler_takes() -> None:
    name = schedule_name("r" * 64)
    assert len(name) <= 64
    assert name.startswith("reconcile-")


def test_the_wiring_creates_the_schedule_and_deletes_it_with_the_reconcile() -> None:
    parsed = parse_request(request(ResourceProperties={"ReconcileTargetArn": RECONCILER}))
    group = MemoryGroup()
    assert apply(parsed, routes_with("15m"), group).summary == "1 created"
    assert apply(parsed, routes_with("15m"), group).summary == "1 unchanged"
    assert apply(parsed, routes_with(None), group).summary == "1 deleted"


def test_a_request_without_the_reconcilers_arn_is_refused_when_routes_reconcile() -> None:
    with pytest.raises(WiringRefused, match="ReconcileTargetArn"):
        apply(parse_request(request()), routes_with("15m"), MemoryGroup())


def test_a_routes_schedule_named_like_a_reconciliation_schedule_is_refused() -> None:
    clash = {"name": "nightly", "schedule": {"name": "reconcile-orders", "rate": "1h"}, "syncs": [{"id": SYNC}]}
    parsed = parse_request(request(ResourceProperties={"ReconcileTargetArn": RECONCILER}))
    with pytest.raises(WiringRefused, match="taken by its reconciliation"):
        apply(parsed, routes_with("15m", clash), MemoryGroup())


def test_validate_lists_the_reconciliation_schedules_the_stack_will_create(tmp_path: Any) -> None:
    from polytrigger.tools.validate import render, validate

    routes = tmp_path / "routes.json"
    s3 = {"bucket": "acme-landing", "key": "orders/**/*.csv", "reconcile": "15m"}
    routes.write_text(json.dumps({"routes": [{"name": "orders", "s3": s3, "syncs": [{"id": SYNC}]}]}))

    lines = render(validate(routes)).splitlines()

    assert (
        "  the stack will create reconciliation schedule reconcile-orders: rate(15 minutes) (route orders:"
        " s3://acme-landing/orders/ listed every 15 minutes, looking back 1 hour before the last pass;"
        " an object found with no event: metric found_by_reconciliation)"
    ) in lines
