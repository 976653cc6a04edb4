"""Gates on the local stack: each form of completion, out of order, twice, at once, after a crash.

The S3 function is invoked as Lambda would; DynamoDB Local keeps the gates, moto S3 holds the
manifests, the fake Polytomic counts the starts. Time is the stack's clock (a quiet period, a timeout
and an owed start's grace are jumps of it).
"""

from __future__ import annotations

import copy
import json
import os
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from polytrigger.events import s3_triggers
from polytrigger.gating.state import read_gate
from polytrigger.gating.store import OWED_GRACE, DynamoGates
from polytrigger.routing import load_routes
from polytrigger.routing.model import arrival
from tests.integration.dispatch_support import BUCKET, Dispatch, File, s3_file

ORDERS = "c0c0c0c0-0000-4000-8000-000000000001"
VENDOR = "c0c0c0c0-0000-4000-8000-000000000002"
REFS = "c0c0c0c0-0000-4000-8000-000000000003"
SIZED = "c0c0c0c0-0000-4000-8000-000000000004"
QUIET = "c0c0c0c0-0000-4000-8000-000000000005"
PARTS = 40
TIMEOUT_HOURS = 2

ROUTES = f"""\
routes:
  - name: orders
    s3: {{bucket: {BUCKET}, key: "orders/dt={{date}}/**"}}
    gate: {{marker: "orders/dt={{date}}/_SUCCESS", at_least: {{objects: {PARTS}}}}}
    syncs: [{{id: {ORDERS}}}]
  - name: vendor
    s3: {{bucket: {BUCKET}, key: "vendor/{{date}}/**"}}
    gate:
      manifest: {{key: "vendor/{{date}}/manifest.json", format: json, check: [size]}}
      timeout: {TIMEOUT_HOURS}h
    syncs: [{{id: {VENDOR}}}]
  - name: refs
    s3: {{bucket: {BUCKET}, key: "refs/{{date}}/**"}}
    gate: {{keys: ["refs/{{date}}/customers.csv", "refs/{{date}}/products.csv"]}}
    syncs: [{{id: {REFS}}}]
  - name: sized
    s3: {{bucket: {BUCKET}, key: "sized/{{date}}/**"}}
    gate: {{at_least: {{bytes: 3KB}}}}
    syncs: [{{id: {SIZED}}}]
  - name: quiet
    s3: {{bucket: {BUCKET}, key: "quiet/{{date}}/**"}}
    gate: {{quiet: 2m}}
    syncs: [{{id: {QUIET}}}]
"""


@pytest.fixture
def gated(dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Dispatch:
    """The dispatch fixture (its queue, pump and the stack's clock) with the gated routes and their syncs."""
    from polytrigger import bootstrap

    routes = tmp_path / "gated-routes.yaml"
    routes.write_text(ROUTES, encoding="utf-8")
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    for sync in (ORDERS, VENDOR, REFS, SIZED, QUIET):
        dispatch.stack.fake.add_sync(sync, kind="model")
    s3 = dispatch.stack.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)
    bootstrap.reset()
    return dispatch


def day() -> str:
    """A partition of its own for each test (the table is shared by the module's tests)."""
    return f"2026-12-{random.randint(10, 28)}-{uuid.uuid4().hex[:8]}"


def landed(dispatch: Dispatch, key: str, size: int = 1024) -> File:
    file = s3_file(key, datetime.fromtimestamp(dispatch.now(), UTC))
    file.event["Records"][0]["s3"]["object"]["size"] = size
    return file


def deliver(dispatch: Dispatch, file: File) -> dict[str, Any]:
    return dispatch.polytrigger.s3(file.event)


def starts(dispatch: Dispatch, sync: str) -> int:
    return len(dispatch.stack.fake.executions(sync))


def parts(dispatch: Dispatch, prefix: str, count: int = PARTS) -> list[File]:
    return [landed(dispatch, f"{prefix}/part-{index:03}.parquet") for index in range(count)]


def test_a_marker_partition_starts_once_when_its_marker_and_every_part_have_landed(gated: Dispatch) -> None:
    prefix = f"orders/dt={day()}"
    for file in parts(gated, prefix):
        assert deliver(gated, file).get("outcomes", []) == []
    assert starts(gated, ORDERS) == 0  # every part, no marker

    answer = deliver(gated, landed(gated, f"{prefix}/_SUCCESS"))

    assert [o["status"] for o in answer["outcomes"]] == ["started"]  # in the marker's own invocation
    assert starts(gated, ORDERS) == 1


def test_a_marker_that_lands_before_its_data_waits_for_the_data(gated: Dispatch) -> None:
    prefix = f"orders/dt={day()}"
    deliver(gated, landed(gated, f"{prefix}/_SUCCESS"))
    files = parts(gated, prefix)
    for file in files[:-1]:
        deliver(gated, file)
    assert starts(gated, ORDERS) == 0

    answer = deliver(gated, files[-1])

    assert [o["status"] for o in answer["outcomes"]] == ["started"]
    assert starts(gated, ORDERS) == 1


def test_forty_parts_and_a_marker_delivered_twice_out_of_order_by_ten_invocations_at_once_start_once(
    gated: Dispatch,
) -> None:
    prefix = f"orders/dt={day()}"
    files = [*parts(gated, prefix), landed(gated, f"{prefix}/_SUCCESS")]
    events = [file.event for file in files] + [copy.deepcopy(file.event) for file in files]
    random.Random(7).shuffle(events)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(gated.polytrigger.s3, events))

    assert [o["status"] for answer in answers for o in answer.get("outcomes", [])] == ["started"]
    assert starts(gated, ORDERS) == 1
    state = read_gate(gated.stack.dynamodb_client(), gated.stack.table_name, "orders", (("date", prefix[10:]),))
    assert state is not None
    assert (state.version, state.fired, state.objects, state.owed) == (1, 1, PARTS, 0)


def test_a_partition_delivered_again_after_completion_starts_once_more(gated: Dispatch) -> None:
    prefix = f"orders/dt={day()}"
    for file in [*parts(gated, prefix), landed(gated, f"{prefix}/_SUCCESS")]:
        deliver(gated, file)
    assert starts(gated, ORDERS) == 1
    first_again = parts(gated, prefix)  # the same keys, new uploads
    for file in first_again:
        deliver(gated, file)
        deliver(gated, file)  # and each delivered twice
    assert starts(gated, ORDERS) == 1  # the new version waits for its marker

    deliver(gated, landed(gated, f"{prefix}/_SUCCESS"))

    assert starts(gated, ORDERS) == 2


def test_a_redelivered_event_after_completion_starts_nothing_more(gated: Dispatch) -> None:
    prefix = f"orders/dt={day()}"
    files = [*parts(gated, prefix), landed(gated, f"{prefix}/_SUCCESS")]
    for file in files:
        deliver(gated, file)
    for file in files:
        deliver(gated, file)  # EventBridge delivers at least once

    assert starts(gated, ORDERS) == 1


def put_manifest(dispatch: Dispatch, key: str, entries: list[dict[str, Any]]) -> File:
    body = json.dumps(entries).encode()
    dispatch.stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return landed(dispatch, key, size=len(body))


def test_a_manifest_starts_its_route_when_every_file_it_lists_has_landed_before_or_after_it(
    gated: Dispatch,
) -> None:
    folder = f"vendor/{day()}"
    names = [f"file-{index}.csv" for index in range(6)]
    deliver(gated, landed(gated, f"{folder}/{names[0]}"))
    deliver(gated, landed(gated, f"{folder}/{names[1]}"))
    manifest = put_manifest(gated, f"{folder}/manifest.json", [{"key": name, "size": 1024} for name in names])
    assert deliver(gated, manifest).get("outcomes", []) == []
    for name in names[2:-1]:
        deliver(gated, landed(gated, f"{folder}/{name}"))
    assert starts(gated, VENDOR) == 0

    answer = deliver(gated, landed(gated, f"{folder}/{names[-1]}"))

    assert [o["status"] for o in answer["outcomes"]] == ["started"]
    assert starts(gated, VENDOR) == 1


def test_a_listed_file_of_another_size_than_the_manifest_says_does_not_complete_it(gated: Dispatch) -> None:
    folder = f"vendor/{day()}"
    manifest = put_manifest(gated, f"{folder}/manifest.json", [{"key": "a.csv", "size": 1024}])
    deliver(gated, manifest)

    deliver(gated, landed(gated, f"{folder}/a.csv", size=10))  # truncated
    assert starts(gated, VENDOR) == 0
    deliver(gated, landed(gated, f"{folder}/a.csv", size=1024))  # sent again, whole

    assert starts(gated, VENDOR) == 1


def test_a_manifest_naming_a_file_that_never_lands_is_reported_once_at_the_timeout_naming_it(
    gated: Dispatch,
) -> None:
    folder = f"vendor/{day()}"
    manifest = put_manifest(gated, f"{folder}/manifest.json", [{"key": "here.csv"}, {"key": "never.csv"}])
    deliver(gated, manifest)
    deliver(gated, landed(gated, f"{folder}/here.csv"))
    gated.polytrigger.poller()
    assert "gate timed out" not in gated.polytrigger.log_text()

    gated.wait(TIMEOUT_HOURS * 3600 + 60)
    gated.polytrigger.poller()
    gated.polytrigger.poller()

    reports = [line for line in gated.polytrigger.log_lines() if "gate timed out" in str(line.get("message"))]
    assert len(reports) == 1
    assert f"s3://{BUCKET}/{folder}/never.csv" in reports[0]["message"]
    assert f"{folder}/here.csv" not in reports[0]["message"]
    assert reports[0]["level"] == "ERROR"
    assert starts(gated, VENDOR) == 0


def test_a_manifest_that_is_not_json_is_one_error_line_and_the_gate_waits(gated: Dispatch) -> None:
    folder = f"vendor/{day()}"
    gated.stack.client("s3").put_object(Bucket=BUCKET, Key=f"{folder}/manifest.json", Body=b"not json")

    answer = deliver(gated, landed(gated, f"{folder}/manifest.json"))

    assert answer.get("outcomes", []) == []
    errors = [line for line in gated.polytrigger.log_lines() if "is not JSON" in str(line.get("message"))]
    assert len(errors) == 1
    assert "Traceback" not in gated.polytrigger.log_text()


def test_a_gate_of_listed_keys_starts_when_each_has_landed(gated: Dispatch) -> None:
    folder = f"refs/{day()}"
    deliver(gated, landed(gated, f"{folder}/products.csv"))
    deliver(gated, landed(gated, f"{folder}/other.csv"))  # in the partition, not listed
    assert starts(gated, REFS) == 0

    deliver(gated, landed(gated, f"{folder}/customers.csv"))

    assert starts(gated, REFS) == 1


def test_a_gate_of_bytes_starts_when_enough_have_landed(gated: Dispatch) -> None:
    folder = f"sized/{day()}"
    deliver(gated, landed(gated, f"{folder}/a", size=1000))
    deliver(gated, landed(gated, f"{folder}/a", size=1000))  # a new upload of the same key counts once
    deliver(gated, landed(gated, f"{folder}/b", size=1000))
    assert starts(gated, SIZED) == 0

    deliver(gated, landed(gated, f"{folder}/c", size=1000))

    assert starts(gated, SIZED) == 1


def test_a_quiet_gate_starts_once_no_object_has_landed_for_its_quiet_period(gated: Dispatch) -> None:
    folder = f"quiet/{day()}"
    deliver(gated, landed(gated, f"{folder}/a"))
    gated.wait(90)
    deliver(gated, landed(gated, f"{folder}/b"))  # the quiet period starts again
    gated.wait(90)
    gated.polytrigger.poller()
    assert gated.pump.drain(timeout=5) == []

    gated.wait(40)
    gated.polytrigger.poller()
    deliveries = gated.pump.drain(timeout=15)

    assert [o["status"] for d in deliveries for o in d.outcomes] == ["started"]
    assert starts(gated, QUIET) == 1
    gated.wait(600)
    gated.polytrigger.poller()
    assert gated.pump.drain(timeout=5) == []


def test_a_start_owed_by_an_invocation_that_died_after_firing_is_made_by_the_poller_once(gated: Dispatch) -> None:
    """The completing invocation claimed the firing and died before starting: the gate keeps the start
    owed, a redelivery of the event does not start twice, and the poller makes it after its grace."""
    prefix = f"refs/{day()}"
    stack = gated.stack
    store = DynamoGates(stack.dynamodb_client(), stack.table_name, clock=gated.now)
    routes = load_routes(os.environ["ROUTES_FILE"])
    route = routes.named("refs")
    assert route is not None
    files = [landed(gated, f"{prefix}/customers.csv"), landed(gated, f"{prefix}/products.csv")]
    deliver(gated, files[0])
    state = store.arrive(arrival(route, (("date", prefix[5:]),), s3_triggers(files[1].event)[0], counted=True))
    assert store.fire(state) is not None  # ... and the invocation dies here
    deliver(gated, files[1])  # its event comes again
    assert starts(gated, REFS) == 0

    gated.wait(OWED_GRACE + 1)
    gated.polytrigger.poller()
    gated.pump.drain(timeout=15)
    gated.polytrigger.poller()
    gated.pump.drain(timeout=5)

    assert starts(gated, REFS) == 1


def test_status_says_what_the_gate_of_a_file_still_waits_for_and_then_which_run_has_it(gated: Dispatch) -> None:
    from polytrigger.tools.fate import Records, fate_of

    stack = gated.stack
    prefix = f"orders/dt={day()}"
    files = parts(gated, prefix)
    for file in files[:38]:
        deliver(gated, file)
    routes = load_routes(os.environ["ROUTES_FILE"])
    records = Records(stack.dynamodb_client(), stack.table_name)

    (waiting,) = fate_of(BUCKET, files[0].key, routes, records).syncs
    assert waiting.state == "waiting"
    assert "38 of 40 objects" in waiting.reason
    assert f"marker {prefix}/_SUCCESS missing" in waiting.reason

    for file in [*files[38:], landed(gated, f"{prefix}/_SUCCESS")]:
        deliver(gated, file)
    (done,) = fate_of(BUCKET, files[0].key, routes, records).syncs
    assert done.state == "covered"  # the partition's run has it (the start was the partition's, not the file's)
    assert done.execution_id == gated.stack.fake.executions(ORDERS)[0].id


def test_a_manifest_entry_whose_count_failed_is_counted_when_its_event_comes_again(
    gated: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is counted in its partition, then counting it in the manifest fails (throttled): the
    invocation fails, and the event delivered again finishes the count."""
    from polytrigger.gating.store import GatesUnavailable

    folder = f"vendor/{day()}"
    deliver(gated, put_manifest(gated, f"{folder}/manifest.json", [{"key": "a.csv"}, {"key": "b.csv"}]))
    deliver(gated, landed(gated, f"{folder}/a.csv"))
    from polytrigger.gating import manifest_checks

    flip, failed = manifest_checks.flip, list[Any]()

    def throttled(*args: Any) -> bool:
        if not failed:
            failed.append(args)
            raise GatesUnavailable("the gate's table: ProvisionedThroughputExceededException")
        return flip(*args)

    monkeypatch.setattr(manifest_checks, "flip", throttled)
    last = landed(gated, f"{folder}/b.csv")
    with pytest.raises(GatesUnavailable):
        deliver(gated, last)
    assert starts(gated, VENDOR) == 0
    (said,) = [line for line in gated.polytrigger.log_lines() if line.get("status") == "gate_unavailable"]
    assert said["level"] == "ERROR"
    assert said["message"].endswith("the event fails and is delivered again")

    answer = deliver(gated, last)  # Lambda's retry

    assert [o["status"] for o in answer["outcomes"]] == ["started"]
    assert starts(gated, VENDOR) == 1


def test_a_manifest_read_again_counts_the_files_that_landed_before_it_once(gated: Dispatch) -> None:
    """Every delivery of the manifest counts the files already there (a first reader may have failed after
    writing the total); a file counted twice would complete the partition early."""
    folder = f"vendor/{day()}"
    for name in ("a.csv", "b.csv"):
        deliver(gated, landed(gated, f"{folder}/{name}"))
    listed = put_manifest(gated, f"{folder}/manifest.json", [{"key": n} for n in ("a.csv", "b.csv", "c.csv")])
    deliver(gated, listed)
    deliver(gated, listed)  # delivered again
    deliver(gated, landed(gated, f"{folder}/a.csv"))  # and a new upload of a counted file
    assert starts(gated, VENDOR) == 0

    deliver(gated, landed(gated, f"{folder}/c.csv"))

    assert starts(gated, VENDOR) == 1
    state = read_gate(gated.stack.dynamodb_client(), gated.stack.table_name, "vendor", (("date", folder[7:]),))
    assert state is not None
    assert (state.manifest_total, state.manifest_present) == (3, 3)


def test_a_timeout_report_whose_reads_failed_is_made_when_the_poll_is_retried(
    gated: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger.gating.store import GatesUnavailable

    folder = f"vendor/{day()}"
    deliver(gated, put_manifest(gated, f"{folder}/manifest.json", [{"key": "never.csv"}]))
    gated.wait(TIMEOUT_HOURS * 3600 + 60)
    missing, failed = DynamoGates.missing, list[Any]()

    def throttled(self: DynamoGates, *args: Any, **kwargs: Any) -> list[str]:
        if not failed:
            failed.append(args)
            raise GatesUnavailable("the gate's table: ProvisionedThroughputExceededException")
        return missing(self, *args, **kwargs)

    monkeypatch.setattr(DynamoGates, "missing", throttled)
    with pytest.raises(GatesUnavailable):
        gated.polytrigger.poller()
    gated.polytrigger.poller()  # Lambda's retry
    gated.polytrigger.poller()

    reports = [line for line in gated.polytrigger.log_lines() if "gate timed out" in str(line.get("message"))]
    assert len(reports) == 1
    assert f"{folder}/never.csv" in reports[0]["message"]


def test_a_start_made_by_an_invocation_that_died_before_settling_is_not_made_again_by_the_poller(
    gated: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completing invocation started the sync and died before `settle`: the start stays owed, and the
    poller finds it made (its dedup record) instead of starting again (its run predates the coverage bound)."""

    class Died(Exception):
        pass

    prefix = f"refs/{day()}"
    settle, died = DynamoGates.settle, list[Any]()

    def dying(self: DynamoGates, state: Any) -> None:
        if not died:
            died.append(state)
            raise Died("the invocation died after the start, before settling")
        settle(self, state)

    deliver(gated, landed(gated, f"{prefix}/customers.csv"))
    monkeypatch.setattr(DynamoGates, "settle", dying)
    last = landed(gated, f"{prefix}/products.csv")
    with pytest.raises(Died):
        deliver(gated, last)
    deliver(gated, last)  # Lambda's retry
    assert starts(gated, REFS) == 1

    gated.wait(OWED_GRACE + 1)
    gated.polytrigger.poller()
    gated.pump.drain(timeout=15)
    gated.polytrigger.poller()
    gated.pump.drain(timeout=5)

    assert starts(gated, REFS) == 1
    state = read_gate(gated.stack.dynamodb_client(), gated.stack.table_name, "refs", (("date", prefix[5:]),))
    assert state is not None
    assert state.owed == 0


def test_a_late_redelivery_of_older_uploads_after_a_newer_version_completed_starts_nothing(gated: Dispatch) -> None:
    prefix = f"orders/dt={day()}"
    first = [*parts(gated, prefix), landed(gated, f"{prefix}/_SUCCESS")]
    for file in first:
        deliver(gated, file)
    gated.wait(60)  # the partition is written again a minute later
    for file in [*parts(gated, prefix), landed(gated, f"{prefix}/_SUCCESS")]:  # every object uploaded again
        deliver(gated, file)
    assert starts(gated, ORDERS) == 2

    for file in first:  # EventBridge delivers the first uploads' events again, late
        deliver(gated, file)

    assert starts(gated, ORDERS) == 2
