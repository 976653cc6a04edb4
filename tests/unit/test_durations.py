"""Every duration field of a route takes one syntax (`1h`, `90m`, `30s`, `7d`, `1 hour`, `90 minutes`, `2 days`),
read by one function; a refusal is one line naming the field, what it takes and the value given."""

from __future__ import annotations

from typing import Any

import pytest

from polytrigger.routing import RoutesError, parse_routes
from polytrigger.routing.durations import Duration, read_duration, say
from polytrigger.routing.model import DEFAULT_HOLD_SECONDS, Route

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"


def s3_route(**fields: Any) -> Route:
    route = {"name": "r", "s3": {"bucket": "acme-landing"}, "syncs": [{"id": SYNC}], **fields}
    return parse_routes({"routes": [route]}).routes[0]


def schedule_route(**schedule: Any) -> Route:
    document = {"routes": [{"name": "r", "schedule": {"name": "n", **schedule}, "syncs": [{"id": SYNC}]}]}
    return parse_routes(document).routes[0]


def problems_of(route: dict[str, Any]) -> list[str]:
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [{"name": "r", "syncs": [{"id": SYNC}], **route}]})
    return raised.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30), ("90m", 5400), ("1h", 3600), ("7d", 604800), ("1 hour", 3600), ("90 minutes", 5400),
        ("2 days", 172800), ("1 day", 86400), ("45 sec", 45), ("10 mins", 600), ("3 hrs", 10800), (" 2H ", 7200),
        ("15 Minutes", 900), (120, 120),
    ],
)  # fmt: skip
def test_every_spelling_of_a_duration_is_read(text: Any, seconds: int) -> None:
    duration = read_duration(text)
    assert duration is not None
    assert duration.seconds == seconds


@pytest.mark.parametrize("text", ["", "h", "1", "1.5h", "-1h", "1 week", "1h30m", "one hour", True, None, 2.5, [60]])
def test_what_is_no_duration_is_not_read(text: Any) -> None:
    assert read_duration(text) is None


def test_a_bare_number_counts_what_the_field_always_took() -> None:
    assert read_duration(30, bare=60) == Duration(30, "m")
    assert read_duration(30) == Duration(30, "s")
    assert read_duration(30, bare=None) is None


def test_say_names_a_span_in_its_largest_exact_unit() -> None:
    assert [say(n) for n in (1, 60, 5400, 7200, 86400, 172800)] == [
        "1 second", "1 minute", "90 minutes", "2 hours", "1 day", "2 days",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("rate", "expression"),
    [
        ("1h", "rate(1 hour)"), ("90m", "rate(90 minutes)"), ("2d", "rate(2 days)"), ("1 hour", "rate(1 hour)"),
        ("15 minutes", "rate(15 minutes)"), ("1 hours", "rate(1 hour)"), ("15 minute", "rate(15 minutes)"),
        ("120s", "rate(2 minutes)"), ("1 DAY", "rate(1 day)"),
    ],
)  # fmt: skip
def test_a_rate_takes_the_same_durations_as_freshness(rate: str, expression: str) -> None:
    spec = schedule_route(rate=rate).schedule_spec
    assert spec is not None
    assert spec.expression == expression


@pytest.mark.parametrize(("window", "minutes"), [("5m", 5), ("1h", 60), ("90 minutes", 90), (30, 30), ("off", 0)])
def test_a_flexible_window_takes_durations_and_still_a_bare_number_of_minutes(window: Any, minutes: int) -> None:
    spec = schedule_route(rate="1h", flexible_window=window).schedule_spec
    assert spec is not None
    assert spec.flexible_window == minutes


def test_freshness_debounce_and_max_wait_take_durations_and_bare_seconds() -> None:
    route = s3_route(freshness="2h", debounce="1m", max_wait="5 minutes")
    assert (route.freshness, route.debounce, route.max_wait) == (7200, 60, 300)
    route = s3_route(freshness=1800, debounce=90, max_wait=600)
    assert (route.freshness, route.debounce, route.max_wait) == (1800, 90, 600)
    assert s3_route(debounce="30s").max_wait == 30  # default: the debounce itself, a fixed window


def test_hold_defaults_to_seven_days_and_takes_a_duration() -> None:
    assert DEFAULT_HOLD_SECONDS == 7 * 86400
    assert s3_route().hold == DEFAULT_HOLD_SECONDS
    assert s3_route(hold="3d").hold == 3 * 86400
    assert s3_route(hold="1 minute").hold == 60
    assert s3_route(hold="30 days").hold == 30 * 86400
    assert s3_route(hold=7200).hold == 7200


S3 = {"s3": {"bucket": "acme-landing"}}
SECONDS_FORMS = "such as 30s, 90m, 1h, 7d, 90 minutes, 2 days or a number of seconds"


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ({**S3, "hold": "30s"}, f"hold: must be a duration from 1 minute to 30 days, {SECONDS_FORMS} (got '30s')"),
        ({**S3, "hold": "31d"}, f"hold: must be a duration from 1 minute to 30 days, {SECONDS_FORMS} (got '31d')"),
        ({**S3, "hold": "2 weeks"}, f"hold: must be a duration from 1 minute to 30 days, {SECONDS_FORMS} (got '2 weeks');"
                                    " did you mean 14 days?"),
        ({**S3, "hold": "3 dayz"}, f"hold: must be a duration from 1 minute to 30 days, {SECONDS_FORMS} (got '3 dayz');"
                                   " did you mean 3 days?"),
        ({**S3, "hold": True}, f"hold: must be a duration from 1 minute to 30 days, {SECONDS_FORMS} (got True)"),
        ({"schedule": "freeze", "action": "deactivate", "hold": "1d"},
         "hold: only applies to action start (a start that meets a paused sync is held)"),
        ({**S3, "freshness": "3d"}, f"freshness: must be a duration from 1 minute to 2 days, {SECONDS_FORMS} (got '3d')"),
        ({**S3, "freshness": "30s"}, f"freshness: must be a duration from 1 minute to 2 days, {SECONDS_FORMS} (got '30s')"),
        ({**S3, "debounce": "16m"}, f"debounce: must be a duration from 1 second to 15 minutes, {SECONDS_FORMS} (got '16m')"),
        ({**S3, "debounce": 0}, f"debounce: must be a duration from 1 second to 15 minutes, {SECONDS_FORMS} (got 0)"),
        ({**S3, "debounce": "1m", "max_wait": "30s"},
         f"max_wait: must be a duration from 1 minute to 1 day, {SECONDS_FORMS} (got '30s')"),
        ({**S3, "max_wait": "5m"}, "max_wait: only applies together with debounce"),
    ],
)  # fmt: skip
def test_a_bad_duration_is_one_line_naming_the_field_the_forms_and_the_value(
    route: dict[str, Any], problem: str
) -> None:
    assert problems_of(route) == [f"route 'r': {problem}"]


def test_rate_1h_is_accepted_where_freshness_2h_always_was() -> None:
    """The same text in two duration fields means the same thing."""
    route = parse_routes(
        {"routes": [{"name": "r", "schedule": {"name": "n", "rate": "1h"}, "freshness": "1h", "syncs": [{"id": SYNC}]}]}
    ).routes[0]
    assert route.schedule_spec is not None
    assert (route.schedule_spec.expression, route.freshness) == ("rate(1 hour)", 3600)
