"""The intake simulation (benchmarks/intake.py) in miniature: both intakes, their bounds and the age cliff."""

from __future__ import annotations

from benchmarks import intake
from benchmarks.intake import DIRECT, SQS, Intake, simulate


def test_both_intakes_handle_and_cover_a_small_burst_within_their_bounds() -> None:
    for which in (DIRECT, SQS):
        result = simulate(which, objects=2_000, seconds=10, routes=5)
        assert result.handled == result.covered == 2_000
        assert result.outlived == 0
        assert result.peak <= which.concurrency
        assert result.held


def test_the_buffer_invokes_once_a_batch_and_is_never_throttled() -> None:
    result = simulate(SQS, objects=2_000, seconds=10, routes=5)
    assert result.throttles == 0
    assert result.invocations < 2_000 / 10
    direct = simulate(DIRECT, objects=2_000, seconds=10, routes=5)
    assert direct.invocations == 2_000
    assert direct.throttles > 0


def test_debounce_makes_most_objects_cost_no_polytomic_call() -> None:
    result = simulate(SQS, objects=2_000, seconds=10, routes=5)
    assert 5 <= result.starts <= 5 * 3
    assert result.dynamodb == 2_000 * intake.OBJECT_WRITES + result.starts * intake.FLUSH_WRITES


def test_a_direct_backlog_older_than_the_event_age_is_parked_and_the_buffer_keeps_it() -> None:
    # one slot and slow work: the backlog takes longer than MaximumEventAgeInSeconds to drain
    slow = 0.5
    direct = simulate(Intake("direct, 1", "direct", 1), objects=10_000, seconds=60, routes=5, aws_seconds=slow)
    assert direct.outlived > 0
    assert direct.handled + direct.outlived == 10_000
    assert not direct.held
    buffered = simulate(Intake("sqs, 2", "sqs", 2, 100, 1.0), objects=10_000, seconds=60, routes=5, aws_seconds=slow)
    assert buffered.outlived == 0
    assert buffered.handled == 10_000
    assert buffered.peak <= 2


def test_the_rows_carry_targets_for_the_buffer_only() -> None:
    small = [simulate(which, objects=500, seconds=5, routes=5) for which in (DIRECT, SQS)]
    rows = intake.to_rows(small)
    gated = [row for row in rows if row.target != "reference"]
    assert gated
    assert all("SQS" in row.name for row in gated)
    assert all(row.passed for row in rows)
