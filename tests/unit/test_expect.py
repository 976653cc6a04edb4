"""Arrival deadlines in the routes file: the `expect:` block, and when its deadlines fall across DST."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from polytrigger.routing import RoutesError, parse_routes
from polytrigger.routing.expect import Deadline, Expect, next_deadlines
from polytrigger.tools.cli import main

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
KEY = "exports/orders/dt={day}/_SUCCESS"


def route(expect: Any, **s3: Any) -> dict[str, Any]:
    return {
        "name": "orders-daily",
        "s3": {"bucket": "acme-landing", "key": "exports/orders/**", **s3},
        "expect": expect,
        "syncs": [{"id": SYNC}],
    }


def expect_of(expect: Any, **s3: Any) -> Expect | None:
    return parse_routes({"routes": [route(expect, **s3)]}, check_zones=True).routes[0].expect


def problems_of(expect: Any, **s3: Any) -> list[str]:
    with pytest.raises(RoutesError) as raised:
        expect_of(expect, **s3)
    return raised.value.problems


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_expect_block_becomes_an_expect() -> None:
    expect = expect_of(
        {
            "key": KEY,
            "by": "06:00",
            "warn": "05:30",
            "grace": "15m",
            "timezone": "Europe/Berlin",
            "days": "MON-FRI",
            "skip": [date(2026, 12, 25), "2026-12-26"],
        }
    )

    assert expect == Expect(
        by=time(6, 0),
        timezone="Europe/Berlin",
        warn=time(5, 30),
        grace=900,
        days=frozenset(range(5)),
        skip=frozenset({date(2026, 12, 25), date(2026, 12, 26)}),
        key=KEY,
    )


def test_a_route_without_expect_has_none() -> None:
    assert expect_of(None) is None


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        ("MON-FRI", {0, 1, 2, 3, 4}),
        (["MON", "WED"], {0, 2}),
        ("sat,sun", {5, 6}),
        ("FRI-MON", {4, 5, 6, 0}),
        (["MON-TUE", "THU"], {0, 1, 3}),
        ("MON - FRI", {0, 1, 2, 3, 4}),
    ],
)
def test_days_take_names_ranges_and_lists(days: Any, weekdays: set[int]) -> None:
    expect = expect_of({"key": KEY, "by": "06:00", "days": days})
    assert expect is not None
    assert expect.days == frozenset(weekdays)


def test_the_partition_form_names_a_gated_routes_partition_and_fills_it_with_day_d() -> None:
    raw = route({"partition": {"date": "{day}"}, "by": "06:00"}, key="exports/orders/dt={date}/*")
    raw["gate"] = {"marker": "exports/orders/dt={date}/_SUCCESS"}
    expect = parse_routes({"routes": [raw]}, check_zones=True).routes[0].expect
    assert expect == Expect(by=time(6, 0), partition=(("date", "{day}"),))
    assert expect.partition_for(date(2026, 3, 30)) == (("date", "2026-03-30"),)


def test_the_partition_form_needs_a_gate_and_the_keys_placeholders() -> None:
    ungated = problems_of({"partition": {"date": "{day}"}, "by": "06:00"}, key="exports/orders/dt={date}/*")
    raw = route({"partition": {"day": "{day}"}, "by": "06:00"}, key="exports/orders/dt={date}/*")
    raw["gate"] = {"marker": "exports/orders/dt={date}/_SUCCESS"}
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [raw]}, check_zones=True)

    assert ungated == [
        "route 'orders-daily': expect.partition: only on a route with a gate (the partition is due complete);"
        " else use expect.key"
    ]
    assert raised.value.problems == [
        "route 'orders-daily': expect.partition: must give each placeholder of s3.key (date) a value (got day)"
    ]


def test_a_key_template_is_filled_with_the_local_date() -> None:
    expect = expect_of({"key": "exports/orders/{day:%Y/%m/%d}/_SUCCESS", "by": "06:00"})
    assert expect is not None
    assert expect.key_for(date(2026, 3, 9)) == "exports/orders/2026/03/09/_SUCCESS"
    assert Expect(by=time(6), key=KEY).key_for(date(2026, 3, 9)) == "exports/orders/dt=2026-03-09/_SUCCESS"


@pytest.mark.parametrize(
    ("expect", "problem"),
    [
        ({"key": KEY},
         'route \'orders-daily\': expect.by: required; a local time of day such as "06:00"'),
        ({"key": KEY, "by": 360},
         "route 'orders-daily': expect.by: must be a local time of day HH:MM such as \"06:00\" (got 360);"
         ' quote it: "06:00" (YAML reads an unquoted 06:00 as a number)'),
        ({"key": KEY, "by": "6am"},
         'route \'orders-daily\': expect.by: must be a local time of day HH:MM such as "06:00" (got \'6am\')'),
        ({"key": KEY, "by": "06:00", "warn": "06:30"},
         "route 'orders-daily': expect.warn: must be before by (06:00) on the same day (got 06:30)"),
        ({"key": KEY, "by": "06:00", "warn": "06:00"},
         "route 'orders-daily': expect.warn: must be before by (06:00) on the same day (got 06:00)"),
        ({"key": KEY, "by": "06:00", "grace": "2d"},
         "route 'orders-daily': expect.grace: must be a duration from 0 seconds to 1 day, such as 30s, 90m, 1h,"
         " 7d, 90 minutes, 2 days or a number of seconds (got '2d')"),
        ({"key": KEY, "by": "06:00", "grace": "-5m"},
         "route 'orders-daily': expect.grace: must be a duration from 0 seconds to 1 day, such as 30s, 90m, 1h,"
         " 7d, 90 minutes, 2 days or a number of seconds (got '-5m')"),
        ({"key": KEY, "by": "06:00", "timezone": "Europe/Berln"},
         "route 'orders-daily': expect.timezone: 'Europe/Berln' is not a time zone the IANA database knows;"
         " did you mean Europe/Berlin?"),
        ({"key": KEY, "by": "06:00", "timezone": "Berlin time"},
         "route 'orders-daily': expect.timezone: must be an IANA time zone such as Europe/Berlin"
         " (got 'Berlin time'); did you mean Europe/Berlin?"),
        ({"key": KEY, "by": "06:00", "days": "MON-FRU"},
         "route 'orders-daily': expect.days: 'MON-FRU' is not a day or range of days, MON-SUN such as MON-FRI;"
         " did you mean FRI?"),
        ({"key": KEY, "by": "06:00", "days": []},
         "route 'orders-daily': expect.days: must be days such as MON-FRI or [MON, WED] (got [])"),
        ({"key": KEY, "by": "06:00", "skip": ["2026-02-30"]},
         "route 'orders-daily': expect.skip[0]: must be a date YYYY-MM-DD (got '2026-02-30')"),
        ({"key": KEY, "by": "06:00", "skip": "2026-12-25"},
         "route 'orders-daily': expect.skip: must be a list of dates such as [2026-12-25] (got '2026-12-25')"),
        ({"by": "06:00"},
         "route 'orders-daily': expect: needs exactly one of key (the object due, e.g."
         " exports/orders/dt={day}/_SUCCESS) or partition"),
        ({"key": KEY, "partition": {"date": "{day}"}, "by": "06:00"},
         "route 'orders-daily': expect: needs exactly one of key (the object due, e.g."
         " exports/orders/dt={day}/_SUCCESS) or partition (got both)"),
        ({"key": "exports/orders/{date}/_SUCCESS", "by": "06:00"},
         "route 'orders-daily': expect.key: {date} is no placeholder; use {day} or {day:%Y/%m/%d}"
         " (got 'exports/orders/{date}/_SUCCESS')"),
        ({"key": "exports/orders/{day:%H}/_SUCCESS", "by": "06:00"},
         "route 'orders-daily': expect.key: {day:%H} must format the date only, such as {day:%Y/%m/%d}"
         " (got 'exports/orders/{day:%H}/_SUCCESS')"),
        ({"key": "imports/{day}.csv", "by": "06:00"},
         "route 'orders-daily': expect.key: 'imports/2026-01-31.csv' (day 2026-01-31) would not match this"
         " route's s3.key, so it never arrives"),
        ({"key": KEY, "by": "06:00", "deadline": "07:00"},
         "route 'orders-daily': expect.deadline: unknown field; did you mean by?"),
        ("06:00",
         "route 'orders-daily': expect: must be a mapping with by, and key or partition (got '06:00')"),
    ],
)  # fmt: skip
def test_a_bad_expect_is_one_line_naming_the_route_the_field_and_the_value(expect: Any, problem: str) -> None:
    assert problems_of(expect) == [problem]


def test_expect_only_applies_to_an_s3_route() -> None:
    raw = {"name": "nightly", "schedule": "nightly", "expect": {"key": KEY, "by": "06:00"}, "syncs": [{"id": SYNC}]}
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [raw]})
    assert raised.value.problems == [
        "route 'nightly': expect: only applies to an s3 route (an arrival deadline for its objects)"
    ]


def deadlines(expect: Expect, after: str, count: int) -> list[Deadline]:
    return list(next_deadlines(expect, utc(after), count))


def berlin(by: time, **fields: Any) -> Expect:
    return Expect(by=by, timezone="Europe/Berlin", key=KEY, **fields)


def new_york(by: time, **fields: Any) -> Expect:
    return Expect(by=by, timezone="America/New_York", key=KEY, **fields)


@pytest.mark.parametrize(
    ("expect", "after", "day", "by", "moved"),
    [
        # Europe/Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist.
        (berlin(time(2, 30)), "2026-03-28T12:00", date(2026, 3, 29), "2026-03-29T01:00", True),  # 03:00 CEST
        (berlin(time(2, 0)), "2026-03-28T12:00", date(2026, 3, 29), "2026-03-29T01:00", True),
        (berlin(time(1, 59)), "2026-03-28T12:00", date(2026, 3, 29), "2026-03-29T00:59", False),  # CET
        (berlin(time(6, 0)), "2026-03-28T12:00", date(2026, 3, 29), "2026-03-29T04:00", False),  # CEST
        # ... and falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first counts.
        (berlin(time(2, 30)), "2026-10-24T12:00", date(2026, 10, 25), "2026-10-25T00:30", False),  # CEST
        (berlin(time(6, 0)), "2026-10-24T12:00", date(2026, 10, 25), "2026-10-25T05:00", False),  # CET
        # America/New_York springs forward 2026-03-08 02:00 EST -> 03:00 EDT.
        (new_york(time(2, 30)), "2026-03-07T12:00", date(2026, 3, 8), "2026-03-08T07:00", True),  # 03:00 EDT
        (new_york(time(6, 0)), "2026-03-07T12:00", date(2026, 3, 8), "2026-03-08T10:00", False),  # EDT
        # ... and falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice; the first counts.
        (new_york(time(1, 30)), "2026-10-31T12:00", date(2026, 11, 1), "2026-11-01T05:30", False),  # EDT
        (new_york(time(6, 0)), "2026-10-31T12:00", date(2026, 11, 1), "2026-11-01T11:00", False),  # EST
    ],
)
def test_a_missing_local_time_moves_to_the_next_valid_instant_and_a_repeated_one_takes_the_first(
    expect: Expect, after: str, day: date, by: str, moved: bool
) -> None:
    assert deadlines(expect, after, 1) == [Deadline(day, None, utc(by), utc(by), moved)]


def test_warn_and_grace_are_read_alike_and_grace_is_elapsed_time() -> None:
    """The warn at 02:30 on the spring-forward night moves too; 03:00 + 1 h of grace is 04:00 CEST."""
    expect = berlin(time(3, 0), warn=time(2, 30), grace=3600)

    assert deadlines(expect, "2026-03-28T12:00", 1) == [
        Deadline(date(2026, 3, 29), utc("2026-03-29T01:00"), utc("2026-03-29T01:00"), utc("2026-03-29T02:00"))
    ]


def test_weekends_are_not_due_on_mon_fri() -> None:
    expect = berlin(time(6, 0), days=frozenset(range(5)))

    days = [deadline.day for deadline in deadlines(expect, "2026-03-27T12:00", 3)]  # a Friday, after 06:00

    assert days == [date(2026, 3, 30), date(2026, 3, 31), date(2026, 4, 1)]


def test_skipped_dates_are_not_due() -> None:
    expect = berlin(time(6, 0), days=frozenset(range(5)), skip=frozenset({date(2026, 12, 24), date(2026, 12, 25)}))

    days = [deadline.day for deadline in deadlines(expect, "2026-12-23T12:00", 3)]

    assert days == [date(2026, 12, 28), date(2026, 12, 29), date(2026, 12, 30)]


def test_the_next_deadlines_start_after_the_given_instant() -> None:
    """A deadline exactly at the start is not next; one later that local day is."""
    expect = berlin(time(6, 0))

    assert [d.by for d in deadlines(expect, "2026-06-01T04:00", 2)] == [
        utc("2026-06-02T04:00"),
        utc("2026-06-03T04:00"),
    ]
    assert [d.by for d in deadlines(expect, "2026-06-01T03:59", 1)] == [utc("2026-06-01T04:00")]


ROUTES = """\
routes:
  - name: orders-daily
    s3: {bucket: acme-landing, key: "exports/orders/**"}
    expect:
      key: "exports/orders/dt={day}/_SUCCESS"
      by: "02:30"
      warn: "02:00"
      grace: 15m
      timezone: Europe/Berlin
      days: [SUN, MON, WED]
      skip: ["2026-04-01"]
    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]
  - name: customers
    s3: {bucket: acme-landing, key: "exports/customers/*.csv"}
    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES, encoding="utf-8")
    return str(path)


def test_explain_lists_the_next_deadlines_in_the_zone_and_in_utc(
    routes_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --time without an offset is read in the route's zone; 02:00 and 02:30 on 2026-03-29 move to 03:00."""
    argv = ["explain", "--routes", routes_file, "--route", "orders-daily", "--expect", "--next", "3"]
    assert main([*argv, "--time", "2026-03-28T00:00"]) == 0

    moved = "does not exist that day, clocks spring forward: the next valid instant"
    assert capsys.readouterr().out.splitlines() == [
        "route orders-daily expects exports/orders/dt={day}/_SUCCESS by 02:30 Europe/Berlin, warn 02:00,"
        " grace 15 minutes, MON,WED,SUN, skip 2026-04-01 (each miss reported once: deadline_missed)",
        "the next 3 deadlines after Sat 2026-03-28 00:00 CET (+01:00) = 2026-03-27T23:00:00Z:",
        "  Sun 2026-03-29: exports/orders/dt=2026-03-29/_SUCCESS",
        f"    warn Sun 2026-03-29 03:00 CEST (+02:00) = 2026-03-29T01:00:00Z (02:00 {moved})",
        f"    by   Sun 2026-03-29 03:00 CEST (+02:00) = 2026-03-29T01:00:00Z (02:30 {moved})",
        "    late Sun 2026-03-29 03:15 CEST (+02:00) = 2026-03-29T01:15:00Z",
        "  Mon 2026-03-30: exports/orders/dt=2026-03-30/_SUCCESS",
        "    warn Mon 2026-03-30 02:00 CEST (+02:00) = 2026-03-30T00:00:00Z",
        "    by   Mon 2026-03-30 02:30 CEST (+02:00) = 2026-03-30T00:30:00Z",
        "    late Mon 2026-03-30 02:45 CEST (+02:00) = 2026-03-30T00:45:00Z",
        "  Sun 2026-04-05: exports/orders/dt=2026-04-05/_SUCCESS",
        "    warn Sun 2026-04-05 02:00 CEST (+02:00) = 2026-04-05T00:00:00Z",
        "    by   Sun 2026-04-05 02:30 CEST (+02:00) = 2026-04-05T00:30:00Z",
        "    late Sun 2026-04-05 02:45 CEST (+02:00) = 2026-04-05T00:45:00Z",
    ]


def test_explain_takes_the_first_of_a_repeated_time_and_a_time_with_its_offset(
    routes_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", "--routes", routes_file, "--route", "orders-daily", "--expect", "--next", "1"]
    assert main([*argv, "--time", "2026-10-24T12:00Z", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["deadlines"] == [
        {
            "day": "2026-10-25",
            "key": "exports/orders/dt=2026-10-25/_SUCCESS",
            "warn": "2026-10-25T00:00:00Z",  # 02:00 CEST, the first of two
            "by": "2026-10-25T00:30:00Z",  # 02:30 CEST, the first of two
            "late": "2026-10-25T00:45:00Z",
        }
    ]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("customers", "route customers has no expect: block, so no arrival deadline"),
        ("orders-dayly", "no route is named orders-dayly; did you mean orders-daily?"),
    ],
)
def test_explain_says_why_a_route_has_no_deadlines(
    routes_file: str, route: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "--routes", routes_file, "--route", route, "--expect", "--time", "2026-06-01T00:00Z"]) == 1
    assert capsys.readouterr().out.splitlines() == [message]


def test_explain_route_needs_expect(routes_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["explain", "--routes", routes_file, "--route", "orders-daily"])
    assert exited.value.code == 2
    assert "--route NAME and --expect go together" in capsys.readouterr().err


def test_explain_refuses_a_zone_the_database_does_not_know_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A function's cold start does not ask the zone database (as for schedules); explain must, or it would crash."""
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.replace("Europe/Berlin", "Europe/Berln"), encoding="utf-8")

    assert main(["explain", "--routes", str(path), "--route", "orders-daily", "--expect", "--time", "2026-06-01"]) == 2
    assert capsys.readouterr().err == (
        "polytrigger: routes error: route 'orders-daily': expect.timezone: 'Europe/Berln' is not a time zone"
        " the IANA database knows; did you mean Europe/Berlin?\n"
    )
