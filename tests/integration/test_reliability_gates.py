"""Reliability, scaled down: gated partitions across duplicates, concurrency, DynamoDB faults, a crash after
the firing claim, a re-upload after completion and a manifest naming a file that never lands."""

from __future__ import annotations

import pytest

from local.reliability.gates import PARTS
from local.reliability.run import Row, table
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "gates"  # the rows the `reliability_rows` fixture runs for this module

FAULTS = "gates: 3 partitions x (40 parts + marker), twice, 10 at once, DynamoDB faults"
CRASH = "gates: completing invocation dies after the firing claim or the start"
AGAIN = "gates: partitions uploaded again after completion"
TIMEOUT = "gates: manifests naming a file that never lands, polls failing"


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, (FAULTS, CRASH, AGAIN, TIMEOUT))


def test_no_partition_fires_early_or_twice_and_none_complete_is_missed(reliability_rows: list[Row]) -> None:
    printed = table(reliability_rows)
    for row in reliability_rows:
        assert row.gate is not None, printed
        assert (row.gate.early, row.gate.twice, row.gate.missed, row.gate.strays) == (0, 0, 0, 0), printed
        assert row.seen + row.gate.covered == row.expected == row.gate.complete, printed  # one start per version
        if row.scenario != CRASH:  # there, the winner of a claim dies before it says so
            assert row.facts["fired_metric"] == row.gate.complete, printed  # one firing claim won per version
        assert row.parked == 0, printed


def test_faults_fail_invocations_that_lambda_retries_and_every_part_counts_once(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name[FAULTS]
    facts = row.facts
    assert facts["complete"] == facts["partitions"] == 3
    assert facts["throttled"] > 0  # the invocations they struck failed ...
    assert facts["failed_attempts"] > 0  # ... and Lambda delivered their events again
    assert facts["conflicts"] > 0  # transactions cancelled by a conflict: read again, tried again
    assert facts["lambda_parked"] == 0  # a fault strikes the first two attempts only
    assert facts["counted_once"] == facts["partitions"]  # each gate holds 40 objects, version 1, nothing owed
    assert row.duplicates == row.triggers == facts["partitions"] * (PARTS + 1)  # every object twice


def test_a_crash_after_the_firing_claim_leaves_the_start_to_the_poller_after_its_grace(
    reliability_by_name: dict[str, Row],
) -> None:
    facts = reliability_by_name[CRASH].facts
    crashed = facts["crashed_after_fire"] + facts["crashed_after_start"]
    assert facts["crashed_after_fire"] >= 1
    assert facts["crashed_after_start"] >= 1
    assert facts["started_before_poll"] == facts["crashed_after_start"]  # the crash after the start made it
    assert facts["queued_within_grace"] == 0  # the start is owed, not late, until OWED_GRACE
    assert facts["queued_after_grace"] == crashed  # each owed start queued once, under its action's own key
    assert facts["dispatcher_started"] >= 1  # one run made for the owed starts: it may cover the others
    # a start made before the crash is found made (its dedup record): never made twice
    assert facts["dispatcher_duplicate"] == facts["crashed_after_start"]
    assert facts["dispatcher_started"] + facts["dispatcher_covered"] == facts["crashed_after_fire"]
    assert crashed == facts["partitions"]
    assert facts["fired_metric"] == facts["partitions"] - facts["crashed_after_fire"]  # the dead told nothing
    assert facts["queued_later"] == 0  # settled: nothing owed any more
    assert facts["counted_once"] == facts["partitions"]


def test_a_partition_uploaded_again_after_completion_starts_exactly_once_more(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name[AGAIN]
    facts = row.facts
    partitions = facts["partitions"]
    assert facts["after_first"] == partitions
    assert facts["after_repeats"] == partitions  # the same events again start nothing
    assert facts["after_second"] == 2 * partitions  # new uploads: one more start each
    assert facts["counted_once"] == partitions  # version 2, each part once, fired
    assert facts["failed_attempts"] > 0


def test_a_manifest_naming_a_file_that_never_lands_is_reported_once_naming_it(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name[TIMEOUT]
    facts = row.facts
    assert row.told_wrong == 0
    assert facts["reported_early"] == 0  # an hour on, before the timeout
    assert facts["reports"] == facts["reported_partitions"] == facts["incomplete"]
    assert facts["naming_the_missing_file"] == facts["incomplete"]  # the one file, not those that landed
    assert facts["timed_out_metric"] == facts["incomplete"]
    assert facts["failed_polls"] > 0  # polls failed on throttled requests and were retried
    assert row.seen == facts["complete"] >= 1  # the partitions whose files all landed started once
