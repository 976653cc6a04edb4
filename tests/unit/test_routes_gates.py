"""The routes-file side of gates: `gate:` parsed and refused, key templates filled from a partition, and what
`explain` and `validate` say of a gated route (nothing acts on a gate at run time yet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.routing import Routes, RoutesError, parse_routes
from polytrigger.routing.gates import DEFAULT_TIMEOUT, Gate, KeyTemplate, Manifest, TemplateError, fill, read_bytes
from polytrigger.tools.explain import explain_groups, render, s3_trigger
from polytrigger.tools.validate import render as render_report
from polytrigger.tools.validate import validate

SYNC_A = "11111111-1111-4111-8111-111111111111"
ORDERS_KEY = "exports/orders/dt={date}/**"
VENDOR_KEY = "vendor/{vendor}/{date}/**"


def gated(gate: Any, key: str = ORDERS_KEY, **extra: Any) -> dict[str, Any]:
    return {
        "name": "orders",
        "s3": {"bucket": "acme-landing", "key": key},
        "gate": gate,
        "syncs": [{"id": SYNC_A}],
        **extra,
    }


def routes(*raw: dict[str, Any]) -> Routes:
    return parse_routes({"routes": list(raw)})


def gate_of(gate: Any, key: str = ORDERS_KEY) -> Gate:
    found = routes(gated(gate, key)).named("orders")
    assert found is not None
    assert found.gate is not None
    return found.gate


def problems(gate: Any, key: str = ORDERS_KEY, **extra: Any) -> list[str]:
    with pytest.raises(RoutesError) as caught:
        routes(gated(gate, key, **extra))
    return caught.value.problems


# -- each form -----------------------------------------------------------------------------------------


def test_a_marker_gate() -> None:
    gate = gate_of({"marker": "exports/orders/dt={date}/_SUCCESS", "at_least": {"objects": 40}, "quiet": "10m"})
    assert gate == Gate(marker="exports/orders/dt={date}/_SUCCESS", objects=40, quiet=600, timeout=DEFAULT_TIMEOUT)


def test_keys_in_this_bucket_and_another() -> None:
    gate = gate_of({"keys": ["exports/orders/dt={date}/part-000.parquet", "s3://acme-refs/refs/{date}.csv"]})
    assert gate.keys == (
        KeyTemplate("exports/orders/dt={date}/part-000.parquet"),
        KeyTemplate("refs/{date}.csv", bucket="acme-refs"),
    )


def test_a_manifest_with_its_format_and_checks() -> None:
    gate = gate_of(
        {"manifest": {"key": "vendor/{vendor}/{date}/manifest.json", "format": "csv", "check": ["etag", "size"]}},
        VENDOR_KEY,
    )
    assert gate.manifest == Manifest(key="vendor/{vendor}/{date}/manifest.json", format="csv", check=("size", "etag"))
    assert gate_of({"manifest": {"key": "vendor/{vendor}/{date}/m.json"}}, VENDOR_KEY).manifest == Manifest(
        key="vendor/{vendor}/{date}/m.json"
    )


@pytest.mark.parametrize(
    ("written", "count"),
    [(1024, 1024), ("1GB", 10**9), ("2 GiB", 2 * 2**30), ("500mb", 5 * 10**8), ("7B", 7), ("3", 3)],
)
def test_at_least_bytes_takes_sizes(written: Any, count: int) -> None:
    assert read_bytes(written) == count
    assert gate_of({"at_least": {"bytes": written}}).bytes == count


def test_quiet_alone_is_a_condition_and_timeout_defaults_to_a_day() -> None:
    gate = gate_of({"quiet": "15 minutes", "timeout": "6h"})
    assert (gate.quiet, gate.timeout) == (900, 6 * 3600)
    assert gate_of({"quiet": "15m"}).timeout == DEFAULT_TIMEOUT == 86400


# -- refusals: one line each, naming route, field and value ------------------------------------------


def test_a_gate_needs_a_condition() -> None:
    assert problems({"timeout": "6h"}) == [
        "route 'orders': gate: needs at least one condition of completion: marker, keys, manifest, at_least, quiet"
    ]


def test_a_template_with_an_unknown_placeholder_is_refused_with_a_suggestion() -> None:
    assert problems({"marker": "exports/orders/dt={dat}/_SUCCESS"}) == [
        "route 'orders': gate.marker: placeholder {dat} is not in s3.key 'exports/orders/dt={date}/**'"
        " (its placeholders: {date}); did you mean {date}? (got 'exports/orders/dt={dat}/_SUCCESS')"
    ]
    (found,) = problems({"keys": ["s3://acme-refs/{vendr}.csv"]}, VENDOR_KEY)
    assert "gate.keys[0]: placeholder {vendr}" in found
    assert "did you mean {vendor}?" in found


def test_a_gate_needs_a_placeholder_in_the_glob() -> None:
    (found,) = problems({"marker": "exports/_SUCCESS"}, "exports/**")
    assert found.startswith("route 'orders': gate: the s3.key glob has no placeholder")
    assert "(got 'exports/**')" in found


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"marker": "exports/orders/dt=all/{date}"}, "gate.marker: its key matches s3.key"),
        ({"marker": "exports/orders/{date}/_SUCCESS"}, "gate.marker: its key does not match s3.key"),
        ({"marker": 7}, "gate.marker: must be a key template"),
        ({"marker": "/exports/orders/dt={date}/_SUCCESS"}, "gate.marker: S3 keys never start with '/'"),
        ({"keys": []}, "gate.keys: must be a list of 1 to 100 key templates"),
        ({"keys": ["s3://No_Bucket/x/{date}"]}, "gate.keys[0]: s3://BUCKET/KEY needs an S3 bucket name"),
        ({"keys": ["x/{date}", "x/{date}"]}, "gate.keys[1]: 'x/{date}' is listed twice"),
        ({"manifest": "m.json"}, "gate.manifest: must be a mapping {key: TEMPLATE"),
        ({"manifest": {"key": "exports/orders/dt={date}/m", "format": "ndjson"}}, "did you mean lines?"),
        ({"manifest": {"key": "exports/orders/dt={date}/m", "check": ["md5"]}}, "gate.manifest.check: must be"),
        ({"at_least": {"objects": 0}}, "gate.at_least.objects: must be a whole number of at least 1 (got 0)"),
        ({"at_least": {"bytes": "1 XB"}}, "gate.at_least.bytes: must be a size"),
        ({"at_least": {"files": 3}}, "gate.at_least: must be a mapping of objects and/or bytes"),
        ({"quiet": "10s"}, "gate.quiet: must be a duration from 1 minute to 1 day"),
        ({"quiet": "2h", "timeout": "1h"}, "gate.timeout: must be longer than gate.quiet (2 hours)"),
        ({"quiet": "1m", "qiet": "1m"}, "gate.qiet: unknown field; did you mean quiet?"),
        ({"marker": "exports/orders/dt={Date}/x"}, "gate.marker: placeholder {Date}: a name is a lower-case letter"),
    ],
)
def test_a_malformed_gate_is_refused_in_one_line(gate: dict[str, Any], message: str) -> None:
    found = problems(gate)
    assert len(found) == 1, found
    assert found[0].startswith("route 'orders': "), found
    assert message in found[0], found


def test_a_marker_the_route_would_never_see_is_refused() -> None:
    (found,) = problems({"marker": "exports/orders/dt={date}/_SUCCESS"}, "exports/orders/dt={date}/*.parquet")
    assert "gate.marker: its key does not match s3.key" in found


def test_a_gate_only_on_an_s3_route_that_starts_without_a_debounce() -> None:
    schedule = {"name": "orders", "schedule": "nightly", "gate": {"quiet": "1h"}, "syncs": [{"id": SYNC_A}]}
    with pytest.raises(RoutesError, match="gate: only applies to an s3 route"):
        routes(schedule)
    assert any("gate: only applies to action start" in p for p in problems({"quiet": "1h"}, action="deactivate"))
    assert any("debounce: a gated route" in p for p in problems({"quiet": "1h"}, debounce=60))


# -- templates filled from a partition --------------------------------------------------------------


def test_fill() -> None:
    partition = (("vendor", "acme"), ("date", "2026-12-06"))
    assert fill("vendor/{vendor}/{date}/manifest.json", partition) == "vendor/acme/2026-12-06/manifest.json"
    assert fill("refs/{date}.csv", partition) == "refs/2026-12-06.csv"
    assert fill("{{literal}}/{date}", partition) == "{literal}/2026-12-06"
    with pytest.raises(TemplateError, match=r"no value for placeholder \{day\}"):
        fill("x/{day}", partition)


_VALUE = st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1, max_size=12)


@given(_VALUE, _VALUE)
def test_a_template_like_the_glob_fills_to_a_key_of_the_same_partition(vendor: str, date: str) -> None:
    """Round trip: partition → fill → the glob's partition of that key is the same partition."""
    glob = routes(gated({"quiet": "1h"}, VENDOR_KEY)).routes[0].key_pattern
    assert glob is not None
    partition = (("vendor", vendor), ("date", date))
    key = fill("vendor/{vendor}/{date}/_SUCCESS", partition)
    assert glob.partition(key) == partition


# -- explain and validate -------------------------------------------------------------------------------

MARKER_ROUTE = gated({"marker": "exports/orders/dt={date}/_SUCCESS", "at_least": {"objects": 40}, "quiet": "10m"})


def test_explain_says_the_partition_and_what_the_gate_waits_for() -> None:
    trigger = s3_trigger("s3://acme-landing/exports/orders/dt=2026-12-06/part-001.parquet")
    rows = explain_groups([[trigger]], routes(MARKER_ROUTE))
    assert rows[0]["partition"] == {"date": "2026-12-06"}
    assert rows[0]["gate"] == "marker exports/orders/dt=2026-12-06/_SUCCESS, at least 40 objects, quiet 10 minutes"
    json.dumps(rows)
    lines = render(rows).splitlines()
    assert lines[2:5] == [
        "     partition date=2026-12-06",
        "     gate: marker exports/orders/dt=2026-12-06/_SUCCESS, at least 40 objects, quiet 10 minutes; timeout 1 day",
        "     (starts once per complete partition: the object that completes it starts the syncs)",
    ]


def test_explain_fills_every_condition_for_a_vendor_partition() -> None:
    route = gated(
        {
            "manifest": {"key": "vendor/{vendor}/{date}/manifest.json", "format": "lines", "check": ["size"]},
            "keys": ["s3://acme-refs/refs/{vendor}/{date}.csv", "vendor/{vendor}/{date}/schema.json"],
            "at_least": {"bytes": "1GB"},
        },
        VENDOR_KEY,
    )
    trigger = s3_trigger("s3://acme-landing/vendor/acme/2026-12-06/part-1.csv")
    (row,) = explain_groups([[trigger]], routes(route))
    assert row["partition"] == {"vendor": "acme", "date": "2026-12-06"}
    assert row["gate"] == (
        "keys s3://acme-refs/refs/acme/2026-12-06.csv, vendor/acme/2026-12-06/schema.json,"
        " every key listed in manifest vendor/acme/2026-12-06/manifest.json (lines, checking size), at least 1 GB"
    )


def test_a_route_without_a_gate_explains_as_before() -> None:
    plain = {"name": "orders", "s3": {"bucket": "acme-landing", "key": ORDERS_KEY}, "syncs": [{"id": SYNC_A}]}
    (row,) = explain_groups([[s3_trigger("s3://acme-landing/exports/orders/dt=1/x")]], routes(plain))
    assert "gate" not in row
    assert "partition" not in row
    assert "partition" not in render([row])


def test_validate_summarises_gated_routes(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""\
routes:
  - name: orders-daily
    s3: {{bucket: acme-landing, key: "exports/orders/dt={{date}}/**"}}
    gate: {{marker: "exports/orders/dt={{date}}/_SUCCESS", quiet: 10m, timeout: 6h}}
    syncs: [{{id: {SYNC_A}}}]
""",
        encoding="utf-8",
    )
    report = validate(path)
    assert report.gates == [
        "route orders-daily, per partition (date): marker exports/orders/dt={date}/_SUCCESS, quiet 10 minutes;"
        " timeout 6 hours (starts once per complete partition: the object that completes it starts the syncs)"
    ]
    assert f"  gated: {report.gates[0]}" in render_report(report).splitlines()


def test_a_near_miss_names_the_segment_with_the_placeholder() -> None:
    from polytrigger.routing.near import glob_failure

    assert glob_failure(ORDERS_KEY, "exports/orders/2026-12-06/x") == (
        2,
        "fails at segment 3 (`2026-12-06` vs `dt={date}`)",
    )
    assert glob_failure(ORDERS_KEY, "exports/orders/dt=2026-12-06/x") == (3, "")
