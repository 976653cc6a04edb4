"""100,000 objects landing within one minute: what a burst costs on the platform.

The same simulation as the other bursts (benchmarks/sim.py), with the platform's limits switched
on (benchmarks/platform.py): Lambda invocations of the S3 function limited to its concurrency
(the excess throttled and retried from Lambda's queue, for up to an hour), the dispatcher limited
by its event source mapping, each Polytomic request taking time, and Polytomic's rate limit
answering 429 with `Retry-After`.

- naive: one start per file per sync, a 409 dropped, no reserved concurrency (the account's pool,
  1,000), and a client that retries a 429 after its own short backoff, ignoring `Retry-After`;
- polytrigger: the template's defaults (S3TriggerConcurrency 10, DispatcherConcurrency 5, batches
  of 10 within 1 s), debounce windows and deferred starts, `Retry-After` honoured; and the same
  with a lower and a higher S3TriggerConcurrency, to show what the bound trades.

Each row is its own simulation; they run in parallel processes when the machine has the cores.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from benchmarks.platform import ACCOUNT_CONCURRENCY, Platform
from benchmarks.sim import Landing, Prepared, RouteSpec, Scenario, Side, SyncSpec, prepare, simulate_one

FILES = 100_000
SECONDS = 60.0
PLAIN_SHARE = 0.1  # the share of objects on the plain route
RATE_LIMIT = 10  # Polytomic requests per second per organisation: an assumption (the limit is not published)
CALL_SECONDS = 0.1  # one Polytomic request, answer included
INVOKE_SECONDS = 0.005  # an invocation's own work (handler, logs, metrics), warm
AWS_SECONDS = 0.02  # DynamoDB (dedup record, window) and SQS per action or dispatch record
S3_CONCURRENCY = 10  # template.yaml: S3TriggerConcurrency's default
DISPATCHER_CONCURRENCY = 5  # template.yaml: DispatcherConcurrency's default
VARIANTS = (3, 50)  # S3TriggerConcurrency below and above the default


def sync_id(number: int) -> str:
    return f"{number:08x}-57a1-4e1d-9a7f-{number:012x}"


def storm(
    *, files: int = FILES, seconds: float = SECONDS, plain_share: float = PLAIN_SHARE, seed: int = 10
) -> Scenario:
    """`files` objects evenly over `seconds`: most on a debounced route that starts three syncs (one
    upstream job's part files), the rest, picked at random, on a plain route that starts one."""
    rng = random.Random(seed)
    step = seconds / files
    landings = tuple(Landing(index * step, 1 if rng.random() < plain_share else 0) for index in range(files))
    return Scenario(
        name=f"{files:,} objects in {seconds:g} s",
        syncs=(
            SyncSpec(sync_id(1), 90),
            SyncSpec(sync_id(2), 300),
            SyncSpec(sync_id(3), 600),
            SyncSpec(sync_id(4), 120),
        ),
        landings=landings,
        debounce=60,
        max_wait=300,
        routes=(RouteSpec((0, 1, 2), debounce=60, max_wait=300), RouteSpec((3,))),
    )


def naive_platform(*, rate_limit: int = RATE_LIMIT) -> Platform:
    return Platform(
        s3_concurrency=ACCOUNT_CONCURRENCY,
        call_seconds=CALL_SECONDS,
        invoke_seconds=INVOKE_SECONDS,
        aws_seconds=AWS_SECONDS,
        rate_limit=rate_limit,
        honour_retry_after=False,
    )


def polytrigger_platform(
    *,
    s3_concurrency: int = S3_CONCURRENCY,
    dispatcher_concurrency: int = DISPATCHER_CONCURRENCY,
    rate_limit: int = RATE_LIMIT,
) -> Platform:
    return Platform(
        s3_concurrency=s3_concurrency,
        dispatcher_concurrency=dispatcher_concurrency,
        batch_size=10,
        batching_window=1.0,
        call_seconds=CALL_SECONDS,
        invoke_seconds=INVOKE_SECONDS,
        aws_seconds=AWS_SECONDS,
        rate_limit=rate_limit,
        honour_retry_after=True,
    )


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    naive: bool
    platform: Platform


@dataclass(frozen=True, slots=True)
class RowResult:
    row: Row
    side: Side
    wall_seconds: float

    @property
    def failed(self) -> bool:
        """A polytrigger row that breaks its promise fails the benchmark (the naive tool never made one)."""
        return not self.row.naive and not self.kept_promise

    @property
    def kept_promise(self) -> bool:
        """Every file covered or parked; and polytrigger within its concurrency bounds."""
        side, platform = self.side, self.row.platform
        if side.unaccounted:
            return False
        if self.row.naive:
            return True
        within_s3 = platform.s3_concurrency is None or side.s3.peak <= platform.s3_concurrency
        bound = platform.dispatcher_concurrency
        return within_s3 and (bound is None or side.dispatcher_peak <= bound)


def rows(
    *,
    rate_limit: int = RATE_LIMIT,
    s3_concurrency: int = S3_CONCURRENCY,
    dispatcher_concurrency: int = DISPATCHER_CONCURRENCY,
    variants: Sequence[int] = VARIANTS,
) -> list[Row]:
    def poly(s3: int) -> Row:
        platform = polytrigger_platform(
            s3_concurrency=s3, dispatcher_concurrency=dispatcher_concurrency, rate_limit=rate_limit
        )
        return Row(f"polytrigger {s3} / {dispatcher_concurrency}", False, platform)

    return [
        Row(f"naive (account pool {ACCOUNT_CONCURRENCY:,})", True, naive_platform(rate_limit=rate_limit)),
        poly(s3_concurrency),
        *(poly(value) for value in variants if value != s3_concurrency),
    ]


def run(scenario: Scenario, table_rows: Sequence[Row], *, jobs: int | None = None) -> list[RowResult]:
    """Every row's simulation; in `jobs` processes (default: one per core) where `fork` is available."""
    jobs = jobs if jobs is not None else min(len(table_rows), os.cpu_count() or 1)
    global _SHARED  # noqa: PLW0603 - handed to forked workers without pickling 100,000 files
    _SHARED = prepare(scenario)
    try:
        if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return [_row(index, table_rows) for index in range(len(table_rows))]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            return list(pool.map(_row, range(len(table_rows)), [table_rows] * len(table_rows)))
    finally:
        _SHARED = None


_SHARED: Prepared | None = None


def _row(index: int, table_rows: Sequence[Row]) -> RowResult:
    assert _SHARED is not None
    row = table_rows[index]
    began = time.perf_counter()
    side = simulate_one(_SHARED, row.platform, naive=row.naive)
    side.s3 = replace(side.s3, parked=[])  # counted in `side`: no 100,000 files back through a pipe
    return RowResult(row, side, time.perf_counter() - began)


# -- the report -------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} s"


def _coverage(side: Side) -> str:
    if side.covered == side.files:
        return "100 %"
    return f"{side.coverage:.1f} % ({side.files - side.covered:,} missed)"


def _peak(outcome: RowResult) -> str:
    side = outcome.side
    if outcome.row.naive:
        return f"{side.s3.peak:,}"
    return f"{side.s3.peak} + {side.dispatcher_peak}"


def table(outcomes: Sequence[RowResult]) -> str:
    header = (
        "behaviour (S3 / dispatcher concurrency)",
        "peak concurrency",
        "Polytomic calls",
        "429s",
        "executions per sync",
        "files covered",
        "worst staleness",
        "parked",
        "longest wait for a Lambda slot",
        "covered or parked",
    )
    lines = [header]
    for outcome in outcomes:
        side = outcome.side
        lines.append(
            (
                outcome.row.label,
                _peak(outcome),
                f"{side.requests:,}",
                f"{side.rate_limited:,}",
                " / ".join(str(count) for count in side.executions_by_sync.values()),
                _coverage(side),
                _seconds(side.worst_staleness),
                f"{side.parked:,}",
                _seconds(side.s3.longest_wait),
                "yes" if outcome.kept_promise else f"NO ({side.unaccounted:,} neither)",
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    numeric = {1, 2, 3, 6, 7, 8}

    def render(line: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if column in numeric and line is not header else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([render(header), rule, *(render(line) for line in lines[1:])])


def details(scenario: Scenario, outcomes: Sequence[RowResult]) -> str:
    lines = []
    for outcome in outcomes:
        side = outcome.side
        counts = ", ".join(f"{status} {count:,}" for status, count in side.outcomes.most_common())
        parked = ", ".join(f"{why} {count:,}" for why, count in side.parked_reasons.most_common()) or "nothing"
        lines += [
            f"{outcome.row.label}: {side.finished:,.0f} s until the last invocation ended, simulated in "
            f"{outcome.wall_seconds:.1f} s",
            f"  Lambda: {side.s3.invocations:,} S3 invocations ({side.s3.failures:,} failed), "
            f"{side.s3.throttles:,} throttled tries; "
            + (
                f"dispatcher: {side.dispatcher_batches:,} batches, {side.messages:,} queue messages; "
                if not outcome.row.naive
                else ""
            )
            + f"longest pause between attempts {side.longest_pause:.1f} s",
            f"  Polytomic: {side.calls['start']:,} starts, {side.calls['executions']:,} execution lists "
            f"({side.rate_limited:,} answered 429); outcomes: {counts}",
            f"  parked: {parked}"
            + (
                f"; they stand for {side.parked_files:,} files (per sync), "
                f"{side.parked_files - side.parked_uncovered:,} of them covered by a run all the same"
                if side.parked
                else ""
            ),
        ]
    platform = next((outcome.row.platform for outcome in outcomes if not outcome.row.naive), None)
    if platform is not None:
        lines.append(
            f"{scenario.name}; Polytomic lets {platform.rate_limit} requests a second through, each takes "
            f"{platform.call_seconds:g} s; executions per sync: the debounced route's syncs (runs of 90, 300, "
            "600 s), then the plain route's (120 s)"
        )
    return "\n".join(lines)
