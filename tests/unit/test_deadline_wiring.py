"""Arrival deadlines are wired from the routes file: one Scheduler schedule per late and warn time, to the poller."""

from __future__ import annotations

import json
from typing import Any

import pytest

from polytrigger.flows.on_wiring_request import WiringRefused, apply
from polytrigger.route_wiring.cloudformation import parse_request
from polytrigger.route_wiring.deadline_schedules import deadline_schedules, schedule_name, wanted_deadline
from polytrigger.route_wiring.schedule_group import Target
from polytrigger.routing import Routes, parse_routes
from tests.unit.test_wiring import MemoryGroup, request

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
POLLER = "arn:aws:lambda:eu-west-1:123456789012:function:polytrigger-PollerFunction-Xy"
TARGET = Target(
    "arn:aws:lambda:eu-west-1:123456789012:function:f",
    "arn:aws:iam::123456789012:role/r",
    "arn:aws:sqs:q",
    deadline_arn=POLLER,
)


def routes_with(expect: dict[str, Any] | None, name: str = "orders-daily", **extra: Any) -> Routes:
    route: dict[str, Any] = {"name": name, "s3": {"bucket": "acme-landing", "key": "exports/orders/**"}}
    if expect is not None:
        route["expect"] = {"key": "exports/orders/dt={day}/_SUCCESS", **expect}
    route.update(syncs=[{"id": SYNC}], **extra)
    return parse_routes({"routes": [route]}, check_zones=True)


ORDERS = {"by": "06:00", "warn": "05:30", "grace": "15m", "timezone": "Europe/Berlin", "days": "MON-FRI"}


def test_a_route_with_expect_gets_a_late_and_a_warn_schedule_in_its_zone_on_its_days() -> None:
    schedules = deadline_schedules(routes_with(ORDERS))

    assert [(s.name, s.expression, s.timezone) for s in schedules] == [
        ("deadline-orders-daily-late", "cron(15 6 ? * MON,TUE,WED,THU,FRI *)", "Europe/Berlin"),
        ("deadline-orders-daily-warn", "cron(30 5 ? * MON,TUE,WED,THU,FRI *)", "Europe/Berlin"),
    ]


def test_a_grace_past_midnight_fires_on_the_next_days() -> None:
    (late,) = deadline_schedules(routes_with({"by": "23:30", "grace": "1h", "days": "MON-FRI"}))
    assert late.expression == "cron(30 0 ? * TUE,WED,THU,FRI,SAT *)"


def test_the_schedule_invokes_the_poller_naming_the_route_and_parks_what_it_cannot_deliver() -> None:
    late = deadline_schedules(routes_with({"by": "06:00"}))[0]
    schedule = wanted_deadline(late, TARGET)

    assert schedule["ScheduleExpression"] == "cron(0 6 ? * * *)"
    assert schedule["Target"]["Arn"] == POLLER
    assert json.loads(schedule["Target"]["Input"]) == {
        "deadline": "orders-daily",
        "time": "<aws.scheduler.scheduled-time>",
    }
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": TARGET.dead_letter_arn}


def test_a_long_route_name_still_gives_a_schedule_name_the_scheduler_takes() -> None:
    name = schedule_name("r" * 64, "late")
    assert len(name) <= 64
    assert name.startswith("deadline-")
    assert name.endswith("-late")


def test_the_wiring_creates_the_deadline_schedules_and_deletes_them_with_the_expect() -> None:
    parsed = parse_request(request(ResourceProperties={"DeadlineTargetArn": POLLER}))
    group = MemoryGroup()
    created = apply(parsed, routes_with(ORDERS), group)
    removed = apply(parsed, routes_with(None), group)

    assert created.summary == "2 created"
    assert removed.summary == "2 deleted"
    assert group.schedules == {}


def test_a_request_without_the_pollers_arn_is_refused_when_routes_have_deadlines() -> None:
    with pytest.raises(WiringRefused, match="DeadlineTargetArn"):
        apply(parse_request(request()), routes_with(ORDERS), MemoryGroup())


def test_a_routes_schedule_named_like_a_deadline_schedule_is_refused() -> None:
    clash = {"name": "deadline-orders-daily-late", "cron": "0 2 * * ? *"}
    both = parse_routes(
        {
            "routes": [
                {
                    "name": "orders-daily",
                    "s3": {"bucket": "acme-landing", "key": "exports/orders/**"},
                    "expect": {"key": "exports/orders/dt={day}/_SUCCESS", "by": "06:00"},
                    "syncs": [{"id": SYNC}],
                },
                {"name": "nightly", "schedule": clash, "syncs": [{"id": SYNC}]},
            ]
        }
    )
    parsed = parse_request(request(ResourceProperties={"DeadlineTargetArn": POLLER}))
    with pytest.raises(WiringRefused, match="taken by its arrival deadline"):
        apply(parsed, both, MemoryGroup())


def test_validate_lists_the_deadline_schedules_the_stack_will_create(tmp_path: Any) -> None:
    from polytrigger.tools.validate import render, validate

    routes = tmp_path / "routes.json"
    route = {
        "name": "orders-daily",
        "s3": {"bucket": "acme-landing", "key": "exports/orders/**"},
        "expect": {"key": "exports/orders/dt={day}/_SUCCESS", **ORDERS},
        "syncs": [{"id": SYNC}],
    }
    routes.write_text(json.dumps({"routes": [route]}), encoding="utf-8")

    lines = render(validate(routes)).splitlines()

    assert (
        "  the stack will create deadline schedule deadline-orders-daily-late: cron(15 6 ? * MON,TUE,WED,THU,FRI *)"
        " Europe/Berlin (route orders-daily: each miss reported once, metric deadline_missed)"
    ) in lines
