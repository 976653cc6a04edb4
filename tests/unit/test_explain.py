"""Near misses (`routing.near`) and the triggers `explain` builds from an S3 URL or a schedule name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from polytrigger.core.triggers import Trigger
from polytrigger.routing import Routes, load_routes
from polytrigger.routing.near import glob_failure, near_misses
from polytrigger.tools.explain import (
    PLACEHOLDER_SEQUENCER,
    ExplainInputError,
    explain_groups,
    printable,
    render,
    s3_trigger,
    schedule_trigger,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
ROUTES_YAML = f"""\
routes:
  - name: orders
    s3: {{bucket: acme-landing, key: "orders/*.csv"}}
    syncs: [{{id: {SYNC}}}]
  - name: snapshots
    s3: {{bucket: acme-landing, key: "snapshots/**/*.parquet", events: [created]}}
    syncs: [{{id: {SYNC}}}]
  - name: exports
    s3: {{bucket: acme-exports, key: "daily/*/*.csv"}}
    syncs: [{{id: {SYNC}}}]
  - name: nightly-full
    schedule: nightly
    syncs: [{{id: {SYNC}}}]
  - name: weekend-freeze
    schedule: freeze
    action: deactivate
    syncs: [{{id: {SYNC}}}]
"""


@pytest.fixture
def routes(tmp_path: Path) -> Routes:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES_YAML, encoding="utf-8")
    return load_routes(path)


def s3(key: str, bucket: str = "acme-landing", event: str = "created") -> Trigger:
    return Trigger.s3(
        bucket=bucket, key=key, event="deleted" if event == "deleted" else "created", sequencer="", time=NOW
    )


def test_a_key_glob_fails_at_the_segment_that_does_not_fit(routes: Routes) -> None:
    [first, *_] = near_misses(routes.routes, s3("orders/2026/x.csv"))

    assert first == "route orders: the key glob `orders/*.csv` fails at segment 2 (`2026` vs `*.csv`)"


def test_a_key_with_more_folders_than_the_glob(routes: Routes) -> None:
    [first, *_] = near_misses(routes.routes, s3("orders/a.csv/b"))

    assert first == "route orders: the key glob `orders/*.csv` fails: the key has more folders than the glob"


def test_a_key_with_fewer_folders_than_the_glob() -> None:
    assert glob_failure("orders/*.csv", "orders") == (1, "fails: the key has fewer folders than the glob")
    assert glob_failure("orders/**", "orders") == (1, "fails: the key has fewer folders than the glob")


def test_a_glob_with_double_star_is_checked_from_both_ends() -> None:
    assert glob_failure("snapshots/**/*.parquet", "snapshots/a/b/c.csv") == (
        1,
        "fails at segment 4 (`c.csv` vs `*.parquet`)",
    )
    assert glob_failure("snapshots/**/*.parquet", "snaps/a.parquet") == (
        0,
        "fails at segment 1 (`snaps` vs `snapshots`)",
    )
    assert glob_failure("snapshots/**/*.parquet", "snapshots/a/b.parquet") == (2, "")
    assert glob_failure("a/**/m/**/z", "a/x/y/z")[1] == "fails between its `**` (no place for its middle segments)"


def test_an_unsubscribed_event_kind_comes_first_when_the_key_fits(routes: Routes) -> None:
    misses = near_misses(routes.routes, s3("snapshots/2026/a.parquet", event="deleted"))

    assert misses[0] == "route snapshots: event kind `deleted` not subscribed (events: created)"
    assert len(misses) == 2  # the bucket's two routes; the other bucket's route is no reason


def test_a_key_in_a_routed_bucket_is_never_offered_another_buckets_route(routes: Routes) -> None:
    """`daily/x/y.csv` fits route exports' glob, but exports listens to acme-exports: the key landed in
    acme-landing, where orders and snapshots are the routes that could have matched."""
    misses = near_misses(routes.routes, s3("daily/x/y.csv"))

    assert misses == [
        "route orders: the key glob `orders/*.csv` fails at segment 1 (`daily` vs `orders`)",
        "route snapshots: the key glob `snapshots/**/*.parquet` fails at segment 1 (`daily` vs `snapshots`)",
    ]
    assert all("bucket" not in miss and "exports" not in miss for miss in misses)


def test_another_bucket_is_named_and_a_close_one_is_offered(routes: Routes) -> None:
    misses = near_misses(routes.routes, s3("orders/x.csv", bucket="acme-landng"))

    assert misses[0] == "route orders (bucket acme-landing): other bucket (did you mean acme-landing?)"
    far = near_misses(routes.routes, s3("daily/x/y.csv", bucket="elsewhere"))
    assert far[0] == "route exports (bucket acme-exports): other bucket"


def test_a_misspelt_schedule_is_matched_to_the_closest_name(routes: Routes) -> None:
    trigger = Trigger.scheduled(schedule="nighty", time=NOW)

    misses = near_misses(routes.routes, trigger)

    assert misses == [
        "route nightly-full: schedule `nightly`, not `nighty` (did you mean nightly?)",
        "route weekend-freeze: schedule `freeze`, not `nighty`",
    ]


def test_near_misses_are_limited_and_leave_out_s3_routes_for_a_schedule(routes: Routes) -> None:
    assert near_misses(routes.routes, s3("x"), limit=1) == [
        "route orders: the key glob `orders/*.csv` fails at segment 1 (`x` vs `orders`)"
    ]
    assert near_misses(routes.routes, s3("x"), limit=0) == []
    assert all("schedule" in miss for miss in near_misses(routes.routes, Trigger.scheduled(schedule="x", time=NOW)))


def test_near_misses_echo_key_text_short_and_on_one_line(routes: Routes) -> None:
    key = "orders/" + "\n\x1b" * 1000 + "/x.csv"

    misses = near_misses(routes.routes, s3(key))

    assert all("\n" not in miss and "\x1b" not in miss and len(miss) < 300 for miss in misses)
    assert "\\n\\x1b" in misses[0]


def test_a_trigger_no_route_matches_carries_its_near_misses(routes: Routes) -> None:
    [row] = explain_groups([[s3("orders/2026/x.csv")]], routes)

    assert row["route"] is None
    assert row["near_misses"][0].startswith("route orders: the key glob")
    text = render([row], ["note: x"])
    assert "  -> no route matches: nothing would happen\n     closest routes:\n     - route orders:" in text
    assert text.endswith("\nnote: x")


def test_an_s3_url_is_taken_verbatim() -> None:
    trigger = s3_trigger("s3://acme-landing/exports/Kund%C3%A9n März 2026.csv", deleted=True, now=NOW)

    assert (trigger.bucket, trigger.key, trigger.event) == (
        "acme-landing",
        "exports/Kund%C3%A9n März 2026.csv",
        "deleted",
    )
    assert (trigger.sequencer, trigger.time) == (PLACEHOLDER_SEQUENCER, NOW)
    assert s3_trigger("s3://acme-landing/a/../b").key == "a/../b"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://acme-landing/", "s3://acme-landing/ names no object"),
        ("s3://acme-landing", "s3://acme-landing/ names no object"),
        ("s3:///key", "not an S3 bucket name: ''"),
        ("s3://Acme_Landing/key", "not an S3 bucket name"),
        ("s3://a..b/key", "not an S3 bucket name"),
        ("s3://acme-landing/" + "é" * 600, "the key is 1200 bytes long; S3 keys are at most 1024 bytes"),
    ],
)
def test_a_bad_s3_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(ExplainInputError, match=message.replace("..", r"\.\.")) as caught:
        s3_trigger(url)
    assert len(str(caught.value)) < 120


def test_a_schedule_trigger_defaults_to_now_and_checks_its_name_and_time() -> None:
    assert schedule_trigger("nightly", now=NOW) == Trigger.scheduled(schedule="nightly", time=NOW)
    assert schedule_trigger("nightly", "2026-11-23T03:00:00+01:00").time == NOW
    with pytest.raises(ExplainInputError, match="not a schedule name"):
        schedule_trigger("night ly")
    with pytest.raises(ExplainInputError, match="--time must be an ISO-8601 time"):
        schedule_trigger("nightly", "tomorrow")


def test_printable_keeps_unicode_and_escapes_control_characters() -> None:
    assert printable("s3://b/März 2026.csv") == "s3://b/März 2026.csv"
    assert printable("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
