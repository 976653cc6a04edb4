"""When a schedule fires: cron expressions read as EventBridge Scheduler reads them, in the schedule's zone,
daylight saving time included (a skipped wall-clock time is skipped, a repeated one fires once); rates and
one-time schedules too. Every start is a fixed instant, never the real clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from polytrigger.routing.cron import Cron, Firing, compile_cron, next_firings
from polytrigger.routing.schedules import ScheduleSpec, firings

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def cron(expression: str) -> Cron:
    return compile_cron(expression.split())


def walls(expression: str, after: datetime, count: int, zone: ZoneInfo = BERLIN) -> list[str]:
    """Each firing as `Sun 03-29 02:30 @ 00:30Z`, a skipped one as `Sun 03-29 02:30 skipped`."""
    return [_show(firing) for firing in next_firings(cron(expression), zone, after, count)]


def _show(firing: Firing) -> str:
    wall = f"{firing.wall:%a %m-%d %H:%M}"
    return f"{wall} skipped" if firing.at is None else f"{wall} @ {firing.at.astimezone(UTC):%H:%MZ}"


def test_spring_forward_skips_the_wall_clock_time_that_does_not_exist() -> None:
    """Berlin, last Sunday of March 2026: 02:00 jumps to 03:00; the 02:30 firing is skipped, not moved."""
    assert walls("30 2 * * ? *", datetime(2026, 3, 27, tzinfo=UTC), 3) == [
        "Fri 03-27 02:30 @ 01:30Z",
        "Sat 03-28 02:30 @ 01:30Z",
        "Sun 03-29 02:30 skipped",
        "Mon 03-30 02:30 @ 00:30Z",
    ]


def test_fall_back_fires_a_repeated_wall_clock_time_once_at_its_first_occurrence() -> None:
    """Berlin, last Sunday of October 2026: 03:00 falls back to 02:00; 02:30 happens twice and fires once."""
    assert walls("30 2 * * ? *", datetime(2026, 10, 24, 12, tzinfo=UTC), 3) == [
        "Sun 10-25 02:30 @ 00:30Z",
        "Mon 10-26 02:30 @ 01:30Z",
        "Tue 10-27 02:30 @ 01:30Z",
    ]
    every_quarter = walls("*/15 2 * * ? *", datetime(2026, 10, 25, 0, 20, tzinfo=UTC), 3)
    assert every_quarter == ["Sun 10-25 02:30 @ 00:30Z", "Sun 10-25 02:45 @ 00:45Z", "Mon 10-26 02:00 @ 01:00Z"]


def test_a_start_in_the_repeated_hour_does_not_fire_its_wall_clock_times_again() -> None:
    after = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 the second time round (CET)
    assert walls("30 2 * * ? *", after, 1) == ["Mon 10-26 02:30 @ 01:30Z"]


def test_a_local_time_keeps_its_hour_and_moves_in_utc_across_the_change() -> None:
    assert walls("0 18 ? * FRI *", datetime(2026, 10, 20, tzinfo=UTC), 2) == [
        "Fri 10-23 18:00 @ 16:00Z",
        "Fri 10-30 18:00 @ 17:00Z",
    ]
    assert walls("0 9 ? * MON-FRI *", datetime(2026, 3, 6, 15, tzinfo=UTC), 2, zone=NEW_YORK) == [
        "Mon 03-09 09:00 @ 13:00Z",  # New York changed on 8 March, three weeks before Berlin
        "Tue 03-10 09:00 @ 13:00Z",
    ]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("15 10 L * ? *", datetime(2026, 2, 1, tzinfo=UTC), ["Sat 02-28", "Tue 03-31", "Thu 04-30"]),
        ("15 10 LW * ? *", datetime(2026, 2, 1, tzinfo=UTC), ["Fri 02-27", "Tue 03-31", "Thu 04-30"]),
        ("0 9 15W * ? *", datetime(2026, 3, 1, tzinfo=UTC), ["Mon 03-16", "Wed 04-15", "Fri 05-15"]),
        ("0 9 1W * ? *", datetime(2026, 8, 1, 12, tzinfo=UTC), ["Mon 08-03", "Tue 09-01", "Thu 10-01"]),
        ("0 12 ? * 6L *", datetime(2026, 3, 1, tzinfo=UTC), ["Fri 03-27", "Fri 04-24", "Fri 05-29"]),
        ("0 12 ? * FRI#3 *", datetime(2026, 3, 1, tzinfo=UTC), ["Fri 03-20", "Fri 04-17", "Fri 05-15"]),
        ("0 12 ? * L *", datetime(2026, 3, 1, tzinfo=UTC), ["Sat 03-07", "Sat 03-14", "Sat 03-21"]),
        ("0 12 ? * FRI-MON *", datetime(2026, 3, 5, tzinfo=UTC), ["Fri 03-06", "Sat 03-07", "Sun 03-08"]),
        ("0 12 ? * 1 *", datetime(2026, 3, 1, 12, tzinfo=UTC), ["Sun 03-08", "Sun 03-15", "Sun 03-22"]),
        ("0 0 29 2 ? *", datetime(2026, 1, 1, tzinfo=UTC), ["Tue 02-29", "Sun 02-29", "Fri 02-29"]),
        ("0 0 1 JAN,JUL ? 2027/2", datetime(2026, 1, 1, tzinfo=UTC), ["Fri 01-01", "Thu 07-01", "Mon 01-01"]),
        ("5/20 8 1 * ? *", datetime(2026, 3, 1, tzinfo=UTC), ["Sun 03-01", "Sun 03-01", "Sun 03-01"]),
    ],
)
def test_every_day_and_value_form_the_scheduler_takes_fires_when_it_says(
    expression: str, after: datetime, expected: list[str]
) -> None:
    found = next_firings(cron(expression), UTC, after, 3)
    assert [f"{firing.wall:%a %m-%d}" for firing in found] == expected
    if expression.startswith("5/20"):
        assert [firing.wall.minute for firing in found] == [5, 25, 45]
    if expression.startswith("0 0 29 2"):
        assert [firing.wall.year for firing in found] == [2028, 2032, 2036]


def test_an_expression_that_never_fires_again_lists_nothing() -> None:
    assert next_firings(cron("0 0 30 2 ? *"), UTC, datetime(2026, 1, 1, tzinfo=UTC), 3) == []
    assert next_firings(cron("0 0 1 1 ? 2025"), UTC, datetime(2026, 1, 1, tzinfo=UTC), 3) == []


def test_an_expression_the_scheduler_refuses_is_not_compiled() -> None:
    with pytest.raises(ValueError, match="hours must be 0-23"):
        cron("0 25 * * ? *")


def test_a_rate_counts_elapsed_time_whatever_the_zone() -> None:
    after = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, half an hour before Berlin springs forward
    found = firings(ScheduleSpec("h", "rate(1 hour)", "Europe/Berlin"), after, 3)
    assert [f"{firing.wall:%H:%M}" for firing in found] == ["03:30", "04:30", "05:30"]  # 02:30 does not exist
    assert [firing.at.astimezone(UTC).hour for firing in found if firing.at] == [1, 2, 3]
    in_berlin = firings(ScheduleSpec("h", "rate(1 hour)", "Europe/Berlin"), after.astimezone(BERLIN), 2)
    assert [f"{firing.wall:%H:%M}" for firing in in_berlin] == ["03:30", "04:30"]  # the same, from a local start
    days = firings(ScheduleSpec("d", "rate(2 days)", "UTC"), after, 2)
    assert [firing.wall.day for firing in days] == [31, 2]


def test_a_one_time_schedule_fires_once_at_its_local_time_or_not_at_all() -> None:
    spec = ScheduleSpec("launch", "at(2026-12-24T18:00:00)", "America/New_York")
    (once,) = firings(spec, datetime(2026, 12, 1, tzinfo=UTC), 5)
    assert once.at is not None
    assert once.at.astimezone(UTC) == datetime(2026, 12, 24, 23, tzinfo=UTC)
    assert firings(spec, datetime(2027, 1, 1, tzinfo=UTC), 5) == []


def test_a_cron_spec_is_read_in_its_own_zone() -> None:
    spec = ScheduleSpec("nightly", "cron(0 2 ? * TUE-FRI *)", "Europe/Berlin")
    found = firings(spec, datetime(2026, 3, 26, 23, tzinfo=UTC), 2)
    assert [f"{firing.wall:%a %H:%M}" for firing in found] == ["Fri 02:00", "Tue 02:00"]
    assert [firing.at.astimezone(UTC).hour for firing in found if firing.at] == [1, 0]
