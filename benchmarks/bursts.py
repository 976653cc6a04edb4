"""`make bench-bursts`: bursts of files, naive one-start-per-file vs polytrigger's debounce and deferrals.

Each scenario runs both behaviours in one simulation (benchmarks/sim.py) on a virtual clock and
prints one table: files landed, executions started, coverage (files with an execution of their
sync created at or after they landed) and worst staleness (landing to that execution). Exits 1
when polytrigger's coverage is below 100 % or a scenario misses its target.

Then the storm (benchmarks/storm.py): 100,000 objects within one minute on a platform with limits
(Lambda concurrency, Polytomic's rate limit): concurrency used, Polytomic calls, 429s,
executions, coverage, staleness, parked. Exits 1 when a polytrigger row leaves a file neither
covered nor parked, or exceeds its concurrency bounds.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from benchmarks import storm
from benchmarks.sim import DEFAULT_MAX_AGE, Landing, Result, Scenario, SyncSpec, simulate
from polytrigger.dispatch.deferrals import FIRST_DELAY_SECONDS

STATUS_ORDER = ("started", "deferred", "coalesced", "covered", "already_running", "duplicate", "failed")


def sync_id(number: int) -> str:
    return f"{number:08x}-5bc0-4e1d-9a7f-{number:012x}"


def burst(*, files: int = 10_000, seconds: float = 600, debounce: int = 60, run_seconds: float = 90) -> Scenario:
    """(a) One upstream job writes `files` part files evenly over `seconds` for one sync."""
    step = seconds / files
    return Scenario(
        name=f"a: {files:,} files in {seconds / 60:g} min, 1 sync",
        syncs=(SyncSpec(sync_id(1), run_seconds),),
        landings=tuple(Landing(index * step, 0) for index in range(files)),
        debounce=debounce,
        max_executions=math.ceil(seconds / debounce) + 2,
    )


def trickle(
    *, every: float = 5, seconds: float = 3600, debounce: int = 60, max_wait: int = 300, run_seconds: float = 120
) -> Scenario:
    """(b) One file every `every` seconds: never quiet for `debounce`, so `max_wait` paces the starts."""
    count = math.ceil(seconds / every)
    return Scenario(
        name=f"b: 1 file / {every:g} s for {seconds / 60:g} min",
        syncs=(SyncSpec(sync_id(2), run_seconds),),
        landings=tuple(Landing(index * every, 0) for index in range(count)),
        debounce=debounce,
        max_wait=max_wait,
        max_executions=math.ceil(seconds / max_wait) + 2,
    )


def bursty(
    *,
    syncs: int = 50,
    seconds: float = 7200,
    debounce: int = 60,
    max_wait: int = 300,
    seed: int = 4,
    largest_burst: int = 300,
) -> Scenario:
    """(c) Many syncs, each with a few bursts of part files at random times plus late stragglers."""
    rng = random.Random(seed)
    specs: list[SyncSpec] = []
    landings: list[Landing] = []
    for index in range(syncs):
        specs.append(SyncSpec(sync_id(100 + index), rng.choice((30, 60, 90, 120, 180, 300, 600))))
        for _ in range(rng.randint(1, 6)):
            begin = rng.uniform(0, seconds * 0.9)
            spread = rng.uniform(1, 240)
            landings.extend(
                Landing(begin + rng.uniform(0, spread), index) for _ in range(rng.randint(1, largest_burst))
            )
            # stragglers: files that land after the burst seemed over (a dropped 409 never syncs them)
            landings.extend(Landing(begin + spread + rng.uniform(10, 900), index) for _ in range(rng.randint(0, 4)))
    return Scenario(
        name=f"c: {syncs} syncs, random bursts (seed {seed})",
        syncs=tuple(specs),
        landings=tuple(landings),
        debounce=debounce,
        max_wait=max_wait,
    )


def undebounced(*, files: int = 10_000, seconds: float = 600, run_seconds: float = 90) -> Scenario:
    """(a0) The same burst on a route without debounce: every 409 is deferred and retried on its own."""
    scenario = burst(files=files, seconds=seconds, run_seconds=run_seconds)
    return replace(scenario, name="a0: same, no debounce (409s deferred)", debounce=0, max_executions=None)


def scenarios(seed: int = 4) -> list[Scenario]:
    return [burst(), undebounced(), trickle(), bursty(seed=seed)]


# -- the report -------------------------------------------------------------------------------


def passed(result: Result) -> bool:
    """Every file covered, within its staleness bound, and no more executions than the target."""
    poly, target = result.polytrigger, result.scenario.max_executions
    within = target is None or poly.executions <= target
    return poly.covered == result.files and poly.late == 0 and within


def target_text(result: Result) -> str:
    target = result.scenario.max_executions
    runs = f", <= {target} runs" if target is not None else ""
    low, high = min(result.bounds.values()), max(result.bounds.values())
    stale = f"{high:,.0f} s" if low == high else f"{low:,.0f}-{high:,.0f} s by run time"
    return f"100 %{runs}, staleness <= {stale}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} s"


def _coverage(covered: int, files: int) -> str:
    if covered == files:
        return "100 %"
    return f"{math.floor(1000 * covered / files) / 10:.1f} % ({files - covered:,} missed)"


def table(results: Sequence[Result]) -> str:
    header = (
        "scenario",
        "files",
        "executions naive",
        "executions polytrigger",
        "coverage naive",
        "coverage polytrigger",
        "worst staleness naive",
        "worst staleness polytrigger",
        "target",
        "pass/fail",
    )
    rows = [header]
    for result in results:
        naive, poly = result.naive, result.polytrigger
        rows.append(
            (
                result.scenario.name,
                f"{result.files:,}",
                f"{naive.executions:,}",
                f"{poly.executions:,}",
                _coverage(naive.covered, naive.files),
                _coverage(poly.covered, poly.files),
                _seconds(naive.worst_staleness),
                _seconds(poly.worst_staleness),
                target_text(result),
                "pass" if passed(result) else "FAIL",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    numeric = {1, 2, 3, 6, 7}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if column in numeric and row is not header else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows[1:])])


def _counts(outcomes: Counter[str]) -> str:
    return ", ".join(f"{status} {outcomes[status]:,}" for status in STATUS_ORDER if outcomes[status]) or "none"


def details(results: Sequence[Result]) -> str:
    lines = []
    for result in results:
        poly = result.polytrigger
        lines += [
            f"{result.scenario.name}: {result.virtual_seconds / 3600:.1f} h simulated in {result.wall_seconds:.2f} s",
            f"  polytrigger: {_counts(poly.outcomes)}; parked {poly.parked}; over the staleness bound {poly.late:,}; "
            f"{result.messages:,} queue messages; "
            f"Polytomic calls: {result.calls['start']:,} starts, {result.calls['executions']:,} execution lists",
            f"  naive:       {_counts(result.naive.outcomes)}",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bursts", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=4, help="seed of scenario c's random bursts (default 4)")
    parser.add_argument(
        "--first-delay",
        type=int,
        default=FIRST_DELAY_SECONDS,
        help=f"DEFERRAL_FIRST_DELAY_SECONDS: first retry of a start that met a running run (default {FIRST_DELAY_SECONDS})",
    )
    parser.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MAX_AGE,
        help=f"DEFERRAL_MAX_AGE_SECONDS: how long a start is retried before it is parked (default {DEFAULT_MAX_AGE})",
    )
    parser.add_argument(
        "--storm-files",
        type=int,
        default=storm.FILES,
        help=f"objects landing within one minute in the storm; 0 skips it (default {storm.FILES:,})",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=storm.RATE_LIMIT,
        help=f"Polytomic requests per second per organisation, in the storm (default {storm.RATE_LIMIT})",
    )
    parser.add_argument(
        "--s3-concurrency",
        type=int,
        default=storm.S3_CONCURRENCY,
        help=f"S3TriggerConcurrency of polytrigger's first storm row (default {storm.S3_CONCURRENCY})",
    )
    parser.add_argument(
        "--dispatcher-concurrency",
        type=int,
        default=storm.DISPATCHER_CONCURRENCY,
        help=f"DispatcherConcurrency in the storm (default {storm.DISPATCHER_CONCURRENCY})",
    )
    parser.add_argument("--jobs", type=int, default=None, help="processes for the storm's rows (default: one per core)")
    options = parser.parse_args(argv)
    began = time.perf_counter()
    results = [
        simulate(scenario, max_age=options.max_age, first_delay=options.first_delay)
        for scenario in scenarios(options.seed)
    ]
    print(table(results))
    print()
    print(details(results))
    failures = [result.scenario.name for result in results if not passed(result)]
    print(f"\n{len(results)} scenarios in {time.perf_counter() - began:.1f} s", end="")
    print(f"; FAILED: {', '.join(failures)}" if failures else "; all pass")
    if options.storm_files > 0:
        failures += _storm(options)
    print(f"\nmake bench-bursts: {time.perf_counter() - began:.1f} s", end="")
    print(f"; FAILED: {', '.join(failures)}" if failures else "; all pass")
    return 1 if failures else 0


def _storm(options: argparse.Namespace) -> list[str]:
    began = time.perf_counter()
    scenario = storm.storm(files=options.storm_files)
    table_rows = storm.rows(
        rate_limit=options.rate_limit,
        s3_concurrency=options.s3_concurrency,
        dispatcher_concurrency=options.dispatcher_concurrency,
    )
    outcomes = storm.run(scenario, table_rows, jobs=options.jobs)
    print(f"\nStorm: {scenario.name}, on the platform's limits (benchmarks/storm.py)\n")
    print(storm.table(outcomes))
    print()
    print(storm.details(scenario, outcomes))
    print(f"\n{len(outcomes)} storm rows in {time.perf_counter() - began:.1f} s")
    return [f"storm: {outcome.row.label}" for outcome in outcomes if outcome.failed]


if __name__ == "__main__":
    sys.exit(main())
