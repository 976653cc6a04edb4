"""Reliability, scaled down: the ways an adversarial review tried to lose, double or forge a start."""

from __future__ import annotations

import pytest

from local.reliability.load import S3_TRIGGER_CONCURRENCY
from local.reliability.run import Row
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "adversarial"  # the rows the `reliability_rows` fixture runs for this module

ADVERSARIAL = (
    "forged dispatch message",
    "malformed dispatch message",
    "internal error while dispatching",
    "windows without a message",
    "permanent failure parked",
    "plain and resync start of one file",
    "replayed 500s on activation",
    "re-drive past the dedup TTL",
    "burst, concurrency bounded",
)


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, ADVERSARIAL)


def test_forged_messages_are_parked_with_the_reason_and_never_performed(reliability_by_name: dict[str, Row]) -> None:
    forged = reliability_by_name["forged dispatch message"]
    assert forged.facts["performed"] == 0  # no call for a forged id, for another sync, or to pause
    assert forged.facts["refused"] == forged.facts["forged"] >= 5  # one of each kind at least
    assert forged.parked == forged.facts["forged"]
    assert forged.seen >= 1  # and the genuine deferred starts went through


def test_malformed_messages_are_parked_as_they_came_and_make_no_call(reliability_by_name: dict[str, Row]) -> None:
    malformed = reliability_by_name["malformed dispatch message"]
    assert malformed.facts["unreadable"] == malformed.facts["malformed"]
    assert malformed.facts["calls"] == 0
    assert malformed.parked == malformed.facts["malformed"]


def test_an_internal_error_returns_the_message_and_its_last_receive_parks_it(
    reliability_by_name: dict[str, Row],
) -> None:
    broken = reliability_by_name["internal error while dispatching"]
    facts = broken.facts
    assert facts["poisoned"] >= 1
    assert facts["returned"] + facts["parked_last"] == facts["raised"]  # each raise: back to the queue, or parked
    assert facts["parked_last"] >= facts["poisoned"]
    assert broken.parked == facts["parked_last"]
    assert broken.seen + broken.parked == broken.expected  # each resync started once, or parked with the reason


def test_a_window_that_lost_its_message_still_starts_once_and_covers_every_file(
    reliability_by_name: dict[str, Row],
) -> None:
    windows = reliability_by_name["windows without a message"]
    assert windows.facts["runs"] == windows.facts["windows"]
    assert windows.facts["covered"] == windows.expected  # every file, by a run created after it landed
    assert windows.facts["resent"] >= windows.facts["windows"]


def test_refused_actions_are_parked_then_started_once_when_re_driven(reliability_by_name: dict[str, Row]) -> None:
    refused = reliability_by_name["permanent failure parked"]
    assert refused.facts["parked_first"] == refused.facts["refused"] >= 1
    assert refused.facts["redriven"] == refused.facts["parked_first"]
    assert refused.facts["fresh"] >= refused.facts["parked_first"]  # asked again under `<key>-r<n>`
    assert (refused.seen, refused.parked) == (refused.expected, 0)


def test_a_resync_and_a_plain_start_of_one_file_both_run(reliability_by_name: dict[str, Row]) -> None:
    options = reliability_by_name["plain and resync start of one file"]
    assert options.facts["resync_runs"] == options.facts["plain_runs"] == options.facts["files"]
    assert options.seen == options.expected


def test_activations_after_replayed_500s_are_set_again_and_all_end_set(reliability_by_name: dict[str, Row]) -> None:
    activation = reliability_by_name["replayed 500s on activation"]
    assert activation.facts["errors_500"] >= 1
    assert activation.facts["fresh"] >= 1
    assert (activation.seen, activation.parked) == (activation.expected, 0)


def test_events_past_the_dedup_ttl_stay_parked_unless_forced(reliability_by_name: dict[str, Row]) -> None:
    stale = reliability_by_name["re-drive past the dedup TTL"]
    assert stale.facts["left_too_old"] == stale.parked == stale.triggers
    assert stale.facts["invoked"] == 0
    assert stale.facts["forced_again"] == 1  # the control: what --force does is a second start


def test_a_burst_runs_within_the_reserved_concurrency_and_starts_each_once(reliability_by_name: dict[str, Row]) -> None:
    burst = reliability_by_name["burst, concurrency bounded"]
    assert 1 <= burst.facts["peak"] <= S3_TRIGGER_CONCURRENCY
    assert burst.facts["throttled"] >= 1
    assert burst.facts["429s"] >= 1
    # each start ran once, or (still throttled after its retries, deferred) was covered by a later run of its sync
    assert (burst.seen + burst.facts["covered"], burst.parked) == (burst.expected, 0)
