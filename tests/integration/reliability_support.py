"""The reliability run, scaled down, one group of scenarios per test module (so they run in parallel):
every row ends with nothing lost, nothing doubled, nothing acknowledged that was neither done nor
parked with a reason, and (in the run-outcome rows) no ending or breach told zero times or twice.
`make reliability` runs the same scenarios at full scale and prints the table.
"""

from __future__ import annotations

from local.reliability.run import Row, run_all, table
from local.stack import LocalStack

SCALE, SEED = 0.03, 7


def rows_of(stack: LocalStack, group: str) -> list[Row]:
    """The group's rows at the test's scale; the stack left as the next test expects it."""
    result = run_all(stack, scale=SCALE, seed=SEED, group=group)
    stack.reset()
    return result


def assert_nothing_lost_doubled_or_acknowledged_undone(rows: list[Row], scenarios: tuple[str, ...]) -> None:
    printed = table(rows)
    assert [row.scenario for row in rows] == list(scenarios), printed
    for row in rows:
        assert row.lost == 0, printed
        assert row.doubled == 0, printed
        assert row.acked_not_done == 0, printed
        assert not row.told_wrong, printed  # None where it does not apply
        assert row.triggers > 0, printed
