"""Gates without a table: reading manifests, which gate an object reaches and as what, and when a
partition's state is complete (the table's side is tests/integration/test_gates.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from polytrigger.core.triggers import Trigger
from polytrigger.gating.manifests import Entry, ManifestError, matches, parse_manifest
from polytrigger.gating.state import GateState, gate_id, partition_text
from polytrigger.routing import parse_routes

BUCKET = "acme-landing"
SYNC = "c0c0c0c0-0000-4000-8000-00000000000a"
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def routes(gate: str, key: str = "orders/dt={date}/**") -> object:
    return parse_routes(
        yaml.safe_load(f"""
routes:
  - name: orders
    s3: {{bucket: {BUCKET}, key: "{key}"}}
    gate: {gate}
    syncs: [{{id: {SYNC}}}]
""")
    )


def landed(key: str, bucket: str = BUCKET, size: int = 10) -> Trigger:
    return Trigger.s3(bucket=bucket, key=key, event="created", sequencer="01", time=NOW, size=size)


# -- manifests ------------------------------------------------------------------------------------


def test_a_json_manifest_lists_keys_in_its_folder_or_from_the_bucket_root_each_once() -> None:
    data = b'["a.csv", {"key": "b.csv", "size": 3, "etag": "\\"e1\\""}, "other/c.csv", "a.csv"]'
    entries = parse_manifest(data, "json", bucket=BUCKET, manifest_key="vendor/d1/manifest.json")
    assert entries == [
        Entry(BUCKET, "vendor/d1/a.csv"),
        Entry(BUCKET, "vendor/d1/b.csv", 3, "e1"),
        Entry(BUCKET, "other/c.csv"),
    ]


def test_a_json_manifest_may_hold_its_list_under_files() -> None:
    entries = parse_manifest(b'{"files": [{"path": "x.csv"}]}', "json", bucket=BUCKET, manifest_key="m.json")
    assert entries == [Entry(BUCKET, "x.csv")]


def test_a_lines_manifest_skips_blank_lines_and_comments() -> None:
    entries = parse_manifest(b"# sent\n\na.csv\ns3://other-bucket/b.csv\n", "lines", bucket=BUCKET, manifest_key="v/m")
    assert entries == [Entry(BUCKET, "v/a.csv"), Entry("other-bucket", "b.csv")]


def test_a_csv_manifest_reads_its_key_size_and_etag_columns_by_name() -> None:
    data = b"etag,key,size\ne1,a.csv,3\n,b.csv,\n"
    entries = parse_manifest(data, "csv", bucket=BUCKET, manifest_key="v/m.csv")
    assert entries == [Entry(BUCKET, "v/a.csv", 3, "e1"), Entry(BUCKET, "v/b.csv", None, "")]


def test_a_csv_manifest_without_a_header_takes_its_first_column() -> None:
    entries = parse_manifest(b"a.csv,3\nb.csv,4\n", "csv", bucket=BUCKET, manifest_key="m.csv")
    assert [entry.key for entry in entries] == ["a.csv", "b.csv"]


@pytest.mark.parametrize(
    ("data", "form", "says"),
    [
        (b"{not json", "json", "is not JSON"),
        (b'{"rows": []}', "json", "without a list under files"),
        (b"[]", "json", "lists no object"),
        (b"[3]", "json", "entry 0 is neither a key nor an object with a key"),
        (b'[{"key": "a", "size": "big"}]', "json", "size 'big' is not a whole number"),
        (b"\xff\xfe", "lines", "is not UTF-8"),
        (b"s3://bucket-only\n", "lines", "no s3://BUCKET/KEY"),
    ],
)
def test_a_manifest_polytrigger_cannot_read_is_one_line_saying_why(data: bytes, form: str, says: str) -> None:
    with pytest.raises(ManifestError, match=says):
        parse_manifest(data, form, bucket=BUCKET, manifest_key="m")


def test_a_manifest_entry_matches_on_what_the_gate_checks_and_the_entry_gives() -> None:
    entry = Entry(BUCKET, "a", 10, "e1")
    assert matches(entry, ("size", "etag"), 10, '"e1"')
    assert not matches(entry, ("size",), 9, "e1")
    assert not matches(entry, ("etag",), 10, "e2")
    assert matches(entry, (), 9, "e2")  # nothing checked
    assert matches(Entry(BUCKET, "a"), ("size", "etag"), 9, "e2")  # nothing given to check


# -- which gate, and as what ----------------------------------------------------------------------


def test_an_object_of_a_gated_route_makes_no_action_but_an_arrival_in_its_partition() -> None:
    found = routes('{marker: "orders/dt={date}/_SUCCESS"}')
    trigger = landed("orders/dt=2026-12-06/part-1.parquet")
    assert found.actions_for([trigger]) == []  # type: ignore[attr-defined]
    (arrival,) = found.arrivals([trigger])  # type: ignore[attr-defined]
    assert (arrival.partition, arrival.counted, arrival.marker) == ((("date", "2026-12-06"),), True, False)
    (marker,) = found.arrivals([landed("orders/dt=2026-12-06/_SUCCESS")])  # type: ignore[attr-defined]
    assert marker.marker


def test_a_listed_key_in_another_bucket_reaches_its_gate_without_counting_toward_at_least() -> None:
    found = routes('{keys: ["s3://acme-refs/refs/{date}.csv"], at_least: {objects: 2}}')
    (arrival,) = found.arrivals([landed("refs/2026-12-06.csv", bucket="acme-refs")])  # type: ignore[attr-defined]
    assert (arrival.route.name, arrival.partition) == ("orders", (("date", "2026-12-06"),))
    assert arrival.listed
    assert not arrival.counted
    assert found.arrivals([landed("refs/2026-12-06.txt", bucket="acme-refs")]) == []  # type: ignore[attr-defined]


def test_a_deleted_object_is_no_arrival() -> None:
    found = routes('{marker: "orders/dt={date}/_SUCCESS"}')
    deleted = Trigger.s3(bucket=BUCKET, key="orders/dt=1/_SUCCESS", event="deleted", sequencer="2", time=NOW)
    assert found.arrivals([deleted]) == []  # type: ignore[attr-defined]


# -- a partition's state --------------------------------------------------------------------------

PARTITION = (("date", "2026-12-06"),)


def gate_of(text: str) -> object:
    route = routes(text).named("orders")  # type: ignore[attr-defined]
    return route.gate


def test_a_partition_is_ready_only_when_every_condition_holds() -> None:
    gate = gate_of('{marker: "orders/dt={date}/_SUCCESS", at_least: {objects: 2, bytes: 20}}')
    state = GateState("orders", PARTITION, version=1, objects=2, bytes=20, last_at=NOW.isoformat())
    assert state.missing(gate) == ["marker orders/dt=2026-12-06/_SUCCESS missing"]  # type: ignore[arg-type]
    assert not state.ready(gate, NOW.timestamp())  # type: ignore[arg-type]
    marked = GateState("orders", PARTITION, version=1, objects=1, bytes=20, marker_at=NOW.isoformat())
    assert marked.missing(gate) == ["1 of 2 objects"]  # type: ignore[arg-type]
    done = GateState("orders", PARTITION, version=1, objects=2, bytes=20, marker_at=NOW.isoformat())
    assert done.ready(gate, NOW.timestamp())  # type: ignore[arg-type]


def test_a_quiet_partition_is_ready_once_nothing_has_landed_for_the_quiet_period() -> None:
    gate = gate_of("{quiet: 10m}")
    state = GateState("orders", PARTITION, version=1, objects=3, last_at=NOW.isoformat())
    assert not state.ready(gate, NOW.timestamp() + 599)  # type: ignore[arg-type]
    assert state.ready(gate, NOW.timestamp() + 600)  # type: ignore[arg-type]


def test_a_fired_version_is_not_ready_again_until_a_new_version_opens() -> None:
    gate = gate_of("{at_least: {objects: 1}}")
    fired = GateState("orders", PARTITION, version=2, fired=2, objects=1)
    assert fired.complete
    assert not fired.ready(gate, NOW.timestamp())  # type: ignore[arg-type]
    assert GateState("orders", PARTITION, version=3, fired=2, objects=1).ready(gate, NOW.timestamp())  # type: ignore[arg-type]


def test_the_fired_trigger_is_the_same_for_every_caller_and_another_for_the_next_version() -> None:
    first = GateState(
        "orders",
        PARTITION,
        version=1,
        fired=1,
        first_key="orders/dt=2026-12-06/a",
        completed_at="2026-12-07T06:00:00+00:00",
    )
    again = GateState(
        "orders",
        PARTITION,
        version=1,
        fired=1,
        first_key="orders/dt=2026-12-06/a",
        completed_at="2026-12-07T06:00:00+00:00",
    )
    later = GateState(
        "orders",
        PARTITION,
        version=2,
        fired=2,
        first_key="orders/dt=2026-12-06/a",
        completed_at="2026-12-07T07:00:00+00:00",
    )
    assert first.trigger(BUCKET).identity == again.trigger(BUCKET).identity
    assert first.trigger(BUCKET).identity != later.trigger(BUCKET).identity


def test_a_partition_item_is_readable_and_a_long_one_a_digest_within_dynamodbs_key_size() -> None:
    assert gate_id("orders", PARTITION) == "gate#orders#date=2026-12-06"
    assert partition_text(()) == "(whole route)"
    long = gate_id("orders", (("date", "x" * 2000),))
    assert long.startswith("gate#orders#sha256:")
    assert len(long.encode()) <= 1024


def test_a_bucket_a_gate_lists_keys_in_joins_the_buckets_the_s3_rule_listens_to() -> None:
    from polytrigger.route_wiring.plan import plan

    found = routes('{keys: ["s3://acme-refs/refs/{date}.csv"]}')
    assert plan(found).buckets == ("acme-landing", "acme-refs")  # type: ignore[arg-type]


def test_the_wiring_answers_the_manifests_the_functions_may_read_and_nothing_else() -> None:
    from polytrigger.route_wiring.plan import NO_MANIFEST, answer_data, plan

    gated = routes('{manifest: {key: "orders/dt={date}/manifest.json"}}')
    assert answer_data(plan(gated), "d", "", "aws-cn")["ManifestObjects"] == "arn:aws-cn:s3:::acme-landing/orders/dt=*"  # type: ignore[arg-type]
    ungated = routes('{marker: "orders/dt={date}/_SUCCESS"}')
    assert answer_data(plan(ungated), "d", "")["ManifestObjects"] == f"arn:aws:s3:::{NO_MANIFEST}"  # type: ignore[arg-type]
