"""The dispatcher against messages nobody should trust: malformed, forged, failing, late.

A message is acknowledged (absent from `batchItemFailures`) only when its work is done or it is
parked in the dispatch dead-letter queue with a reason; anything else goes back to the queue.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from local.stack.dispatch_pump import lambda_record
from local.stack.lambda_context import LocalContext
from polytrigger.flows.on_dispatch_message import MAX_RECEIVES
from tests.integration.dispatch_support import BUSY_SYNC, Dispatch

OTHER_SYNC = "99999999-9999-4999-8999-999999999999"


def record(dispatch: Dispatch, body: str, receives: int = 1) -> dict[str, Any]:
    message = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "handle",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": str(receives)},
    }
    return lambda_record(message, dispatch.queues.arn, dispatch.queues.region)


def invoke(dispatch: Dispatch, *bodies: str, receives: int = 1, **context: Any) -> dict[str, Any]:
    return dispatch.polytrigger.dispatcher(
        {"Records": [record(dispatch, body, receives) for body in bodies]}, **context
    )


def deferred_body(dispatch: Dispatch) -> dict[str, Any]:
    """A real deferred start, as the S3 function wrote it (a file landed while its sync was running)."""
    fake = dispatch.stack.fake
    fake.add_sync(BUSY_SYNC, kind="model", run_seconds=3600)
    dispatch.upload("busy/first.csv")
    dispatch.upload("busy/second.csv")
    (deferred,) = dispatch.log.of_kind("deferred")
    fake.reset_calls()
    return dict(deferred.body)


def dead_letters(dispatch: Dispatch) -> list[tuple[str, str]]:
    """(body, reason) of every message in the dispatch dead-letter queue."""
    return [
        (message["Body"], message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"])
        for message in dispatch.queues.dead_letters()
    ]


def posts(dispatch: Dispatch) -> list[Any]:
    return [call for call in dispatch.stack.fake.calls if call.method == "POST"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json {", "the body is not JSON"),
        ('{"kind": "start", "sync": "x"}', "field kind is not one of deferred, window"),
        ("[]", "message is not a JSON object"),
    ],
)
def test_a_malformed_message_is_parked_with_its_reason_and_acknowledged(
    dispatch: Dispatch, body: str, why: str
) -> None:
    """A message that cannot be decoded is kept, as it came, in the dead-letter queue: not only logged and deleted."""
    answer = invoke(dispatch, body)

    assert answer["batchItemFailures"] == []  # acknowledged: it is parked
    [(parked, reason)] = dead_letters(dispatch)
    assert parked == body  # as it came, for a person to read
    assert reason.startswith("dispatch queue message that polytrigger did not write: ")
    assert why in reason
    assert dispatch.stack.fake.calls == []
    [line] = [line for line in dispatch.polytrigger.log_lines() if line["level"] == "ERROR"]
    assert (line["status"], line["parked_in"]) == ("unsupported_event", "the dispatch dead-letter queue")


FORGERIES = [
    pytest.param(lambda b: {**b, "action": {**b["action"], "kind": "deactivate"}}, "does not deactivate", id="pause"),
    pytest.param(
        lambda b: {**b, "action": {**b["action"], "sync": {**b["action"]["sync"], "id": OTHER_SYNC}}},
        f"does not start model sync {OTHER_SYNC}",
        id="other-sync",
    ),
    pytest.param(
        lambda b: {**b, "action": {**b["action"], "sync": {**b["action"]["sync"], "options": [["resync", True]]}}},
        "with these options",
        id="options",
    ),
    pytest.param(lambda b: {**b, "action": {**b["action"], "route": "made-up"}}, "no route is named", id="route"),
    pytest.param(
        lambda b: {
            "kind": "window",
            "id": b["id"],
            "action": b["action"],
            "window": "polytrigger#window#" + "c" * 64,
            "opened_at": b["first_at"],
            "generation": 0,
        },
        "a window message for an action that does not debounce",
        id="window-without-debounce",
    ),
    pytest.param(
        lambda b: {**b, "action": {**b["action"], "trigger": {**b["action"]["trigger"], "key": "elsewhere/x.csv"}}},
        "route busy does not match s3://",
        id="trigger",
    ),
]


@pytest.mark.parametrize(("forge", "why"), FORGERIES)
def test_a_forged_message_is_parked_never_performed(dispatch: Dispatch, forge: Any, why: str) -> None:
    """A well-formed message for an action the routes do not make (pause a sync, start another sync or with
    other options) is parked with the reason and never performed."""
    body = json.dumps(forge(deferred_body(dispatch)))

    answer = invoke(dispatch, body)

    assert answer["batchItemFailures"] == []
    [outcome] = answer["outcomes"]
    assert (outcome["status"], outcome["parked"]) == ("failed", True)
    assert outcome["reason"].startswith("dispatch queue message refused: ")
    assert why in outcome["reason"]
    assert dispatch.stack.fake.calls == []  # not even a lookup
    [(parked, reason)] = dead_letters(dispatch)
    assert json.loads(parked)["parked_because"] == reason == outcome["reason"].split("; parked in")[0]


def test_the_genuine_message_is_performed(dispatch: Dispatch) -> None:
    """The control for the forgeries: the same message, unchanged, is done."""
    body = deferred_body(dispatch)
    dispatch.stack.fake.finish_running(BUSY_SYNC)

    answer = invoke(dispatch, json.dumps(body))

    assert answer["batchItemFailures"] == []
    assert [o["status"] for o in answer["outcomes"]] == ["started"]
    assert dead_letters(dispatch) == []


def test_an_internal_error_goes_back_to_the_queue_then_is_parked_on_its_last_receive(
    dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (a KeyError, TypeError or ValueError) while performing a message hands it back; it is not
    deleted as "malformed"."""
    body = json.dumps(deferred_body(dispatch))
    from polytrigger.dispatch.policy import DispatchPolicy

    def broken(self: DispatchPolicy, message: Any, deadline: float | None) -> Any:
        raise TypeError("a bug")

    monkeypatch.setattr(DispatchPolicy, "perform_message", broken)

    early = invoke(dispatch, body, receives=MAX_RECEIVES - 1)
    assert len(early["batchItemFailures"]) == 1  # returned to the queue: a retry may succeed
    assert dead_letters(dispatch) == []

    last = invoke(dispatch, body, receives=MAX_RECEIVES)
    assert last["batchItemFailures"] == []  # parked, with the reason, instead of moved there with none
    [(parked, reason)] = dead_letters(dispatch)
    assert parked == body
    assert reason == f"failed on its last receive ({MAX_RECEIVES} of {MAX_RECEIVES}): TypeError: a bug"
    assert dispatch.stack.fake.calls == []


def test_a_secret_with_an_invisible_character_returns_the_message_and_never_echoes_it(dispatch: Dispatch) -> None:
    """U+200B in the secret makes urllib3 raise UnicodeEncodeError (a ValueError): the message goes back to
    the queue (it is not deleted as malformed) and the secret is never echoed."""
    body = json.dumps(deferred_body(dispatch))
    dispatch.stack.fake.finish_running(BUSY_SYNC)
    secret = "fake-polytomic-api-key\u200b"
    dispatch.stack.put_secret(secret)
    from polytrigger import bootstrap

    bootstrap.reset()  # a new container: it reads the secret afresh

    answer = invoke(dispatch, body)

    assert len(answer["batchItemFailures"]) == 1  # a retry after the secret is fixed starts it
    [outcome] = answer["outcomes"]
    assert outcome["status"] == "failed"
    assert "non-ASCII" in outcome["reason"] or "not printable" in outcome["reason"], outcome["reason"]
    assert secret not in dispatch.polytrigger.log_text()
    assert posts(dispatch) == []
    assert dead_letters(dispatch) == []


def test_records_that_one_more_call_could_not_finish_are_handed_back_untried(dispatch: Dispatch) -> None:
    """With less of the invocation left than one call may take, the remaining records are handed back
    untried (the deadline guards calls, not only sleeps): one slow call does not fail the whole batch."""
    body = deferred_body(dispatch)
    dispatch.stack.fake.finish_running(BUSY_SYNC)
    # 12 s left: under one call's budget (3.05 s + 10 s + 3 s)
    answer = invoke(dispatch, json.dumps(body), json.dumps(body), timeout_seconds=12.0)

    assert len(answer["batchItemFailures"]) == 2
    assert answer["outcomes"] == []
    assert dispatch.stack.fake.calls == []


def test_the_record_budget_is_what_one_call_can_take(dispatch: Dispatch) -> None:
    body = deferred_body(dispatch)
    dispatch.stack.fake.finish_running(BUSY_SYNC)

    answer = invoke(dispatch, json.dumps(body), timeout_seconds=LocalContext().timeout_seconds)

    assert answer["batchItemFailures"] == []
    assert [o["status"] for o in answer["outcomes"]] == ["started"]


def test_a_retryable_failure_on_the_last_receive_is_parked_with_polytomics_answer(dispatch: Dispatch) -> None:
    """On its last receive a message that fails again is parked by the dispatcher with Polytomic's answer
    (SQS would move it to the dead-letter queue after 5 receives with no reason)."""
    body = deferred_body(dispatch)
    fake = dispatch.stack.fake
    fake.finish_running(BUSY_SYNC)
    fake.inject(503, times=10, path_contains=BUSY_SYNC)

    answer = invoke(dispatch, json.dumps(body), receives=MAX_RECEIVES)

    assert answer["batchItemFailures"] == []
    [outcome] = answer["outcomes"]
    assert (outcome["status"], outcome["parked"]) == ("failed", True)
    [(parked, reason)] = dead_letters(dispatch)
    assert json.loads(parked) == body  # as it came: `polytrigger redrive` marks it when it sends it back
    assert reason.startswith(f"failed on its last receive ({MAX_RECEIVES} of {MAX_RECEIVES}): 1 action(s) failed")
    assert "Polytomic answered 503" in reason
