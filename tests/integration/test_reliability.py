"""The reliability run, scaled down: every scenario ends with nothing lost, nothing doubled, and nothing
acknowledged that was neither done nor parked with a reason.

`make reliability` runs the same scenarios at full scale and prints the table.
"""

from __future__ import annotations

import pytest

from local.reliability.load import S3_TRIGGER_CONCURRENCY
from local.reliability.run import Row, run_all, table
from local.stack import LocalStack

pytestmark = pytest.mark.slow  # every scenario of `make reliability`, scaled down

ADVERSARIAL = (  # one row per way an adversary tried to lose, double or forge a start
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
OUTCOMES = (  # every run's ending known, and told once, however it comes
    "run outcomes, webhook 30% dropped and 30% duplicated",
    "run outcomes, no webhook and events aged out",
)


@pytest.fixture(scope="module")
def rows(local_stack: LocalStack) -> list[Row]:
    result = run_all(local_stack, scale=0.03, seed=7)
    local_stack.reset()
    return result


@pytest.fixture(scope="module")
def by_name(rows: list[Row]) -> dict[str, Row]:
    return {row.scenario: row for row in rows}


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(rows: list[Row]) -> None:
    printed = table(rows)
    assert len(rows) == 13 + len(ADVERSARIAL) + len(OUTCOMES), printed
    assert [row.scenario for row in rows[13:]] == list(ADVERSARIAL + OUTCOMES), printed
    for row in rows:
        assert row.lost == 0, printed
        assert row.doubled == 0, printed
        assert row.acked_not_done == 0, printed
        assert row.triggers > 0, printed


def test_duplicates_were_suppressed_not_executed(by_name: dict[str, Row]) -> None:
    again = by_name["each trigger delivered 3 times"]
    assert again.duplicates == 2 * again.expected  # two redeliveries of every action
    assert again.seen == again.expected
    for copies in (2, 10, 50):
        row = by_name[f"{copies} concurrent deliveries (threads)"]
        assert row.seen == row.expected
        assert row.duplicates >= (copies - 1) * row.expected


def test_outage_parks_without_calling_then_redrive_starts_everything(by_name: dict[str, Row]) -> None:
    outage = by_name["dedup table missing"]
    assert f"{outage.triggers} parked, 0 calls during the outage" in outage.notes
    assert outage.seen == outage.expected
    assert outage.parked == 0  # all re-driven


def test_rotation_costs_one_refused_call_per_call_in_flight(by_name: dict[str, Row]) -> None:
    rotation = by_name["key rotated mid-run"]
    refused = int(rotation.notes.split()[0])
    assert 1 <= refused <= 2  # each event's two syncs are called at once: both may carry the old key
    assert rotation.seen == rotation.expected


def test_forged_messages_are_parked_with_the_reason_and_never_performed(by_name: dict[str, Row]) -> None:
    forged = by_name["forged dispatch message"]
    assert forged.facts["performed"] == 0  # no call for a forged id, for another sync, or to pause
    assert forged.facts["refused"] == forged.facts["forged"] >= 5  # one of each kind at least
    assert forged.parked == forged.facts["forged"]
    assert forged.seen >= 1  # and the genuine deferred starts went through


def test_malformed_messages_are_parked_as_they_came_and_make_no_call(by_name: dict[str, Row]) -> None:
    malformed = by_name["malformed dispatch message"]
    assert malformed.facts["unreadable"] == malformed.facts["malformed"]
    assert malformed.facts["calls"] == 0
    assert malformed.parked == malformed.facts["malformed"]


def test_an_internal_error_returns_the_message_and_its_last_receive_parks_it(by_name: dict[str, Row]) -> None:
    broken = by_name["internal error while dispatching"]
    facts = broken.facts
    assert facts["poisoned"] >= 1
    assert facts["returned"] + facts["parked_last"] == facts["raised"]  # each raise: back to the queue, or parked
    assert facts["parked_last"] >= facts["poisoned"]
    assert broken.parked == facts["parked_last"]
    assert broken.seen + broken.parked == broken.expected  # each resync started once, or parked with the reason


def test_a_window_that_lost_its_message_still_starts_once_and_covers_every_file(by_name: dict[str, Row]) -> None:
    windows = by_name["windows without a message"]
    assert windows.facts["runs"] == windows.facts["windows"]
    assert windows.facts["covered"] == windows.expected  # every file, by a run created after it landed
    assert windows.facts["resent"] >= windows.facts["windows"]


def test_refused_actions_are_parked_then_started_once_when_re_driven(by_name: dict[str, Row]) -> None:
    refused = by_name["permanent failure parked"]
    assert refused.facts["parked_first"] == refused.facts["refused"] >= 1
    assert refused.facts["redriven"] == refused.facts["parked_first"]
    assert refused.facts["fresh"] >= refused.facts["parked_first"]  # asked again under `<key>-r<n>`
    assert (refused.seen, refused.parked) == (refused.expected, 0)


def test_a_resync_and_a_plain_start_of_one_file_both_run(by_name: dict[str, Row]) -> None:
    options = by_name["plain and resync start of one file"]
    assert options.facts["resync_runs"] == options.facts["plain_runs"] == options.facts["files"]
    assert options.seen == options.expected


def test_activations_after_replayed_500s_are_set_again_and_all_end_set(by_name: dict[str, Row]) -> None:
    activation = by_name["replayed 500s on activation"]
    assert activation.facts["errors_500"] >= 1
    assert activation.facts["fresh"] >= 1
    assert (activation.seen, activation.parked) == (activation.expected, 0)


def test_events_past_the_dedup_ttl_stay_parked_unless_forced(by_name: dict[str, Row]) -> None:
    stale = by_name["re-drive past the dedup TTL"]
    assert stale.facts["left_too_old"] == stale.parked == stale.triggers
    assert stale.facts["invoked"] == 0
    assert stale.facts["forced_again"] == 1  # the control: what --force does is a second start


def test_a_burst_runs_within_the_reserved_concurrency_and_starts_each_once(by_name: dict[str, Row]) -> None:
    burst = by_name["burst, concurrency bounded"]
    assert 1 <= burst.facts["peak"] <= S3_TRIGGER_CONCURRENCY
    assert burst.facts["throttled"] >= 1
    assert burst.facts["429s"] >= 1
    # each start ran once, or (still throttled after its retries, deferred) was covered by a later run of its sync
    assert (burst.seen + burst.facts["covered"], burst.parked) == (burst.expected, 0)


def test_every_run_ending_is_known_and_told_once_though_the_webhook_drops_and_duplicates(
    by_name: dict[str, Row],
) -> None:
    lossy = by_name["run outcomes, webhook 30% dropped and 30% duplicated"]
    facts = lossy.facts
    # each file's two runs, and the chained runs the completed runs of the followed sync started
    assert facts["runs"] == 2 * lossy.triggers + facts["chained_starts"]
    assert facts["chained_starts"] >= 1
    assert facts["chain_endings"] >= 1
    assert (facts["chained_lost"], facts["chained_doubled"]) == (0, 0)  # every chained start exactly once
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert facts["told"] == facts["metrics"] == facts["runs"]  # one line and one metric per ending
    assert facts["webhook"] + facts["poller"] + facts["reconciliation"] == facts["runs"]
    assert facts["webhook"] >= 1
    assert facts["poller"] >= 1  # the endings the webhook dropped
    assert facts["dropped"] >= 1
    assert facts["duplicated"] >= 1
    assert lossy.duplicates == facts["duplicated"]  # each second copy answered 2xx, and settled nothing
    assert facts["refused"] == 0
    assert all(
        facts[f"outcome_{status}"] >= 1 for status in ("completed", "completed_with_errors", "failed", "canceled")
    )
    assert lossy.parked == 0


def test_runs_whose_events_aged_out_are_each_settled_by_reconciliation(by_name: dict[str, Row]) -> None:
    aged = by_name["run outcomes, no webhook and events aged out"]
    facts = aged.facts
    assert facts["events_left"] == 0
    assert facts["runs"] == aged.expected == aged.seen
    assert facts["reconciliation"] == facts["lookups"] == facts["runs"]
    assert facts["webhook"] == facts["poller"] == 0
    assert facts["polls"] == -(-facts["runs"] // 20)  # at most 20 lookups a poll
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert facts["told"] == facts["metrics"] == facts["runs"]
