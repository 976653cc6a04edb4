"""Schedules in the routes file: what the stack is asked to create, and what no one could create."""

from __future__ import annotations

from typing import Any

import pytest

from polytrigger.route_wiring.plan import MAX_PATTERN_CHARS, bucket_list, plan, plan_problems
from polytrigger.routing import RoutesError, parse_routes
from polytrigger.routing.schedules import ScheduleSpec

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"


def spec_of(schedule: Any) -> ScheduleSpec | None:
    routes = parse_routes({"routes": [{"name": "r", "schedule": schedule, "syncs": [{"id": SYNC}]}]})
    return routes.routes[0].schedule_spec


def problems_of(schedule: Any) -> list[str]:
    with pytest.raises(RoutesError) as raised:
        spec_of(schedule)
    return raised.value.problems


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"name": "nightly", "cron": "0 2 * * ? *", "timezone": "Europe/Berlin"},
         ScheduleSpec("nightly", "cron(0 2 * * ? *)", "Europe/Berlin", 0)),
        ({"name": "n", "cron": "cron(0 18 ? * FRI *)"}, ScheduleSpec("n", "cron(0 18 ? * FRI *)")),
        ({"name": "n", "cron": "15 10 L * ? 2027"}, ScheduleSpec("n", "cron(15 10 L * ? 2027)")),
        ({"name": "hourly", "rate": "1 hour", "flexible_window": "5m"}, ScheduleSpec("hourly", "rate(1 hour)", "UTC", 5)),
        ({"name": "h", "rate": "1 hours"}, ScheduleSpec("h", "rate(1 hour)")),
        ({"name": "h", "rate": "15 minute"}, ScheduleSpec("h", "rate(15 minutes)")),
        ({"name": "h", "rate": "2 days", "flexible_window": "1h"}, ScheduleSpec("h", "rate(2 days)", "UTC", 60)),
        ({"name": "h", "rate": "2 days", "flexible_window": 30}, ScheduleSpec("h", "rate(2 days)", "UTC", 30)),
        ({"name": "h", "rate": "2 days", "flexible_window": "off"}, ScheduleSpec("h", "rate(2 days)")),
        ({"name": "launch", "at": "2026-12-24T18:00:00", "timezone": "America/New_York"},
         ScheduleSpec("launch", "at(2026-12-24T18:00:00)", "America/New_York")),
    ],
)  # fmt: skip
def test_a_schedule_definition_becomes_what_the_scheduler_takes(schedule: Any, expected: ScheduleSpec) -> None:
    assert spec_of(schedule) == expected


@pytest.mark.parametrize(
    "cron",
    [
        "0/15 * * * ? *", "0-30/10 8-18 ? * MON-FRI *", "5,35 */2 * * ? 2027-2030", "0 0 1,15 JAN,JUL ? *",
        "0 12 L * ? *", "0 12 LW * ? *", "0 12 15W * ? *", "0 12 ? * 6L *", "0 12 ? * FRI#3 *", "0 12 ? * 2#1 *",
        "59 23 31 12 ? 2199", "0 0 ? * 7 1970", "0 9 ? * mon-fri *", "0 0 * */3 ? *",
    ],
)  # fmt: skip
def test_every_form_the_scheduler_takes_passes(cron: str) -> None:
    spec = spec_of({"name": "n", "cron": cron})
    assert spec is not None
    assert spec.expression == f"cron({cron.upper()})"  # names as the Scheduler writes them


DAYS = "day-of-week must be 1-7 or SUN-SAT (SUN is 1), ?, L, nL or n#k"


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("30 25 * * ? *", "hours must be 0-23, got '25' (in '30 25 * * ? *')"),
        ("60 2 * * ? *", "minutes must be 0-59, got '60' (in '60 2 * * ? *')"),
        ("*/0 2 * * ? *", "minutes must be 0-59, got '*/0' (in '*/0 2 * * ? *')"),
        ("0 2 0 * ? *", "day-of-month must be 1-31, ?, L, LW or nW, got '0' (in '0 2 0 * ? *')"),
        ("0 2 32W * ? *", "day-of-month must be 1-31, ?, L, LW or nW, got '32' (in '0 2 32W * ? *')"),
        ("0 2 L,15 * ? *",
         "day-of-month must be 1-31, ?, L, LW or nW, got 'L' (in '0 2 L,15 * ? *'): ?, L, W and # stand alone, never in a list"),
        ("0 2 * 13 ? *", "month must be 1-12 or JAN-DEC, got '13' (in '0 2 * 13 ? *')"),
        ("0 2 * FEV ? *", "month must be 1-12 or JAN-DEC, got 'FEV' (in '0 2 * FEV ? *'); did you mean FEB?"),
        ("0 2 ? * 8 *", f"{DAYS}, got '8' (in '0 2 ? * 8 *')"),
        ("0 2 ? * MOM *", f"{DAYS}, got 'MOM' (in '0 2 ? * MOM *'); did you mean MON?"),
        ("0 2 ? * Monday *", f"{DAYS}, got 'MONDAY' (in '0 2 ? * Monday *'); did you mean MON?"),
        ("0 2 ? * 0,6 *",
         f"{DAYS}, got '0' (in '0 2 ? * 0,6 *'): a Unix crontab's 0 is SUN, the Scheduler's SUN is 1; did you mean SUN,SAT?"),
        ("0 2 ? * FRI#6 *", f"{DAYS}, got 'FRI#6' (in '0 2 ? * FRI#6 *')"),
        ("0 2 * * ? 1969", "year must be 1970-2199, got '1969' (in '0 2 * * ? 1969')"),
        ("0 ? * * ? *", "hours must be 0-23, got '?' (in '0 ? * * ? *')"),
        ("0 2 * * * *", "exactly one of day-of-month and day-of-week must be ? (got '0 2 * * * *'); did you mean \"0 2 * * ? *\"?"),
        ("0 9 * * 1-5",
         "must be six fields, minutes hours day-of-month month day-of-week year, e.g. \"0 2 * * ? *\" (got '0 9 * * 1-5');"
         " did you mean \"0 9 ? * MON-FRI *\"?"),
    ],
)  # fmt: skip
def test_a_cron_the_scheduler_would_refuse_is_one_line_naming_the_field_and_the_value(cron: str, problem: str) -> None:
    assert problems_of({"name": "n", "cron": cron}) == [f"route 'r': schedule.cron: {problem}"]


def test_a_bare_name_is_a_schedule_made_elsewhere() -> None:
    assert spec_of("nightly") is None


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"cron": "0 2 * * ? *"}, "schedule.name: required"),
        ({"name": "n"}, "schedule: needs exactly one of cron, rate or at"),
        ({"name": "n", "cron": "0 2 * * ? *", "rate": "1 hour"}, "needs exactly one of cron, rate or at (got cron, rate)"),
        ({"name": "n", "cron": "0 2 * * *"}, "schedule.cron: must be six fields"),
        ({"name": "n", "cron": "0 2 * * * *"}, "exactly one of day-of-month and day-of-week must be ?"),
        ({"name": "n", "cron": "0 2 ? * ? *"}, "exactly one of day-of-month and day-of-week must be ?"),
        ({"name": "n", "cron": "0 2 * * ? *; rm"}, "schedule.cron: must be six fields"),
        ({"name": "n", "rate": "0 hours"}, "schedule.rate: must be a duration of at least 1 minute in whole minutes"),
        ({"name": "n", "rate": "1 week"}, "(got '1 week'); did you mean 7 days?"),
        ({"name": "n", "rate": 60}, "schedule.rate: must be a duration of at least 1 minute in whole minutes, such as"
                                    " 15m, 1h, 90 minutes or 1 hour (got 60)"),
        ({"name": "n", "rate": "90s"}, "schedule.rate: must be a duration of at least 1 minute in whole minutes"),
        ({"name": "n", "at": "2026-02-30T10:00:00"}, "schedule.at: not a real date and time"),
        ({"name": "n", "at": "tomorrow"}, "schedule.at: must be a local time YYYY-MM-DDThh:mm:ss"),
        ({"name": "n", "rate": "1 hour", "timezone": "Berlin time"}, "schedule.timezone: must be an IANA time zone"),
        ({"name": "n", "rate": "1 hour", "flexible_window": "2d"},
         "schedule.flexible_window: must be off, or a duration from 1 minute to 1 day in whole minutes"),
        ({"name": "n", "rate": "1 hour", "flexible_window": 1441}, "schedule.flexible_window: must be off, or a duration"),
        ({"name": "n", "rate": "1 hour", "flexible_window": True}, "schedule.flexible_window: must be off, or a duration"),
        ({"name": "n", "rate": "1 hour", "flexible_window": "30s"}, "from 1 minute to 1 day in whole minutes"),
        ({"name": "n", "rate": "1 hour", "tz": "UTC"}, "schedule.tz: unknown field; did you mean timezone?"),
        ({"name": "n", "rate": "1 hour", "colour": "red"}, "schedule: unknown field(s): colour (fields: at, cron,"),
        ({"name": "night ly", "rate": "1 hour"}, "schedule.name: required; 1-64 letters"),
    ],
)  # fmt: skip
def test_a_bad_schedule_names_its_field(schedule: Any, expected: str) -> None:
    assert any(expected in problem for problem in problems_of(schedule)), problems_of(schedule)


def test_a_schedule_field_on_the_route_says_it_belongs_under_schedule() -> None:
    document = {"routes": [{"name": "r", "schedule": "nightly", "cron": "0 2 * * ? *", "syncs": [{"id": SYNC}]}]}
    with pytest.raises(RoutesError) as raised:
        parse_routes(document)
    assert raised.value.problems == [
        "route 'r': cron: belongs under schedule, as in schedule: {name: NAME, cron: ...}, not on the route itself"
    ]


def route(name: str, schedule: Any) -> dict[str, Any]:
    return {"name": name, "schedule": schedule, "syncs": [{"id": SYNC}]}


def test_one_schedule_defined_two_ways_is_refused_naming_both_routes() -> None:
    document = {
        "routes": [
            route("a", {"name": "nightly", "cron": "0 2 * * ? *"}),
            route("b", {"name": "nightly", "cron": "0 2 * * ? *"}),  # the same: fine
            route("c", {"name": "nightly", "cron": "0 3 * * ? *"}),
        ]
    }
    with pytest.raises(RoutesError) as raised:
        parse_routes(document)
    assert raised.value.problems == [
        "route 'c': schedule.nightly: defined differently by route 'a';"
        " define it once and name it bare (schedule: NAME) elsewhere"
    ]


def test_wiring_lists_the_buckets_the_schedules_to_create_and_those_made_elsewhere() -> None:
    routes = parse_routes(
        {
            "routes": [
                route("nightly-full", {"name": "nightly", "cron": "0 2 * * ? *"}),
                route("nightly-too", "nightly"),  # named bare, defined by the route above: the stack's own
                route("external", "made-by-hand"),
                {"name": "orders", "s3": {"bucket": "b-two", "key": "*"}, "syncs": [{"id": SYNC}]},
                {"name": "more", "s3": {"bucket": "a-one", "key": "*"}, "syncs": [{"id": SYNC}]},
                {"name": "again", "s3": {"bucket": "b-two", "key": "x/*"}, "syncs": [{"id": SYNC}]},
            ]
        }
    )
    found = plan(routes)

    assert found.buckets == ("a-one", "b-two")
    assert [spec.name for spec in found.schedules] == ["nightly"]
    assert found.elsewhere == ("made-by-hand",)
    assert bucket_list(found) == "a-one,b-two"
    assert plan_problems(routes) == []


def test_no_bucket_gives_the_rule_a_name_no_bucket_has() -> None:
    found = plan(parse_routes({"routes": [route("r", "nightly")]}))
    assert bucket_list(found) == ""


def test_an_unknown_time_zone_is_refused_where_a_zone_database_is_at_hand() -> None:
    routes = parse_routes({"routes": [route("r", {"name": "n", "rate": "1 hour", "timezone": "Europe/Atlantis"})]})
    assert plan_problems(routes) == [
        "route 'r': schedule.timezone: 'Europe/Atlantis' is not a time zone the IANA database knows"
    ]


def test_more_buckets_than_the_rule_can_list_are_refused() -> None:
    buckets = [f"bucket-{index:03d}-" + "x" * 50 for index in range(40)]
    routes = parse_routes(
        {
            "routes": [
                {"name": f"r{i}", "s3": {"bucket": b, "key": "*"}, "syncs": [{"id": SYNC}]}
                for i, b in enumerate(buckets)
            ]
        }
    )
    (problem,) = plan_problems(routes)
    assert problem.startswith("the routes name 40 buckets; EventBridge's S3 rule can list about")
    assert f"{MAX_PATTERN_CHARS}-character event pattern" in problem


def test_the_build_lists_an_unknown_zone_with_every_other_problem_but_a_cold_start_never_asks() -> None:
    document = {
        "routes": [
            route("resume", {"name": "resume", "cron": "0 6 ? * MON *", "timezone": "Europe/Amsterdm"}),
            route("pause", {"name": "pause", "cron": "0 18 * * FRI *"}),
        ]
    }
    with pytest.raises(RoutesError) as raised:
        parse_routes(document, check_zones=True)
    assert raised.value.problems == [
        "route 'resume': schedule.timezone: 'Europe/Amsterdm' is not a time zone the IANA database knows;"
        " did you mean Europe/Amsterdam?",
        "route 'pause': schedule.cron: exactly one of day-of-month and day-of-week must be ? (got '0 18 * * FRI *');"
        ' did you mean "0 18 ? * FRI *"?',
    ]

    document["routes"].pop()
    assert parse_routes(document).routes[0].schedule_spec is not None  # the function's own database is not asked
