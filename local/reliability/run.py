"""`make reliability`: at-least-once in, exactly one execution per (trigger, sync) out, nothing acknowledged unless done or parked.

Each scenario drives the real handlers (as Lambda invokes them: asynchronously with retries then the
dead-letter queue, or from the dispatch queue through the event source mapping) against the local
stack — DynamoDB Local, moto, and the fake Polytomic with fault injection — then counts both
sides: executions Polytomic created per action (by the Idempotency-Key each carries), and what was
parked with a reason in a dead-letter queue. An action with no execution whose event was not
parked is *lost*; an action with two executions is *doubled*; a delivery acknowledged while an
action of it was neither done nor parked with a reason counts in "acked, not done or parked".
In the run-outcome rows, a run's ending (or a freshness breach) told zero times or more than once
counts in "told 0 times or twice" ("-" in the other rows). Gate rows add four columns ("-" in the
others): partitions complete, fired early (a start before the partition's last required object
landed), fired twice and missed (a complete partition with no start; fired twice and missed are
also the row's doubled and lost). Any of the four (five with fired early) non-zero fails the run.
The harness is `local.reliability.harness`; the scenarios are in the other modules of `local.reliability`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Callable, Sequence

from local.reliability import deadlines, dispatch, failures, gates, holds, joins, load, lost_events, outcomes, windows
from local.reliability.harness import Harness, Row
from local.reliability.scenarios import FULL_SCALE_ONLY, SCENARIOS
from local.stack import LocalStack

__all__ = ["ADVERSARIAL", "Row", "main", "run_all", "table"]

# What an adversary tries (forged, malformed or failing messages, lost window messages, refusals, replayed
# 500s, stale re-drives, bursts), each with its own row.
ADVERSARIAL: tuple[Callable[[Harness], Row], ...] = (
    dispatch.forged_messages,
    dispatch.malformed_messages,
    dispatch.internal_errors,
    windows.windows_without_a_message,
    failures.permanent_failures,
    load.options_lost,
    load.activation_500s,
    failures.stale_redrive,
    load.unbounded_concurrency,
)


# The scenarios by what they try, in the order the table prints them: `make reliability` runs every
# group in one table; the scaled-down test runs each group on its own (in parallel, on its own stack).
GROUPS = ("concurrency", "faults", "adversarial", "outcomes", "holds", "joins", "gates", "deadlines", "reconciliation")


def scenarios(scale: float, group: str = "") -> tuple[Callable[[Harness], Row], ...]:
    """The scenarios of `group` (every group when empty), as they run at `scale` of the full counts."""
    concurrency = SCENARIOS[:8] if scale < 0.5 else SCENARIOS[:7] + FULL_SCALE_ONLY + SCENARIOS[7:8]
    chosen = {
        "concurrency": concurrency,
        "faults": SCENARIOS[8:],
        "adversarial": ADVERSARIAL,
        "outcomes": outcomes.SCENARIOS,  # run outcomes (local.reliability.outcomes)
        "holds": holds.SCENARIOS,  # a paused sync: files across a freeze and a thaw (local.reliability.holds)
        "joins": joins.SCENARIOS,  # a route waiting for two upstream syncs (local.reliability.joins)
        "gates": gates.SCENARIOS,  # once per complete partition, across faults and a crash (local.reliability.gates)
        "deadlines": deadlines.SCENARIOS,  # each miss and late arrival told once (local.reliability.deadlines)
        "reconciliation": lost_events.SCENARIOS,  # events lost, found by listing (local.reliability.lost_events)
    }
    return chosen[group] if group else tuple(item for name in GROUPS for item in chosen[name])


def run_all(stack: LocalStack, scale: float, seed: int, only: str = "", group: str = "") -> list[Row]:
    """Every scenario of `group` (every group when empty; `only`: those whose function name contains it),
    at `scale` of the full counts."""
    harness = Harness(stack, scale, seed)
    chosen = scenarios(scale, group)
    if only:
        chosen = tuple(s for s in chosen if only in getattr(s, "__name__", ""))
    try:
        return [scenario(harness) for scenario in chosen]
    finally:
        harness.close()


GATE_COLUMNS = ("partitions complete", "fired early", "fired twice", "missed")


def gate_cells(row: Row) -> tuple[str, ...]:
    counts = row.gate
    if counts is None:
        return ("-",) * len(GATE_COLUMNS)
    return str(counts.complete), str(counts.early), str(counts.twice), str(counts.missed)


def table(rows: Sequence[Row]) -> str:
    """The rows under one header; the gate columns only when a gate row is among them."""
    gated = any(r.gate is not None for r in rows)
    header = (
        "scenario", "triggers sent", "starts expected", "starts seen", "duplicates suppressed",
        "parked in DLQ", "lost", "doubled", "acked, not done or parked", "told 0 times or twice",
        *(GATE_COLUMNS if gated else ()), "seconds", "notes",
    )  # fmt: skip
    lines = [header] + [
        (
            r.scenario,
            str(r.triggers),
            str(r.expected),
            str(r.seen),
            str(r.duplicates),
            str(r.parked),
            str(r.lost),
            str(r.doubled),
            str(r.acked_not_done),
            "-" if r.told_wrong is None else str(r.told_wrong),
            *(gate_cells(r) if gated else ()),
            f"{r.seconds:.1f}",
            r.notes,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    rendered.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(rendered)


def early(row: Row) -> int:
    """A gate row's starts made before their partition was complete (0 for the other rows)."""
    return row.gate.early if row.gate is not None else 0


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the table says it all
    parser = argparse.ArgumentParser(prog="make reliability", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full trigger counts (default 1)")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the random faults")
    parser.add_argument("--only", default="", help="run only the scenarios whose function name contains this")
    args = parser.parse_args(argv)
    print(f"polytrigger reliability run (scale {args.scale}, seed {args.seed}) on the local stack ...", flush=True)
    with LocalStack() as stack, contextlib.redirect_stdout(io.StringIO()):  # the handlers' metrics lines
        engine = stack.dynamodb_engine
        rows = run_all(stack, args.scale, args.seed, args.only)
    print(table(rows))
    bad = [r.scenario for r in rows if r.lost or r.doubled or r.acked_not_done or r.told_wrong or early(r)]
    acked = sum(r.acked_not_done for r in rows)
    told = sum(r.told_wrong or 0 for r in rows)
    fired_early = f", fired early: {sum(early(r) for r in rows)}" if any(r.gate for r in rows) else ""
    print(
        f"\nlost: {sum(r.lost for r in rows)}, doubled: {sum(r.doubled for r in rows)},"
        f" acked without being done or parked: {acked}, told 0 times or twice: {told}{fired_early}"
        f" (DynamoDB: {engine})"
    )
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0
