"""Reliability, scaled down: files land while their sync is paused, across faults, and a thaw starts it once."""

from __future__ import annotations

import pytest

from local.reliability.holds import STATUS_SAMPLE
from local.reliability.run import Row
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "holds"  # the rows the `reliability_rows` fixture runs for this module

PAUSED = (
    "paused sync, thawed by its schedule",
    "paused sync, resumed by hand",
    "paused sync, held past its limit",
)


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, PAUSED)


@pytest.mark.parametrize("name", PAUSED[:2])
def test_every_file_is_held_then_one_start_after_the_thaw_covers_them_all(
    reliability_by_name: dict[str, Row], name: str
) -> None:
    row = reliability_by_name[name]
    facts = row.facts
    assert facts["held"] == facts["files"]  # each file's start on the paused sync held once (repeats: duplicate)
    assert facts["throttled"] == 1  # the throttled hold write was retried by Lambda and held then
    assert facts["gets_503"] >= 3  # the GET of the sync answered 503 through the client's tries
    assert facts["starts_after_thaw"] == 1  # ONE run of the paused sync for every held file
    assert facts["covered"] == facts["files"]  # each by a run created after it landed
    assert facts["released"] == 1
    assert (row.parked, facts["dispatch_parked"], facts["lambda_parked"]) == (0, 0, 0)  # nothing parked
    assert row.duplicates >= facts["files"] // 3  # every third file delivered twice
    assert row.seen == facts["files"] + 1  # the active sync's own starts, and the one release


def test_the_thaw_schedule_releases_the_hold_at_once_and_the_poll_finds_nothing_more(
    reliability_by_name: dict[str, Row],
) -> None:
    facts = reliability_by_name["paused sync, thawed by its schedule"].facts
    assert facts["released_at_once"] == 1  # right after polytrigger's own activate, before any poll
    assert facts["released_by_poll"] == 0
    assert facts["status_held"] == STATUS_SAMPLE  # `polytrigger status` said held before the thaw
    assert facts["status_covered"] == STATUS_SAMPLE  # and covered (by the release's run) after it


def test_a_resume_by_hand_is_released_by_the_poll_after_its_failures(reliability_by_name: dict[str, Row]) -> None:
    facts = reliability_by_name["paused sync, resumed by hand"].facts
    assert facts["released_early"] == 0  # a minute on, the hold is not due: the sync is not asked
    assert facts["gets_503"] >= 6  # the poll's GET of the sync answered 503 too
    assert facts["failed_sends"] == 1  # then the release's send to the dispatch queue failed
    assert facts["poll_errors"] == 2  # each failed the poll, which Lambda retried
    assert facts["released_by_poll"] == 1


def test_a_hold_past_its_limit_is_parked_with_the_reason_and_noted_for_its_files(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name["paused sync, held past its limit"]
    facts = row.facts
    assert facts["held"] == facts["files"]
    assert facts["starts_after_thaw"] == 0
    assert facts["dispatch_parked"] == row.parked == 1  # one hold, one message, for every file it held
    assert facts["parked_files"] == facts["files"]  # told, not lost
    assert facts["reason_says_paused"] == 1  # "... is still paused (...); `polytrigger redrive` starts it ..."
    assert facts["expired"] == facts["expired_by_poll"] == 1  # metric hold_expired
    assert facts["parked_metric"] >= 1
    assert facts["parked_notes"] == 1  # one parked# item under the sync


def test_status_says_parked_for_every_file_of_an_expired_hold(reliability_by_name: dict[str, Row]) -> None:
    assert reliability_by_name["paused sync, held past its limit"].facts["status_parked"] == STATUS_SAMPLE
