"""When a route's deadlines need a look, and what each due day expects (pure: no table)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from polytrigger.deadlines.watch import expected_on, next_look, passed
from polytrigger.routing import parse_routes
from polytrigger.routing.model import Route

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"


def route_with(expect: dict[str, Any], key: str = "exports/orders/**", **extra: Any) -> Route:
    raw = {"name": "orders", "s3": {"bucket": "acme-landing", "key": key}, "expect": expect, "syncs": [{"id": SYNC}]}
    return parse_routes({"routes": [{**raw, **extra}]}, check_zones=True).routes[0]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BERLIN = {"key": "exports/orders/dt={day}/_SUCCESS", "by": "02:30", "timezone": "Europe/Berlin"}


def test_the_next_look_after_the_gap_is_the_instant_the_clocks_jump() -> None:
    assert next_look(route_with(BERLIN), utc("2026-03-28T02:00:00")) == utc("2026-03-29T01:00:00")


def test_the_next_look_inside_a_grace_is_its_end_and_then_the_next_warning() -> None:
    route = route_with({**BERLIN, "by": "06:00", "warn": "05:30", "grace": "15m"})
    assert next_look(route, utc("2026-12-07T05:05:00")) == utc("2026-12-07T05:15:00")  # 06:05 CET: in the grace
    assert next_look(route, utc("2026-12-07T05:15:00")) == utc("2026-12-08T04:30:00")  # the next day's warn


def test_the_deadlines_passed_over_a_weekend_are_the_weekdays_only() -> None:
    route = route_with({**BERLIN, "by": "06:00", "days": "MON-FRI"})
    days = [d.day for d in passed(route, utc("2026-12-04T12:00:00"), utc("2026-12-08T12:00:00"))]
    assert [day for day in days if day > date(2026, 12, 4)] == [date(2026, 12, 7), date(2026, 12, 8)]


def test_a_gated_route_with_a_key_expects_the_keys_partition() -> None:
    gated = route_with(
        {"key": "exports/orders/dt={day}/_SUCCESS", "by": "06:00"},
        key="exports/orders/dt={date}/*",
        gate={"marker": "exports/orders/dt={date}/_SUCCESS"},
    )
    expected = expected_on(gated, date(2026, 3, 30))
    assert expected.partition == (("date", "2026-03-30"),)
    assert expected.what == "s3://acme-landing/exports/orders/dt=2026-03-30/_SUCCESS"
