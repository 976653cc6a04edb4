"""Route matching that scales: 1,000 routes x 10,000 S3 records (an SQS batch at its largest), in-process.

Baseline, measured in the same run: the naive loop, for each record, over every route: same bucket and
`fnmatch.fnmatchcase(key, glob)` (fnmatch lets `*` cross `/`, so it is only a cost baseline, not the
semantics). polytrigger: `Routes.matching` for every trigger, which looks a key up in an index by
(bucket, event) and by the folders of the key that are literal prefixes of some route, and only runs the
globs compiled at load of those routes. Its results are checked against a plain per-route
`route.matches(trigger)` loop over every route (correctness, not fnmatch).

Targets: ≤ 100 ms for the whole batch and ≥ 20x faster than the naive loop.
"""

from __future__ import annotations

import fnmatch
import gc
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from benchmarks.report import Row, arguments, status
from polytrigger.core.triggers import Trigger
from polytrigger.routing import Route, Routes, parse_routes

TARGET_MS = 100.0
TARGET_RATIO = 20.0
ROUTES = 1_000
RECORDS = 10_000
QUICK_RECORDS = 1_000
REPEATS = 5
BUCKETS = tuple(f"acme-landing-{name}" for name in ("raw", "staging", "exports", "partners", "archive"))
TEAMS, DATASETS = 30, 30
WHEN = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def sync_id(number: int) -> str:
    return f"{number:08x}-7a2c-4d1e-8b3f-{number:012x}"


def _team(rng: random.Random) -> str:
    return f"team-{rng.randrange(TEAMS):02d}"


def _dataset(rng: random.Random) -> str:
    return f"dataset-{rng.randrange(DATASETS):02d}"


# Route families: (glob template, weight). Each names a team and a dataset or month.
FAMILIES = (
    ("{team}/{dataset}/**/*.csv", 60),  # the common case: any CSV below a dataset
    ("{team}/{dataset}/*.parquet", 20),  # flat folder, `*` within one segment
    ("{team}/exports/2026-{month:02d}-*/part-*.csv", 10),  # literal prefix ends mid-segment
    ("{team}/{dataset}/**", 10),  # everything below a dataset (overlaps the CSV routes)
)
# Per bucket, routes with no literal prefix at all: they are candidates for every key of the bucket.
CATCH_ALL = ("*/inbox/*.json", "**/_SUCCESS", "**/manifest.csv")


def route_document(count: int = ROUTES, seed: int = 7) -> dict[str, Any]:
    """`count` routes spread evenly over BUCKETS, as a routes-file document (so they load the real way)."""
    rng = random.Random(seed)
    templates = [template for template, _ in FAMILIES]
    weights = [weight for _, weight in FAMILIES]
    raw: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for position, bucket in enumerate(BUCKETS):
        share = count // len(BUCKETS) + (position < count % len(BUCKETS))
        globs = list(CATCH_ALL[:share])
        while len(globs) < share:
            template = rng.choices(templates, weights)[0]
            key = template.format(team=_team(rng), dataset=_dataset(rng), month=rng.randrange(1, 13))
            if (bucket, key) not in seen:
                seen.add((bucket, key))
                globs.append(key)
        rng.shuffle(globs)
        for key in globs:
            number = len(raw) + 1
            events = ["created", "deleted"] if number % 10 == 0 else ["created"]
            raw.append(
                {
                    "name": f"route-{number:04d}",
                    "s3": {"bucket": bucket, "key": key, "events": events},
                    "syncs": [{"id": sync_id(number)}],
                }
            )
    return {"routes": raw}


def _key_for(route: Route, rng: random.Random) -> str:
    """A key that the route's glob matches (it may match other routes too)."""
    part = f"part-{rng.randrange(10_000):04d}"
    day = f"2026/{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}"
    glob = route.key
    if glob.endswith("/**/*.csv"):
        return glob.removesuffix("**/*.csv") + f"{day}/{part}.csv"
    if glob.endswith("/*.parquet"):
        return glob.removesuffix("*.parquet") + f"{part}.parquet"
    if glob.endswith("-*/part-*.csv"):
        return glob.removesuffix("*/part-*.csv") + f"{rng.randrange(1, 29):02d}/{part}.csv"
    if glob.endswith("/**"):
        return glob.removesuffix("**") + f"raw/{day}/{part}.json.gz"
    return f"{_team(rng)}/{_dataset(rng)}/{part}.tmp"


def triggers(routes: Routes, count: int = RECORDS, seed: int = 11) -> list[Trigger]:
    """`count` S3 records: most hit one to three routes, some none, a few only the catch-all routes."""
    rng = random.Random(seed)
    prefixed = [route for route in routes.routes if route.key_prefix]
    out: list[Trigger] = []
    for number in range(count):
        roll = rng.random()
        if roll < 0.70:
            route = rng.choice(prefixed)
            bucket, key = route.bucket, _key_for(route, rng)
        else:
            bucket = rng.choice(BUCKETS)
            if roll < 0.78:
                key = f"{_team(rng)}/{_dataset(rng)}/2026/05/04/_SUCCESS"
            elif roll < 0.83:
                key = f"{_team(rng)}/inbox/order-{number}.json"
            elif roll < 0.86:
                key = f"{_team(rng)}/{_dataset(rng)}/manifest.csv"
            else:  # noise: temp files, other folders, deep keys, unicode
                key = rng.choice(
                    (
                        f"{_team(rng)}/{_dataset(rng)}/_tmp/{number}.tmp",
                        f"tmp/{number}/spark-staging/{number}.crc",
                        f"{_team(rng)}/scratch/a/b/c/d/e/f/{number}.csv",
                        f"équipe-{number % 7}/données/{number}.csv",
                    )
                )
        out.append(Trigger.s3(bucket=bucket, key=key, event="created", sequencer=f"{number:016X}", time=WHEN))
    return out


def naive(pairs: Sequence[tuple[str, str, Route]], batch: Sequence[Trigger]) -> list[list[Route]]:
    """The baseline: every record against every route, bucket equality and fnmatch."""
    fnmatchcase = fnmatch.fnmatchcase
    return [
        [route for bucket, glob, route in pairs if bucket == trigger.bucket and fnmatchcase(trigger.key, glob)]
        for trigger in batch
    ]


def indexed(routes: Routes, batch: Sequence[Trigger]) -> list[list[Route]]:
    matching = routes.matching
    return [matching(trigger) for trigger in batch]


def linear(routes: Routes, batch: Sequence[Trigger]) -> list[list[Route]]:
    """The reference semantics: every route's own `matches`, in file order."""
    return [[route for route in routes.routes if route.matches(trigger)] for trigger in batch]


def median_ms(run: Callable[[], object], repeats: int) -> float:
    times: list[float] = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(quick: bool) -> dict[str, Any]:
    routes = parse_routes(route_document(), source="benchmarks/matching")
    batch = triggers(routes, QUICK_RECORDS if quick else RECORDS)
    repeats = 1 if quick else REPEATS
    pairs = [(route.bucket, route.key, route) for route in routes.routes]

    got = indexed(routes, batch)
    expected = linear(routes, batch)
    same = sum(a == b for a, b in zip(got, expected, strict=True))
    naive_ms = median_ms(lambda: naive(pairs, batch), repeats)
    indexed_ms = median_ms(lambda: indexed(routes, batch), repeats)
    return {
        "routes": len(routes),
        "records": len(batch),
        "repeats": repeats,
        "naive_ms": naive_ms,
        "indexed_ms": indexed_ms,
        "same": same,
        "matches": Counter(min(len(found), 4) for found in got),
    }


def rows(quick: bool = False, figures: dict[str, Any] | None = None) -> list[Row]:
    """The rows `make bench` prints (benchmarks/report.py)."""
    m = figures if figures is not None else measure(quick)
    size = f"{m['routes']:,} routes x {m['records']:,} records"
    ratio = m["naive_ms"] / m["indexed_ms"] if m["indexed_ms"] > 0 else float("inf")
    naive_text = f"{m['naive_ms']:.0f} ms naive fnmatch"
    return [
        Row(
            f"route matching, {size}",
            f"{m['indexed_ms']:.1f} ms",
            naive_text,
            f"{m['indexed_ms'] / TARGET_MS:.2f}x of target",
            f"≤ {TARGET_MS:.0f} ms",
            m["indexed_ms"] <= TARGET_MS,
        ),
        Row(
            "route matching speed-up",
            f"{m['indexed_ms']:.1f} ms",
            naive_text,
            f"{ratio:.1f}x",
            f"≥ {TARGET_RATIO:.0f}x faster",
            ratio >= TARGET_RATIO,
        ),
        Row(
            "route matching = per-route matches()",
            f"{m['same']:,}/{m['records']:,} records",
            "linear route.matches loop",
            "-",
            "all equal",
            m["same"] == m["records"],
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments("benchmarks.matching", __doc__, "1,000 records, one repetition: a smoke run").parse_args(argv)
    figures = measure(args.quick)
    table = rows(args.quick, figures)
    for name, value, baseline, ratio, target, passed in table:
        print(f"{name}: {value} (baseline {baseline}; {ratio}; target {target}) {'pass' if passed else 'FAIL'}")
    spread = ", ".join(f"{'4+' if n == 4 else n}: {figures['matches'][n]:,}" for n in sorted(figures["matches"]))
    print(f"records by number of matching routes: {spread}; median of {figures['repeats']} run(s)")
    return status(table)


if __name__ == "__main__":
    sys.exit(main())
