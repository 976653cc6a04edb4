"""The route index: `Routes.matching` returns exactly what a linear `route.matches` loop would, in file order.

Routes are indexed by (bucket, event) and by the folder part of their glob's literal prefix, and checked
against a literal suffix before the compiled glob; none of that may change which routes match or their
order. Globs and keys are drawn from a small vocabulary (so they collide often), with empty literal
prefixes (`**`, `*.csv`), prefixes ending mid-segment (`orders/2026-*`) and unicode.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from benchmarks import matching as bench
from polytrigger.core.triggers import S3EventKind, Trigger
from polytrigger.routing import Route, Routes, parse_routes
from polytrigger.routing.globs import compile_glob, literal_prefix, literal_suffix

WHEN = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
BUCKETS = ("acme-landing", "acme-exports")
WORDS = ("orders", "2026-05", "2026-", "a", "b.csv", "x.csv", ".csv", "_SUCCESS", "données", "日本", "é", "")
CHARS = "ab-./é日"


def trigger(key: str, bucket: str = BUCKETS[0], event: S3EventKind = "created") -> Trigger:
    return Trigger.s3(bucket=bucket, key=key, event=event, sequencer="01", time=WHEN)


def routes_of(specs: list[tuple[str, str, list[str]]]) -> Routes:
    raw: list[dict[str, Any]] = [
        {
            "name": f"r{number}",
            "s3": {"bucket": bucket, "key": key, "events": events},
            "syncs": [{"id": bench.sync_id(number + 1)}],
        }
        for number, (bucket, key, events) in enumerate(specs)
    ]
    return parse_routes({"routes": raw})


def linear(routes: Routes, t: Trigger) -> list[Route]:
    return [route for route in routes.routes if route.matches(t)]


def assert_same(routes: Routes, t: Trigger) -> None:
    assert routes.matching(t) == linear(routes, t), t.key


# A glob segment: `**` alone, or literal text with at most one `*` or `?` somewhere in it.
segment_globs = st.one_of(
    st.just("**"),
    st.builds(
        lambda head, wild, tail: head + wild + tail,
        st.sampled_from(WORDS) | st.text(CHARS, max_size=3),
        st.sampled_from(("", "*", "?")),
        st.sampled_from(WORDS) | st.text(CHARS.replace("/", ""), max_size=3),
    ).filter(lambda text: "/" not in text and text != ""),
)
globs = st.lists(segment_globs, min_size=1, max_size=4).map("/".join)
words_without_slash = st.text(CHARS.replace("/", ""), max_size=4)


@st.composite
def key_for(draw: st.DrawFn, glob: str) -> str:
    """A key made from the glob by filling its wildcards (it usually matches; sometimes it is mangled)."""
    out: list[str] = []
    for part in glob.split("/"):
        if part == "**":
            out.extend(draw(st.lists(st.sampled_from(WORDS[:6]), max_size=2)))
            continue
        out.append(part.replace("*", draw(words_without_slash)).replace("?", draw(st.sampled_from("aé1"))))
    key = "/".join(out)
    mangle = draw(st.sampled_from(("", "", "", "cut", "extend", "x")))
    if mangle == "cut":
        key = key[: draw(st.integers(0, len(key)))]
    elif mangle == "extend":
        key += draw(st.sampled_from(("/", "/a.csv", "x", ".csv")))
    elif mangle == "x":
        key = "x" + key
    return key


route_specs = st.lists(
    st.tuples(
        st.sampled_from(BUCKETS),
        globs,
        st.sampled_from((["created"], ["deleted"], ["created", "deleted"])),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=route_specs, data=st.data())
def test_indexed_matching_equals_the_linear_loop(specs: list[tuple[str, str, list[str]]], data: st.DataObject) -> None:
    for _, glob, _ in specs:
        try:
            compile_glob(glob)
        except ValueError:
            assume(False)
    routes = routes_of(specs)
    keys = [data.draw(key_for(glob)) for _, glob, _ in specs]
    keys += data.draw(st.lists(st.text(CHARS, max_size=12), max_size=5))
    for key in keys:
        for bucket in (*BUCKETS, "elsewhere"):
            for event in ("created", "deleted"):
                assert_same(routes, trigger(key, bucket, event))


@given(glob=globs, data=st.data())
def test_every_key_a_glob_matches_has_its_literal_prefix_and_suffix(glob: str, data: st.DataObject) -> None:
    try:
        pattern = compile_glob(glob)
    except ValueError:
        assume(False)
    key = data.draw(key_for(glob))
    if pattern.fullmatch(key) is not None:
        assert key.startswith(literal_prefix(glob))
        assert key.endswith(literal_suffix(glob))


@pytest.mark.parametrize(
    ("glob", "suffix"),
    [
        ("**", ""),
        ("*.csv", ".csv"),
        ("**/_SUCCESS", "_SUCCESS"),
        ("orders/**/x.csv", "x.csv"),
        ("orders/*/x.csv", "/x.csv"),
        ("orders/2026-?", ""),
        ("orders/a.csv", "orders/a.csv"),
        ("données/**/日本.csv", "日本.csv"),
    ],
)
def test_literal_suffix(glob: str, suffix: str) -> None:
    assert literal_suffix(glob) == suffix


EDGE_ROUTES = [
    (BUCKETS[0], "orders/2026-*/x.csv", ["created"]),  # prefix ends mid-segment, in a folder
    (BUCKETS[0], "**", ["created"]),  # empty prefix: every key of the bucket
    (BUCKETS[0], "orders/**/*.csv", ["created", "deleted"]),
    (BUCKETS[0], "*.csv", ["created"]),  # empty prefix, `*` in the first segment
    (BUCKETS[0], "orders/2026-*", ["created"]),  # prefix ends mid-segment
    (BUCKETS[0], "**/_SUCCESS", ["created"]),
    (BUCKETS[0], "données/日本/**", ["created"]),
    (BUCKETS[0], "orders/a.csv", ["deleted"]),  # no wildcard at all
    (BUCKETS[1], "orders/**", ["created"]),
]
EDGE_KEYS = [
    "",
    "a.csv",
    "_SUCCESS",
    "orders/_SUCCESS",
    "orders/a.csv",
    "orders/2026-05",
    "orders/2026-05/x.csv",
    "orders/2026-/x.csv",
    "orders/2026/x.csv",
    "orders/2026-05/deep/x.csv",
    "données/日本/a.csv",
    "données/日本",
    "données/日本/",
    "a/b/c/d/e/f/g/h/_SUCCESS",
    "/orders/a.csv",
    "orders//a.csv",
]


@pytest.mark.parametrize("key", EDGE_KEYS)
@pytest.mark.parametrize("event", ["created", "deleted"])
@pytest.mark.parametrize("bucket", [*BUCKETS, "elsewhere"])
def test_edge_keys_match_as_the_linear_loop(key: str, event: S3EventKind, bucket: str) -> None:
    assert_same(routes_of(EDGE_ROUTES), trigger(key, bucket, event))


def test_matches_from_several_folders_come_back_in_file_order() -> None:
    routes = routes_of(EDGE_ROUTES)
    names = [route.name for route in routes.matching(trigger("orders/2026-05/x.csv"))]
    # r0 (folder orders/), r1 (no folder), r2 (orders/): interleaved across index levels
    assert names == ["r0", "r1", "r2"]
    assert [route.name for route in routes.matching(trigger("orders/2026-05"))] == ["r1", "r4"]
    assert [route.name for route in routes.matching(trigger("orders/a.csv", event="deleted"))] == ["r2", "r7"]


def test_schedules_and_unknown_buckets() -> None:
    document = {
        "routes": [
            {"name": "nightly", "schedule": "nightly", "syncs": [{"id": bench.sync_id(1)}]},
            {"name": "s3", "s3": {"bucket": BUCKETS[0], "key": "**"}, "syncs": [{"id": bench.sync_id(2)}]},
            {"name": "nightly-2", "schedule": "nightly", "syncs": [{"id": bench.sync_id(3)}]},
        ]
    }
    routes = parse_routes(document)
    scheduled = Trigger.scheduled(schedule="nightly", time=WHEN)
    assert [route.name for route in routes.matching(scheduled)] == ["nightly", "nightly-2"]
    assert routes.matching(Trigger.scheduled(schedule="hourly", time=WHEN)) == []
    assert routes.matching(trigger("a", bucket="elsewhere")) == []
    assert routes.matching(trigger("a", event="deleted")) == []
    assert [route.name for route in routes.matching(trigger("a"))] == ["s3"]


def test_the_benchmark_routes_and_records_agree_with_the_linear_loop() -> None:
    routes = parse_routes(bench.route_document(200, seed=3))
    batch = bench.triggers(routes, 500, seed=5)
    assert len(routes) == 200
    assert bench.indexed(routes, batch) == bench.linear(routes, batch)
    assert any(bench.indexed(routes, batch))  # the records do hit routes


def test_benchmark_smoke_rows_and_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rows = bench.rows(quick=True)
    assert len(rows) == 3
    for row in rows:
        assert len(row) == 6
        assert all(isinstance(cell, str) for cell in row[:5])
        assert isinstance(row[5], bool)
    assert rows[0][0].startswith("route matching, 1,000 routes x 1,000 records")
    assert rows[2][5], rows[2]  # correctness, not timing: indexed == linear on every record

    figures = {
        "routes": 1000,
        "records": 10,
        "repeats": 1,
        "naive_ms": 500.0,
        "indexed_ms": 200.0,
        "same": 10,
        "matches": {1: 10},
    }
    monkeypatch.setattr(bench, "measure", lambda quick: figures)
    assert bench.main(["--quick"]) == 1  # 200 ms and 2.5x: both targets missed
    out = capsys.readouterr().out
    assert out.count("FAIL") == 2
    assert "2.5x" in out
    figures.update(indexed_ms=5.0)
    assert bench.main([]) == 0
    assert "FAIL" not in capsys.readouterr().out
