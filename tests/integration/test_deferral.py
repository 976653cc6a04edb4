"""Debounce windows and deferred starts, end to end on the local stack.

The real S3 and dispatcher handlers run against moto SQS, DynamoDB Local and the fake Polytomic
(runs that last, 409 while one does). The stack's pump plays the SQS event source mapping. Every
test runs on the stack's clock (a 2 s debounce or a minute of retries is a jump of the clock that
polytrigger, the fake and the pump share); the ones marked ``on_both_clocks`` run again on real time,
with moto keeping the delays, so the wiring to real SQS delays and polytrigger's own clock stays
proven. Assertions are on what reached the fake (its calls and its executions' ``created_at``
against each file's trigger time), on the outcomes and on the log lines; none on how long anything
took.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.stack.dispatch_pump import Delivery
from polytrigger.dispatch.deferrals import SKEW_SECONDS, window_id
from tests.integration.dispatch_support import (
    BURST_BULK,
    BURST_SYNC,
    BUSY_SYNC,
    DEBOUNCE,
    MAX_AGE_SECONDS,
    REAL_TIME,
    STACK_CLOCK,
    TRICKLE_MAX_WAIT,
    TRICKLE_SYNC,
    Dispatch,
    File,
    s3_file,
    statuses,
    uncovered,
)
from tests.integration.support import starts

# The same test on the stack's clock and on real time (moto's own delays): the smoke test of the wiring.
on_both_clocks = pytest.mark.parametrize("dispatch", [STACK_CLOCK, REAL_TIME], indirect=True)
RUNNING = "Polytomic answered 409: a sync execution is already running"
ONE_START = re.compile(r"^one start for (\d+) trigger\(s\)$")


def _starts_of(dispatch: Dispatch, sync_id: str) -> list[Any]:
    return [call for call in starts(dispatch.stack.fake) if sync_id in call.path]


def _started_by(deliveries: list[Delivery]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(message body, outcome) of every delivery outcome that started a run."""
    found = []
    for delivery in deliveries:
        assert len(delivery.messages) == len(delivery.outcomes)  # the dispatcher answers one outcome per message
        for message, outcome in zip(delivery.messages, delivery.outcomes, strict=True):
            if outcome["status"] == "started":
                found.append((json.loads(message["Body"]), outcome))
    return found


def _action_of(dispatch: Dispatch, file: File) -> Any:
    """The start action polytrigger derives from a file with the dispatch tests' routes."""
    from polytrigger import bootstrap
    from polytrigger.events import s3_triggers

    routes = bootstrap.triggers().routes
    assert routes is not None
    (action,) = routes.actions_for(s3_triggers(file.event))
    return action


def _arrivals(outcome: dict[str, Any]) -> int:
    """How many triggers a window's start covered, from its reason."""
    found = ONE_START.fullmatch(outcome.get("reason", ""))
    assert found is not None, outcome
    return int(found[1])


def _busy(dispatch: Dispatch) -> tuple[File, str]:
    """A run of the busy sync that goes on until ``finish_running``: started by a first file."""
    dispatch.stack.fake.add_sync(BUSY_SYNC, kind="model", run_seconds=3600)
    file, answer = dispatch.upload("busy/first.csv")
    assert statuses(answer) == ["started"]
    return file, answer["outcomes"][0]["execution_id"]


# -- the queue itself ------------------------------------------------------------------------


def test_moto_honours_delay_seconds(dispatch: Dispatch) -> None:
    """What the pump relies on: a delayed message is not delivered before its delay (60 s: never within this test)."""
    sqs, url = dispatch.queues.sqs, dispatch.queues.url
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "probe"}), DelaySeconds=60)

    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []) == []
    assert dispatch.queues.counts() == {"visible": 0, "in_flight": 0, "delayed": 1}


def test_on_the_stack_clock_a_delayed_message_is_delivered_when_the_clock_reaches_its_delay(dispatch: Dispatch) -> None:
    """What the tests on the stack's clock rely on: the pump keeps polytrigger's delays on the shared clock,
    delivering each message once the clock reaches it, never before."""
    _busy(dispatch)
    dispatch.upload("busy/second.csv")

    deliveries = dispatch.pump.run_for(6.0)  # the run goes on: deferred for 1 s, then 2 s, then 4 s

    sent = dispatch.log.of_kind("deferred")
    assert [message.delay for message in sent] == [1, 2, 4]
    assert [statuses(delivery.answer) for delivery in deliveries] == [["deferred"], ["deferred"]]
    for delivery, message in zip(deliveries, sent, strict=False):
        assert delivery.at >= message.due
    assert dispatch.now() >= sent[1].due


# -- 1. a burst -------------------------------------------------------------------------------


@on_both_clocks
def test_a_burst_of_files_is_one_start_and_a_later_file_opens_a_new_window(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    burst = [dispatch.upload(f"burst/2026/11/23/part-{n:04d}.csv") for n in range(20)]
    files = [file for file, _ in burst]

    assert statuses(burst[0][1]) == ["deferred"]  # the first file opens the window...
    assert all(statuses(answer) == ["coalesced"] for _, answer in burst[1:])  # ...the others join it
    assert burst[0][1]["outcomes"][0]["reason"] == f"debounced: one start in {DEBOUNCE} s covers every file until then"
    assert fake.calls == []  # nothing reached Polytomic yet
    queued = dispatch.log.of_kind("window")
    assert [(sent.delay, sent.body["generation"]) for sent in queued] == [(DEBOUNCE, 0)]  # one message, 2 s
    assert dispatch.queues.pending() == 1

    deliveries = dispatch.pump.drain(timeout=20)

    assert len(_starts_of(dispatch, BURST_SYNC)) == 1
    started = _started_by(deliveries)
    assert [outcome["reason"] for _, outcome in started] == ["one start for 20 trigger(s)"]
    body, outcome = started[0]
    call = _starts_of(dispatch, BURST_SYNC)[0]
    assert call.headers["idempotency-key"] == body["id"]  # the window message's own key
    assert call.status == 200
    assert [execution.id for execution in fake.executions(BURST_SYNC)] == [outcome["execution_id"]]
    assert uncovered(dispatch.stack, BURST_SYNC, files) == []
    # the window message may have waited for quiet once more ("deferred"), then started
    assert [o["status"] for o in dispatch.pump.outcomes()][-1] == "started"
    assert {o["status"] for o in dispatch.pump.outcomes()} <= {"deferred", "started"}
    assert body["window"] == window_id(_action_of(dispatch, files[0]))
    assert not [item for item in dispatch.stack.table_items() if item["id"]["S"] == body["window"]]  # closed
    assert len(list(dispatch.log_lines("coalesced"))) == 19

    late, answer = dispatch.upload("burst/2026/11/23/late.csv")

    assert statuses(answer) == ["deferred"]  # the window closed: this file opens a new one
    windows = dispatch.log.windows()
    assert len(windows) == 2
    assert len({opened for (_, opened) in windows}) == 2
    dispatch.pump.drain(timeout=20)
    assert len(_starts_of(dispatch, BURST_SYNC)) == 2
    last_start = _started_by(dispatch.pump.deliveries)[-1][1]
    assert last_start["reason"] == "one start for 1 trigger(s)"
    assert uncovered(dispatch.stack, BURST_SYNC, [*files, late]) == []
    assert fake.executions(BURST_SYNC)[-1].created_at >= late.time
    assert dispatch.pump.early == []


def test_a_bulk_burst_starts_once_with_the_routes_options(dispatch: Dispatch) -> None:
    """The window message carries the whole action: the dispatcher sends the route's options without the routes file."""
    files = []
    for n in range(3):
        file, _ = dispatch.upload(f"bulk-burst/part-{n}.csv")
        files.append(file)

    dispatch.pump.drain(timeout=20)

    (call,) = _starts_of(dispatch, BURST_BULK)
    assert call.path == f"/api/bulk/syncs/{BURST_BULK}/executions"
    assert call.body == {"fetch_mode": "incremental"}
    assert uncovered(dispatch.stack, BURST_BULK, files) == []


# -- 2. a trickle longer than max_wait --------------------------------------------------------


def test_a_trickle_longer_than_max_wait_starts_at_least_every_max_wait(dispatch: Dispatch) -> None:
    files: list[File] = []
    opened: int = 0
    for n in range(8):  # one file a second for about 7 s: never DEBOUNCE seconds of quiet
        file, answer = dispatch.upload(f"trickle/part-{n}.csv")
        files.append(file)
        assert statuses(answer) in (["deferred"], ["coalesced"])
        opened += 1 if statuses(answer) == ["deferred"] else 0
        if n < 7:
            dispatch.pump.run_for(1.0)
    dispatch.pump.drain(timeout=20)

    started = _started_by(dispatch.pump.deliveries)
    executions = dispatch.stack.fake.executions(TRICKLE_SYNC)
    # debounce alone would wait for quiet and start once, after the last file: max_wait forced earlier starts
    assert len(started) >= 2
    assert len(executions) == len(started) == opened  # one start per window, and every window started
    assert executions[0].created_at < files[-1].time  # a start happened while files were still landing
    # every file is accounted for in exactly one window's start, and covered by a run created after it
    assert sum(_arrivals(outcome) for _, outcome in started) == len(files)
    assert uncovered(dispatch.stack, TRICKLE_SYNC, files) == []
    # no window ever planned its start past max_wait: its messages' delays add up to max_wait at most
    windows = dispatch.log.windows()
    assert len(windows) == opened
    for messages in windows.values():
        assert messages[0].delay == DEBOUNCE
        assert [sent.body["generation"] for sent in messages] == list(range(len(messages)))
        assert sum(sent.delay for sent in messages) <= TRICKLE_MAX_WAIT
    assert dispatch.pump.early == []


# -- 3. a 409 deferred, then started ------------------------------------------------------------


@on_both_clocks
def test_a_start_that_meets_a_running_run_is_deferred_then_started(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    _, running = _busy(dispatch)

    file, answer = dispatch.upload("busy/second.csv")

    (outcome,) = answer["outcomes"]
    assert outcome["status"] == "deferred"
    assert outcome["reason"] == f"{RUNNING}; retrying in 1 s"
    refused = _starts_of(dispatch, BUSY_SYNC)[-1]
    assert refused.status == 409
    original_key = refused.headers["idempotency-key"]
    (deferred,) = dispatch.log.of_kind("deferred")
    assert deferred.delay == 1
    assert deferred.body["attempt"] == 1
    # covered only by a run created after the file landed, with a margin for Polytomic's clock
    assert deferred.body["since"] == file.time.timestamp() + SKEW_SECONDS

    # delivered while the run still goes on: deferred again, twice as long
    again = dispatch.pump.deliver([dispatch.pump.next_message()])
    assert statuses(again.answer) == ["deferred"]
    assert again.outcomes[0]["reason"] == f"{RUNNING}; retrying in 2 s"
    assert [(sent.delay, sent.body["attempt"]) for sent in dispatch.log.of_kind("deferred")] == [(1, 1), (2, 2)]

    assert fake.finish_running(BUSY_SYNC) == 1
    message = dispatch.pump.next_message()
    delivery = dispatch.pump.deliver([message])

    (outcome,) = delivery.outcomes
    assert outcome["status"] == "started"
    call = _starts_of(dispatch, BUSY_SYNC)[-1]
    assert call.status == 200
    assert (
        call.headers["idempotency-key"]
        == json.loads(message["Body"])["id"]
        == dispatch.log.of_kind("deferred")[-1].body["id"]
    )
    assert call.headers["idempotency-key"] != original_key  # Polytomic would replay the 409 stored under that one
    executions = fake.executions(BUSY_SYNC)
    assert [execution.id for execution in executions] == [running, outcome["execution_id"]]
    assert executions[-1].created_at >= file.time
    assert dispatch.queues.pending() == 0
    lines = [line for line in dispatch.log_lines() if line.get("sync_id") == BUSY_SYNC]
    assert [line["status"] for line in lines] == ["started", "deferred", "deferred", "started"]
    assert lines[-1]["execution_id"] == outcome["execution_id"]
    assert lines[-1]["message_id"] == message["MessageId"]
    assert dispatch.pump.early == []


def test_a_window_that_meets_a_running_run_is_deferred_then_started_after_its_last_file(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    fake.add_sync(BURST_SYNC, kind="model", run_seconds=3600)
    dispatch.upload("burst/first.csv")
    dispatch.pump.drain(timeout=20)
    (running,) = fake.executions(BURST_SYNC)  # started by the first window, and still running
    files = [dispatch.upload(f"burst/second-{n}.csv")[0] for n in range(3)]

    met = dispatch.pump.until(lambda delivery: "409" in str(delivery.outcomes), timeout=20)

    (outcome,) = met.outcomes
    assert outcome["status"] == "deferred"
    assert outcome["reason"] == f"{RUNNING}; retrying in 1 s"
    (deferred,) = dispatch.log.of_kind("deferred")
    # only a run created after the window's last file covers it
    assert deferred.body["since"] >= files[-1].time.timestamp()
    assert fake.finish_running(BURST_SYNC) == 1

    dispatch.pump.drain(timeout=20)

    assert dispatch.pump.outcomes()[-1]["status"] == "started"
    executions = fake.executions(BURST_SYNC)
    assert [execution.id for execution in executions][:1] == [running.id]
    assert len(executions) == 2
    assert executions[-1].idempotency_key == deferred.body["id"]
    started = [line for line in dispatch.polytrigger.log_lines() if line.get("status") == "started"]
    assert started[-1]["idempotency_key"] == deferred.body["id"]  # the log names the key Polytomic saw
    assert uncovered(dispatch.stack, BURST_SYNC, files) == []
    assert dispatch.pump.early == []


# -- 4. a 409 that ends covered -------------------------------------------------------------------


def test_a_deferred_start_is_covered_by_a_run_created_after_its_trigger(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    _busy(dispatch)
    file, answer = dispatch.upload("busy/second.csv")
    assert statuses(answer) == ["deferred"]
    fake.finish_running(BUSY_SYNC)
    dispatch.wait(SKEW_SECONDS)  # a run created within the clock margin after the file is not taken to cover it
    _, later = dispatch.upload("busy/third.csv")  # nothing running: starts at once, after the deferred file
    assert statuses(later) == ["started"]
    covering = later["outcomes"][0]["execution_id"]
    message = dispatch.pump.next_message()
    posts_before = len([call for call in fake.calls if call.method == "POST"])

    delivery = dispatch.pump.deliver([message])

    assert delivery.outcomes == [
        {
            "route": "busy",
            "sync_id": BUSY_SYNC,
            "sync_type": "model",
            "action": "start",
            "status": "covered",
            "execution_id": covering,
            "reason": "a run created since the trigger has it",
        }
    ]
    assert len([call for call in fake.calls if call.method == "POST"]) == posts_before  # no start
    assert (fake.calls[-1].method, fake.calls[-1].path) == ("GET", f"/api/syncs/{BUSY_SYNC}/executions")
    assert uncovered(dispatch.stack, BUSY_SYNC, [file]) == []
    assert dispatch.queues.pending() == 0


# -- 5. duplicated and out-of-order deliveries -----------------------------------------------------


def test_a_dispatch_message_delivered_twice_starts_once(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    _busy(dispatch)
    dispatch.upload("busy/second.csv")
    fake.finish_running(BUSY_SYNC)
    message = dispatch.pump.next_message()

    first = dispatch.pump.deliver([message], settle=False)  # say the delete was lost: SQS delivers it again
    calls = len(fake.calls)
    second = dispatch.pump.deliver([message])

    assert statuses(first.answer) == ["started"]
    assert statuses(second.answer) == ["duplicate"]
    assert second.outcomes[0]["execution_id"] == first.outcomes[0]["execution_id"]
    assert second.outcomes[0]["reason"] == "already started for this trigger"
    assert len(fake.calls) == calls  # the second delivery called nothing
    assert len(fake.executions(BUSY_SYNC)) == 2
    assert second.answer["batchItemFailures"] == []
    assert dispatch.queues.pending() == 0


def test_a_window_message_delivered_again_after_its_start_calls_nothing(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    dispatch.upload("burst/a.csv")
    dispatch.upload("burst/b.csv")
    dispatch.pump.drain(timeout=20)
    ((body, outcome),) = _started_by(dispatch.pump.deliveries)
    calls = len(fake.calls)

    dispatch.queues.sqs.send_message(QueueUrl=dispatch.queues.url, MessageBody=json.dumps(body))  # a redelivery
    (delivery,) = dispatch.pump.drain(timeout=20)

    assert delivery.outcomes[0]["status"] == "duplicate"
    assert delivery.outcomes[0]["execution_id"] == outcome["execution_id"]
    assert len(fake.calls) == calls
    assert len(fake.executions(BURST_SYNC)) == 1


def test_burst_events_out_of_order_and_duplicated_still_cover_every_file(dispatch: Dispatch) -> None:
    base = datetime.fromtimestamp(dispatch.now(), UTC) - timedelta(seconds=5)
    files = [s3_file(f"burst/ooo-{n}.csv", base + timedelta(milliseconds=200 * n)) for n in range(5)]
    order = [3, 0, 4, 0, 1, 3, 2]  # late events first, and two redeliveries

    answers = [dispatch.polytrigger.s3(files[n].event) for n in order]

    assert [statuses(answer)[0] for answer in answers] == [
        "deferred",
        "coalesced",
        "coalesced",
        "duplicate",
        "coalesced",
        "duplicate",
        "coalesced",
    ]
    dispatch.pump.drain(timeout=20)
    started = _started_by(dispatch.pump.deliveries)
    assert [outcome["reason"] for _, outcome in started] == ["one start for 5 trigger(s)"]
    assert len(_starts_of(dispatch, BURST_SYNC)) == 1
    assert uncovered(dispatch.stack, BURST_SYNC, files) == []


def test_deferred_events_out_of_order_and_duplicated_are_covered_by_the_newest_start(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    fake.add_sync(BUSY_SYNC, kind="model", run_seconds=3600)
    base = datetime.fromtimestamp(dispatch.now(), UTC) - timedelta(seconds=5)
    files = [s3_file(f"busy/ooo-{n}.csv", base + timedelta(milliseconds=200 * n)) for n in range(4)]

    newest = dispatch.polytrigger.s3(files[3].event)  # the newest file's event arrives first and starts a run
    older = [dispatch.polytrigger.s3(files[n].event) for n in (0, 2, 1, 0)]  # then the older ones, one twice

    assert statuses(newest) == ["started"]
    assert [statuses(answer) for answer in older] == [["deferred"], ["deferred"], ["deferred"], ["duplicate"]]
    posts_before = len([call for call in fake.calls if call.method == "POST"])
    deliveries = dispatch.pump.drain(timeout=20)

    outcomes = [outcome for delivery in deliveries for outcome in delivery.outcomes]
    assert [outcome["status"] for outcome in outcomes] == ["covered"] * 3  # the run started for file 3 has them all
    assert {outcome["execution_id"] for outcome in outcomes} == {newest["outcomes"][0]["execution_id"]}
    assert len([call for call in fake.calls if call.method == "POST"]) == posts_before
    assert len(fake.executions(BUSY_SYNC)) == 1
    assert uncovered(dispatch.stack, BUSY_SYNC, files) == []


# -- 6. a deferral older than its maximum age ---------------------------------------------------


def test_a_deferral_past_its_maximum_age_is_parked_with_a_readable_reason(dispatch: Dispatch) -> None:
    fake = dispatch.stack.fake
    _, running = _busy(dispatch)
    dispatch.upload("busy/second.csv")
    message = dispatch.pump.next_message()
    body = json.loads(message["Body"])
    # this start has been waiting for an hour already (the limit here is 60 s): replace the message
    body["first_at"] = dispatch.now() - 3600
    dispatch.queues.sqs.delete_message(QueueUrl=dispatch.queues.url, ReceiptHandle=message["ReceiptHandle"])
    dispatch.queues.sqs.send_message(QueueUrl=dispatch.queues.url, MessageBody=json.dumps(body))

    (delivery,) = dispatch.pump.drain(timeout=20)

    (outcome,) = delivery.outcomes
    assert outcome["status"] == "failed"
    reason = outcome["reason"]
    assert re.fullmatch(
        rf"{re.escape(RUNNING)}; still not started after 3\d{{3}} s of retries "
        rf"\(limit {MAX_AGE_SECONDS} s\): parked",
        reason,
    ), reason
    assert delivery.answer["batchItemFailures"] == []  # parked, so not returned to the queue
    assert dispatch.queues.pending() == 0
    (parked,) = dispatch.queues.dead_letters()
    parked_body = json.loads(parked["Body"])
    assert parked_body["parked_because"] == reason
    assert parked["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"] == reason
    assert parked_body["kind"] == "deferred"
    assert parked_body["attempt"] == 2
    assert parked_body["action"]["sync"]["id"] == BUSY_SYNC
    assert parked_body["action"]["trigger"]["key"] == "busy/second.csv"
    assert [execution.id for execution in fake.executions(BUSY_SYNC)] == [running]  # nothing started
    (line,) = [line for line in dispatch.log_lines("failed") if line.get("sync_id") == BUSY_SYNC]
    assert line["level"] == "ERROR"
    assert line["reason"] == reason
    assert line["message"] == f"start model sync {BUSY_SYNC} for route busy: failed"

    # moved back while the run still goes on (an SQS re-drive): its wait starts afresh, it is not parked at once
    dispatch.queues.sqs.send_message(QueueUrl=dispatch.queues.url, MessageBody=parked["Body"])
    again = dispatch.pump.until(lambda delivery: bool(delivery.outcomes), timeout=20)
    assert statuses(again.answer) == ["deferred"]
    # once the run ends, the deferred retry (a new message id) starts it
    fake.finish_running(BUSY_SYNC)
    dispatch.pump.drain(timeout=20)
    assert dispatch.pump.outcomes()[-1]["status"] == "started"
    assert fake.executions(BUSY_SYNC)[-1].idempotency_key not in (None, parked_body["id"])
    assert len(fake.executions(BUSY_SYNC)) == 2


# -- 7. a 429 storm ------------------------------------------------------------------------------


@on_both_clocks
def test_a_start_still_throttled_after_its_retries_waits_on_the_queue_then_starts(dispatch: Dispatch) -> None:
    """A 429 after the in-call retries does not fail the invocation (AWS would retry it into the same
    storm and park it): the start waits on the dispatch queue for Retry-After at least."""
    fake = dispatch.stack.fake
    fake.inject(429, times=3, path_contains=f"{BUSY_SYNC}/executions", method="POST", retry_after=1)

    file, answer = dispatch.upload("busy/throttled.csv")

    (outcome,) = answer["outcomes"]
    assert outcome["status"] == "deferred"
    assert outcome["reason"].startswith("Polytomic answered 429")
    (deferred,) = dispatch.log.of_kind("deferred")
    assert deferred.delay >= 1
    (delivery,) = dispatch.pump.drain(timeout=15)
    assert [o["status"] for o in delivery.outcomes] == ["started"]
    assert uncovered(dispatch.stack, BUSY_SYNC, [file]) == []
    assert dispatch.polytrigger.stack.parked_events() == []
