"""Fan-out: one S3 event that maps to 20 syncs, sequential vs parallel, against a single call.

The real S3 handler runs against the local stack (DynamoDB Local or moto, moto's Secrets Manager,
the fake Polytomic API) with the fake adding `LATENCY` seconds to every Polytomic call. Each timed
invocation uses a new S3 sequencer, so every run writes fresh dedup records and calls Polytomic
for real (nothing is a `duplicate`). The container is warm: untimed invocations first.

- baseline: the same handler, one event, a route with one sync (a single Polytomic call);
- sequential: `POLYTOMIC_CONCURRENCY=1`, 20 syncs, for reference (about 20x the baseline);
- parallel: `POLYTOMIC_CONCURRENCY=20`, 20 syncs; target at most 2.5x the baseline (2x until each
  start also wrote the run ledger's two items, on its own thread). Baseline and parallel
  run in pairs, and the ratio is the median of the pairs' ratios.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import Row, against, arguments, ms, reference, show
from local.stack import LocalStack
from local.stack.lambda_context import LocalContext

SYNCS = 20
LATENCY = 0.1  # seconds the fake Polytomic adds to every call
TARGET_RATIO = 2.5
PARALLEL = 20  # POLYTOMIC_CONCURRENCY of the parallel run: the whole fan-out in one wave
RUNS = 9  # paired rounds (single, parallel) behind each median
WARM_UPS = 10  # untimed fan-outs first, while DynamoDB Local's JVM compiles its hot paths
SEQUENTIAL_RUNS = 3  # 2 s each: a reference row, not a target
BUCKET = "bench-landing"
FANOUT_PREFIX = "fanout/"
SINGLE_PREFIX = "single/"


def sync_id(number: int) -> str:
    return f"{number:08x}-be4c-4f00-8a00-{number:012x}"


FANOUT_SYNCS = tuple(sync_id(n) for n in range(1, SYNCS + 1))
SINGLE_SYNC = sync_id(100)


def routes_yaml() -> str:
    """Two routes: one with 20 syncs, one with a single sync (the baseline)."""
    fanout = "\n".join(f"      - id: {sid}" for sid in FANOUT_SYNCS)
    return (
        "routes:\n"
        "  - name: bench-fanout\n"
        f"    s3: {{bucket: {BUCKET}, key: '{FANOUT_PREFIX}*.csv'}}\n"
        "    syncs:\n"
        f"{fanout}\n"
        "  - name: bench-single\n"
        f"    s3: {{bucket: {BUCKET}, key: '{SINGLE_PREFIX}*.csv'}}\n"
        "    syncs:\n"
        f"      - id: {SINGLE_SYNC}\n"
    )


def s3_event(key: str, sequencer: str | None = None) -> dict[str, Any]:
    """An S3 notification for one created object; a new sequencer makes a new trigger (fresh dedup records)."""
    sequencer = sequencer or uuid.uuid4().hex[:18].upper()
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-23T09:15:42.318Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": key, "size": 1, "sequencer": sequencer},
                },
            }
        ]
    }


class Bench:
    """The real S3 handler on a local stack; `container(...)` is a fresh Lambda container with that environment."""

    def __init__(self, stack: LocalStack, routes: Path) -> None:
        self.stack = stack
        self.routes = routes
        for sid in (*FANOUT_SYNCS, SINGLE_SYNC):
            stack.fake.add_sync(sid, kind="model")

    @contextlib.contextmanager
    def container(self, **env: str) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
        """Configure a new container (no App, empty secret cache) and yield `invoke(event)`; logs are discarded."""
        from aws_lambda_powertools.utilities import parameters

        from polytrigger import bootstrap
        from polytrigger.handlers import s3
        from polytrigger.observability import logger

        handler = logger.registered_handler
        with self.stack.environ(ROUTES_FILE=str(self.routes), **env), contextlib.redirect_stdout(io.StringIO()):
            previous = handler.setStream(io.StringIO())  # type: ignore[attr-defined]
            bootstrap.reset()
            parameters.clear_caches()  # type: ignore[no-untyped-call]
            try:

                def invoke(event: dict[str, Any]) -> dict[str, Any]:
                    answer: dict[str, Any] = s3.handler(event, LocalContext(function_name="polytrigger-s3"))
                    return answer

                yield invoke
            finally:
                handler.setStream(previous)  # type: ignore[attr-defined]
                bootstrap.reset()
                parameters.clear_caches()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def bench_stack(stack: LocalStack | None = None) -> Iterator[Bench]:
    """A local stack (started here unless given) with the benchmark's routes and syncs; the fake is reset after."""
    with contextlib.ExitStack() as exits:
        if stack is None:
            stack = exits.enter_context(LocalStack())
        directory = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="polytrigger-bench-")))
        routes = directory / "routes.yaml"
        routes.write_text(routes_yaml(), encoding="utf-8")
        exits.callback(stack.reset)
        stack.reset()
        yield Bench(stack, routes)


def timed(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    prefix: str,
    runs: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds on `clock` (wall time unless told) of `runs` invocations, each a new trigger; one untimed warm-up first."""
    invoke(s3_event(f"{prefix}warm-up.csv"))
    return statistics.median(once(invoke, s3_event(f"{prefix}file-{run}.csv"), clock) for run in range(runs))


def once(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    event: dict[str, Any],
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds on `clock` of one invocation."""
    started = clock()
    invoke(event)
    return clock() - started


def paired(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], runs: int, warm_ups: int
) -> tuple[list[float], list[float]]:
    """Wall seconds of `runs` rounds, each one single-sync event then one 20-sync event, back to back.

    Pairing puts both in the same moment of the machine's load, so each round's ratio is fair even
    when the shared machine is not. `warm_ups` untimed fan-outs go first: DynamoDB Local is a JVM
    that compiles its hot paths during the first few hundred requests, work the real (remote)
    DynamoDB never bills to the function.
    """
    for number in range(warm_ups):
        invoke(s3_event(f"{FANOUT_PREFIX}warm-up-{number}.csv"))
    invoke(s3_event(f"{SINGLE_PREFIX}warm-up.csv"))
    rounds = [
        (
            once(invoke, s3_event(f"{SINGLE_PREFIX}round-{run}.csv")),
            once(invoke, s3_event(f"{FANOUT_PREFIX}round-{run}.csv")),
        )
        for run in range(runs)
    ]
    return [single for single, _ in rounds], [fan_out for _, fan_out in rounds]


def measure(quick: bool, stack: LocalStack | None = None) -> tuple[list[float], list[float], float]:
    """Wall seconds of each paired round's single (1 sync) and parallel (20 syncs) event (see `paired`),
    and the median of the sequential (concurrency 1) fan-out."""
    runs, warm_ups = (1, 0) if quick else (RUNS, WARM_UPS)
    with bench_stack(stack) as bench:
        bench.stack.fake.set_latency(LATENCY)
        try:
            with bench.container(POLYTOMIC_CONCURRENCY=str(PARALLEL)) as invoke:
                singles, fan_outs = paired(invoke, runs, warm_ups)
            with bench.container(POLYTOMIC_CONCURRENCY="1") as invoke:
                sequential = timed(invoke, FANOUT_PREFIX, 1 if quick else SEQUENTIAL_RUNS)
        finally:
            bench.stack.fake.set_latency(0.0)
    return singles, fan_outs, sequential


def rows(quick: bool, stack: LocalStack | None = None) -> list[Row]:
    """The parallel fan-out's ratio is the median of the rounds' ratios, not a ratio of medians."""
    singles, fan_outs, sequential = measure(quick, stack)
    single = statistics.median(singles)
    return [
        reference(
            f"fan-out {SYNCS} syncs, sequential (concurrency 1)",
            ms(sequential),
            f"{ms(single)} (1 sync)",
            f"{sequential / single:.1f}x",
        ),
        against(
            f"fan-out {SYNCS} syncs, parallel (concurrency {PARALLEL})", fan_outs, singles, "(1 sync)", TARGET_RATIO
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments("benchmarks.fanout", __doc__, "one timed run each: a smoke run, not figures").parse_args(argv)
    return show(rows(args.quick))


if __name__ == "__main__":
    sys.exit(main())
