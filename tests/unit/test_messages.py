"""dispatch.messages: the typed queue messages, their ids, and the JSON wire format they travel in.

The wire format outlives a deploy (a message waits up to four days on SQS), so it is pinned here
byte for byte, with the ids of a fixed message; and whatever else arrives must raise
`UnsupportedMessage` and nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import window_id
from polytrigger.dispatch.messages import (
    DeferredStart,
    Message,
    UnsupportedMessage,
    WindowFlush,
    decode,
    decode_body,
    deferred_start,
    encode,
    message_id,
    window_flush,
)
from tests.strategies import json_values, paths, replaced

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
T0 = 1_795_000_000.0  # a fixed "now", epoch seconds


def action(key: str = "orders/a.csv", *, sequencer: str = "01", debounce: int = 60, max_wait: int = 300) -> Action:
    trigger = Trigger.s3(
        bucket="acme-landing", key=key, event="created", sequencer=sequencer, time=datetime.fromtimestamp(T0 - 5, UTC)
    )
    return Action(
        route="orders", kind="start", sync=SyncTarget(id=SYNC), trigger=trigger, debounce=debounce, max_wait=max_wait
    )


def through_the_wire(message: Message) -> Message:
    """What the dispatcher gets back: the message as SQS text, decoded again."""
    return decode_body(json.dumps(encode(message)))


# -- typed messages and their ids ----------------------------------------------------------------


def test_message_ids_are_deterministic_and_distinct() -> None:
    key = message_id("abc", "deferred", 1)
    assert key == message_id("abc", "deferred", 1)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert len({key, message_id("abc", "deferred", 2), message_id("abd", "deferred", 1)}) == 3


def test_message_ids_read_their_parts_as_text() -> None:
    """1 and "1" are the same part: an id does not depend on whether a number travelled as text."""
    assert message_id("abc", 1) == message_id("abc", "1")
    assert message_id("abc", T0) == message_id("abc", str(T0))


def test_a_deferred_start_is_keyed_by_its_action_and_attempt() -> None:
    a = action()

    first = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)

    assert first == DeferredStart(message_id(a.dedup_key, "deferred", 1), a, T0 - 5, 1, T0, None)
    assert first.id != a.dedup_key  # a new Idempotency-Key: Polytomic would replay the 409 for the old one
    again = deferred_start(a, since=T0 - 5, attempt=2, first_at=T0)
    assert again.id == message_id(a.dedup_key, "deferred", 2) != first.id
    # the id does not depend on when: a redelivered deferral is the same message
    assert deferred_start(a, since=T0, attempt=1, first_at=T0 + 99).id == first.id


def test_window_messages_differ_by_generation_and_opening() -> None:
    a = action()
    wid = window_id(a)
    first, again, other = window_flush(a, wid, T0, 0), window_flush(a, wid, T0, 1), window_flush(a, wid, T0 + 1, 0)

    assert first == WindowFlush(message_id(wid, T0, 0), a, wid, T0, 0)
    assert len({first.id, again.id, other.id}) == 3
    assert (again.window, again.opened_at, again.generation) == (wid, T0, 1)
    # the opening file does not name the window's message: any file of the burst would give the same id
    assert window_flush(action("orders/b.csv", sequencer="02"), wid, T0, 0).id == first.id


# -- round trips ---------------------------------------------------------------------------------

MODEL = Action(
    route="customers",
    kind="start",
    sync=SyncTarget(id=SYNC, options=(("identities", ("a", "b")), ("resync", True))),
    trigger=Trigger.s3(
        bucket="acme-landing",
        key="exports/Q4 report+final 100% münchen.csv",
        event="deleted",
        sequencer="0055AED6DCD9",
        time=datetime(2026, 11, 23, 9, 15, 42, 318000, tzinfo=UTC),
    ),
    debounce=60,
    max_wait=600,
)
NIGHTLY = Action(
    route="nightly",
    kind="start",
    sync=SyncTarget(id=BULK, type="bulk", options=(("fetch_mode", "full"), ("schemas", ("public.a",)))),
    trigger=Trigger.scheduled(schedule="nightly", time=datetime(2026, 11, 23, 2, 0, tzinfo=UTC)),
)
ACTIVATE = Action("orders", "activate", SyncTarget(id=SYNC), action().trigger)


@pytest.mark.parametrize("carried", [MODEL, NIGHTLY, ACTIVATE], ids=["model", "bulk-schedule", "activate"])
def test_an_action_survives_the_queue_in_either_message(carried: Action) -> None:
    for original in (
        deferred_start(carried, since=T0 - 5, attempt=3, first_at=T0 - 90.25),
        window_flush(carried, window_id(carried), T0 + 0.5, 2),
    ):
        back = through_the_wire(original)
        assert back == original
        assert back.action.dedup_key == carried.dedup_key
        assert back.action.sync.body() == carried.sync.body()
        assert type(back) is type(original)


@pytest.mark.parametrize("found_by", ["reconciliation", "replay"])
def test_a_listed_objects_start_keeps_its_identity_through_the_queue(found_by: str) -> None:
    listed = Trigger.listed(
        bucket="acme-landing",
        key="orders/a.csv",
        last_modified=datetime.fromtimestamp(T0 - 5, UTC),
        etag="abc",
        size=3,
        found_by=found_by,  # type: ignore[arg-type]
    )
    carried = replace(action(), trigger=listed)
    back = through_the_wire(deferred_start(carried, since=T0 - 5, attempt=1, first_at=T0))
    assert back.action.trigger.found_by == found_by
    assert back.action.trigger.etag == "abc"
    assert back.action.dedup_key == carried.dedup_key != action().dedup_key


def test_activate_first_is_not_carried() -> None:
    """The dispatcher only starts: whether the route activates first does not travel (nor matter) there."""
    original = Action("orders", "start", SyncTarget(id=SYNC, activate_first=True), action().trigger)

    back = through_the_wire(deferred_start(original, since=T0, attempt=1, first_at=T0))

    assert back.action.sync.activate_first is False
    assert back.action.dedup_key == original.dedup_key


def test_timestamps_survive_json_as_the_trigger_time() -> None:
    """Since and first_at are epoch floats; the trigger's time comes back to the microsecond."""
    moment = datetime(2026, 11, 23, 9, 15, 42, 318_123, tzinfo=UTC)
    a = Action(
        "r", "start", SyncTarget(id=SYNC), Trigger.s3(bucket="b", key="k", event="created", sequencer="", time=moment)
    )
    back = through_the_wire(deferred_start(a, since=T0 + 0.123456, attempt=1, first_at=T0 + 0.654321))
    assert isinstance(back, DeferredStart)
    assert back.action.trigger.time == moment
    assert back.action.trigger.time - moment == timedelta(0)
    assert (back.since, back.first_at) == (T0 + 0.123456, T0 + 0.654321)


def test_why_a_message_was_parked_travels_only_when_it_was() -> None:
    plain = deferred_start(action(), since=T0, attempt=4, first_at=T0)
    parked = replace(plain, parked_because="running; still not started after 21600 s of retries: parked")

    assert "parked_because" not in encode(plain)
    assert encode(parked)["parked_because"] == parked.parked_because
    assert through_the_wire(parked) == parked
    back = through_the_wire(plain)
    assert isinstance(back, DeferredStart)
    assert back.parked_because is None


def test_a_null_parked_because_is_not_parked() -> None:
    body = {**encode(deferred_start(action(), since=T0, attempt=1, first_at=T0)), "parked_because": None}
    back = decode(body)
    assert isinstance(back, DeferredStart)
    assert back.parked_because is None


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    key=st.text(min_size=1, max_size=40),
    sequencer=st.sampled_from(["", "0055AED6DCD9", "0067419A3C5B7E2D10"]),
    identities=st.lists(st.text(max_size=10), max_size=3),
    attempt=st.integers(min_value=1, max_value=10_000),
    generation=st.integers(min_value=0, max_value=10_000),
    since=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
)
def test_any_s3_action_round_trips_with_its_dedup_key(
    *, moment: datetime, key: str, sequencer: str, identities: list[str], attempt: int, generation: int, since: float
) -> None:
    original = Action(
        route="r",
        kind="start",
        sync=SyncTarget(id=SYNC, options=(("identities", tuple(identities)),)),
        trigger=Trigger.s3(bucket="acme-landing", key=key, event="created", sequencer=sequencer, time=moment),
        debounce=5,
        max_wait=5,
    )
    for message in (
        deferred_start(original, since=since, attempt=attempt, first_at=since),
        window_flush(original, window_id(original), since, generation),
    ):
        back = through_the_wire(message)
        assert back == message
        assert back.action.dedup_key == original.dedup_key  # the identity falls back to the time without a sequencer
        assert decode(json.loads(json.dumps(encode(message)))) == back  # decode and decode_body agree


# -- the wire format, pinned ---------------------------------------------------------------------

PINNED_ACTION = Action(
    route="orders",
    kind="start",
    sync=SyncTarget(id=SYNC, options=(("identities", ("a", "b")), ("resync", True))),
    trigger=Trigger.s3(
        bucket="acme-landing",
        key="orders/2026-11-23.csv",
        event="created",
        sequencer="0055AED6DCD9",
        time=datetime(2026, 11, 23, 9, 15, 42, 318000, tzinfo=UTC),
    ),
    debounce=60,
    max_wait=300,
)
PINNED_ACTION_JSON = (
    '{"route": "orders", "kind": "start", "sync": {"id": "248df4b7-aa70-47b8-a036-33ac447e668d", "type": "model",'
    ' "options": [["identities", ["a", "b"]], ["resync", true]]}, "trigger": {"kind": "s3", "time": 1795425342.318,'
    ' "bucket": "acme-landing", "key": "orders/2026-11-23.csv", "event": "created", "sequencer": "0055AED6DCD9",'
    ' "schedule": ""}, "debounce": 60, "max_wait": 300}'
)
# The start options are part of the dedup key (a resync and a plain start of one sync for one trigger
# are two actions); a plain start keeps its key (tests/unit/test_actions.py pins it).
PINNED_DEDUP_KEY = "760c97ec36757f432bad269933376e7e5ebf80b12c8cf6f69b5df80c7422864d"
PINNED_WINDOW = "polytrigger#window#a1c72cb48e037278b981606c56b3d4b0a8c1ebb514957470e20c6c8410f58f1b"
PINNED_DEFERRED_ID = "5ac3c81bb436ceb22c41c70ecdde22d1a749eed875267097d824de94b4e9bdac"  # from the dedup key
PINNED_WINDOW_ID = "a55e65c4a535c1fde6803b7e49f8c40250ae3ef5e96bc31e4c74d529fe1e8378"


def test_the_wire_format_and_ids_of_a_fixed_message_do_not_change() -> None:
    """Messages wait on SQS across deploys, and their ids are dedup keys and Idempotency-Keys: a change
    here orphans every message in flight (they would no longer decode, or would start a second time).
    These values are what the release before the typed messages wrote (the dedup key and the deferred
    id since options joined the dedup key: a message in flight carries its own id, so it still decodes)."""
    deferred = deferred_start(PINNED_ACTION, since=1795425337.5, attempt=2, first_at=1795425340.25)
    flush = window_flush(PINNED_ACTION, window_id(PINNED_ACTION), 1795425342.5, 3)

    assert PINNED_ACTION.dedup_key == PINNED_DEDUP_KEY
    assert window_id(PINNED_ACTION) == PINNED_WINDOW
    assert json.dumps(encode(deferred)) == (
        f'{{"kind": "deferred", "id": "{PINNED_DEFERRED_ID}", "action": {PINNED_ACTION_JSON},'
        ' "since": 1795425337.5, "attempt": 2, "first_at": 1795425340.25}'
    )
    assert json.dumps(encode(flush)) == (
        f'{{"kind": "window", "id": "{PINNED_WINDOW_ID}", "action": {PINNED_ACTION_JSON},'
        f' "window": "{PINNED_WINDOW}", "opened_at": 1795425342.5, "generation": 3}}'
    )
    assert json.dumps(encode(replace(deferred, parked_because="why"))).endswith(
        '"first_at": 1795425340.25, "parked_because": "why"}'
    )


def test_a_message_written_by_the_last_release_still_decodes() -> None:
    """Key order is not part of the format: an older writer's message, keys shuffled, is the same message."""
    written = json.loads(
        f'{{"generation": 3, "opened_at": 1795425342.5, "window": "{PINNED_WINDOW}",'
        f' "action": {PINNED_ACTION_JSON}, "id": "{PINNED_WINDOW_ID}", "kind": "window"}}'
    )
    assert decode(written) == WindowFlush(PINNED_WINDOW_ID, PINNED_ACTION, PINNED_WINDOW, 1795425342.5, 3)


# -- anything else raises UnsupportedMessage, naming what is wrong --------------------------------

DEFERRED = encode(deferred_start(MODEL, since=T0 - 5, attempt=2, first_at=T0 - 60))
PARKED = {**DEFERRED, "parked_because": "running; still not started after 21600 s of retries: parked"}
WINDOW = encode(window_flush(MODEL, window_id(MODEL), T0, 1))
Path = tuple[str | int, ...]

BROKEN: list[tuple[Path, Any, str]] = [
    # the message
    (("kind",), "start", "message: field kind is not one of deferred, window"),
    (("kind",), None, "message: field kind is not one of deferred, window"),
    (("kind",), ["deferred"], "message: field kind is not one of deferred, window"),
    (("id",), 42, "message: field id is not non-empty text"),
    (("id",), "", "message: field id is not non-empty text"),
    (("id",), "g" * 64, "message: field id is not a message id"),  # not hex
    (("id",), "A" * 64, "message: field id is not a message id"),  # upper case: no digest is
    (("id",), "a" * 63, "message: field id is not a message id"),
    (("id",), "a" * 64 + "\n", "message: field id is not a message id"),
    (("since",), "1795000000", "message: field since is not a number"),
    (("since",), True, "message: field since is not a number"),  # a bool is not a number
    (("since",), float("nan"), "message: field since is not a number"),
    (("since",), float("inf"), "message: field since is not a number"),
    (("first_at",), float("-inf"), "message: field first_at is not a number"),
    (("first_at",), None, "message: field first_at is not a number"),
    (("attempt",), 0, "message: field attempt is not a whole number of at least 1"),
    (("attempt",), 1.0, "message: field attempt is not a whole number of at least 1"),
    (("attempt",), "1", "message: field attempt is not a whole number of at least 1"),
    (("attempt",), True, "message: field attempt is not a whole number of at least 1"),
    # the action
    (("action",), "orders", "action is not a JSON object"),
    (("action",), [], "action is not a JSON object"),
    (("action", "route"), "", "action: field route is not non-empty text"),
    (("action", "route"), 7, "action: field route is not non-empty text"),
    (("action", "kind"), "pause", "action: field kind is not one of start, activate, deactivate"),
    (("action", "debounce"), "soon", "action: field debounce is not a whole number of at least 0"),
    (("action", "debounce"), -1, "action: field debounce is not a whole number of at least 0"),
    (("action", "debounce"), True, "action: field debounce is not a whole number of at least 0"),
    (("action", "max_wait"), 1.5, "action: field max_wait is not a whole number of at least 0"),
    (("action", "max_wait"), float("nan"), "action: field max_wait is not a whole number of at least 0"),
    # the sync
    (("action", "sync"), None, "action.sync is not a JSON object"),
    (("action", "sync", "id"), "not-a-uuid", "action.sync: field id is not a sync UUID"),
    (("action", "sync", "id"), SYNC + "0", "action.sync: field id is not a sync UUID"),
    (("action", "sync", "id"), "../" + SYNC, "action.sync: field id is not a sync UUID"),
    (("action", "sync", "id"), 248, "action.sync: field id is not non-empty text"),
    (("action", "sync", "type"), "warehouse", "action.sync: field type is not one of model, bulk"),
    (("action", "sync", "options"), {"resync": True}, "action.sync: field options is not a list"),
    (("action", "sync", "options"), None, "action.sync: field options is not a list"),
    (("action", "sync", "options"), [["resync"]], "field options holds something other than [name, value] pairs"),
    (("action", "sync", "options"), [["a", "b", "c"]], "field options holds something other than [name, value]"),
    (("action", "sync", "options"), [[1, True]], "field options holds something other than [name, value] pairs"),
    (("action", "sync", "options"), ["resync"], "field options holds something other than [name, value] pairs"),
    (("action", "sync", "options"), [["resync", 1]], "option 'resync' is neither text, true/false nor a list"),
    (("action", "sync", "options"), [["resync", None]], "option 'resync' is neither text, true/false nor a list"),
    (("action", "sync", "options"), [["resync", 1.5]], "option 'resync' is neither text, true/false nor a list"),
    (("action", "sync", "options"), [["x", {"a": 1}]], "option 'x' is neither text, true/false nor a list"),
    (("action", "sync", "options"), [["identities", [1]]], "option 'identities' is a list of something other than"),
    (("action", "sync", "options"), [["identities", [["a"]]]], "option 'identities' is a list of something other"),
    (("action", "sync", "options"), [["identities", ["a", None]]], "option 'identities' is a list of something"),
    # the trigger
    (("action", "trigger"), "nope", "action.trigger is not a JSON object"),
    (("action", "trigger", "kind"), "sqs", "action.trigger: field kind is not one of s3, schedule"),
    (("action", "trigger", "time"), "2026-11-23T09:15:42Z", "action.trigger: field time is not a number"),
    (("action", "trigger", "time"), True, "action.trigger: field time is not a number"),
    (("action", "trigger", "time"), float("nan"), "action.trigger: field time is not a number"),
    (("action", "trigger", "time"), float("inf"), "action.trigger: field time is not a number"),
    (("action", "trigger", "time"), 1e300, "action.trigger: field time is not a time"),
    (("action", "trigger", "time"), -1e300, "action.trigger: field time is not a time"),
    (("action", "trigger", "bucket"), None, "action.trigger: field bucket is not text"),
    (("action", "trigger", "key"), 5, "action.trigger: field key is not text"),
    (("action", "trigger", "event"), "modified", "action.trigger: field event is not one of created, deleted"),
    (("action", "trigger", "sequencer"), 55, "action.trigger: field sequencer is not text"),
    (("action", "trigger", "schedule"), ["nightly"], "action.trigger: field schedule is not text"),
]
BROKEN_WINDOW: list[tuple[Path, Any, str]] = [
    (("window",), "", "message: field window is not non-empty text"),
    (("window",), 12, "message: field window is not non-empty text"),
    (("window",), "w", "message: field window is not a window id"),
    (("window",), "polytrigger#" + "a" * 64, "message: field window is not a window id"),  # a dedup record's id
    (("window",), "polytrigger#window#" + "A" * 64, "message: field window is not a window id"),
    (("opened_at",), float("nan"), "message: field opened_at is not a number"),
    (("opened_at",), False, "message: field opened_at is not a number"),
    (("opened_at",), "1795000000.0", "message: field opened_at is not a number"),
    (("generation",), -1, "message: field generation is not a whole number of at least 0"),
    (("generation",), 0.5, "message: field generation is not a whole number of at least 0"),
    (("generation",), True, "message: field generation is not a whole number of at least 0"),
]
REQUIRED = [
    *(((field,), "message") for field in ("kind", "id", "action")),
    *((("action", field), "action") for field in ("route", "kind", "sync", "trigger", "debounce", "max_wait")),
    *((("action", "sync", field), "action.sync") for field in ("id", "type", "options")),
    *(
        (("action", "trigger", field), "action.trigger")
        for field in ("kind", "time", "bucket", "key", "event", "sequencer", "schedule")
    ),
]


@pytest.mark.parametrize(("path", "value", "says"), BROKEN)
def test_a_wrong_field_is_unsupported_in_either_message(path: Path, value: Any, says: str) -> None:
    for valid in (DEFERRED, WINDOW):
        if path[0] not in valid:
            continue
        broken = replaced(valid, path, value)
        with pytest.raises(UnsupportedMessage, match=re.escape(says)):
            decode(broken)
        with pytest.raises(UnsupportedMessage, match=re.escape(says)):
            decode_body(json.dumps(broken))  # NaN and infinities as json.loads reads them: NaN, Infinity


@pytest.mark.parametrize(("path", "value", "says"), BROKEN_WINDOW)
def test_a_wrong_window_field_is_unsupported(path: Path, value: Any, says: str) -> None:
    with pytest.raises(UnsupportedMessage, match=re.escape(says)):
        decode(replaced(WINDOW, path, value))


@pytest.mark.parametrize(("path", "where"), REQUIRED)
def test_a_missing_field_is_named(path: Path, where: str) -> None:
    for valid in (DEFERRED, WINDOW):
        with pytest.raises(UnsupportedMessage, match=re.escape(f"{where}: field {path[-1]} is missing")):
            decode(replaced(valid, path, None, delete=True))


@pytest.mark.parametrize("field", ["since", "attempt", "first_at"])
def test_a_deferred_start_without_its_timing_is_unsupported(field: str) -> None:
    with pytest.raises(UnsupportedMessage, match=f"message: field {field} is missing"):
        decode(replaced(DEFERRED, (field,), None, delete=True))


@pytest.mark.parametrize("field", ["window", "opened_at", "generation"])
def test_a_window_flush_without_its_window_is_unsupported(field: str) -> None:
    with pytest.raises(UnsupportedMessage, match=f"message: field {field} is missing"):
        decode(replaced(WINDOW, (field,), None, delete=True))


def test_a_deferred_start_labelled_a_window_is_unsupported() -> None:
    with pytest.raises(UnsupportedMessage, match="message: field window is missing"):
        decode({**DEFERRED, "kind": "window"})


@pytest.mark.parametrize("data", [None, "deferred", 42, True, [], [DEFERRED], json.dumps(DEFERRED)])
def test_a_message_that_is_not_an_object_is_unsupported(data: object) -> None:
    with pytest.raises(UnsupportedMessage, match="message is not a JSON object"):
        decode(data)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (None, "the body is not text"),
        (b"{}", "the body is not text"),
        (DEFERRED, "the body is not text"),  # already decoded JSON is not a body
        ("", "the body is not JSON (0 characters)"),
        ("{", "the body is not JSON (1 characters)"),
        ("not json", "the body is not JSON"),
        ("[" * 100_000, "the body is not JSON"),  # deeper than the parser can go
        ("null", "message is not a JSON object"),
        ('"text"', "message is not a JSON object"),
        (json.dumps(DEFERRED).replace('"since": ', '"since": NaN, "_": '), "message: field since is not a number"),
        (json.dumps(DEFERRED).replace('"since": ', '"since": 1e999, "_": '), "message: field since is not a number"),
        (json.dumps(WINDOW).replace('"opened_at": ', '"opened_at": -Infinity, "_": '), "field opened_at is not a num"),
    ],
)
def test_a_body_that_is_not_one_of_ours_is_unsupported(body: object, says: str) -> None:
    with pytest.raises(UnsupportedMessage, match=re.escape(says)):
        decode_body(body)


@pytest.mark.parametrize("path", [("since",), ("first_at",), ("action", "trigger", "time")])
def test_an_integer_too_large_for_a_float_is_unsupported(path: Path) -> None:
    """Valid JSON: `1` followed by 400 zeros is an int to json.loads, and no float can hold it."""
    with pytest.raises(UnsupportedMessage, match="is not a number"):
        decode_body(json.dumps(replaced(DEFERRED, path, 10**400)))


MESSAGE_WORDS = [
    "kind", "id", "action", "deferred", "window", "route", "sync", "type", "options", "model", "bulk", "start",
    "activate", "trigger", "s3", "schedule", "time", "bucket", "key", "event", "created", "deleted", "sequencer",
    "debounce", "max_wait", "since", "attempt", "first_at", "opened_at", "generation", "parked_because", "resync",
    "identities", SYNC, "a" * 64, str(WINDOW["window"]),
]  # fmt: skip


@given(data=st.data(), valid=st.sampled_from([DEFERRED, PARKED, WINDOW]), delete=st.booleans())
def test_no_broken_field_escapes_as_anything_but_unsupported_message(
    data: st.DataObject, valid: dict[str, Any], delete: bool
) -> None:
    path = data.draw(st.sampled_from(paths(valid)), label="path")
    if delete and path:
        broken = replaced(valid, path, None, delete=True)
    else:
        broken = replaced(valid, path, data.draw(json_values(MESSAGE_WORDS), label="value"))
    try:
        message = decode_body(json.dumps(broken))
    except UnsupportedMessage:
        return
    # what decodes is a message that travels again
    assert isinstance(message, DeferredStart | WindowFlush)
    again = through_the_wire(message)
    assert (type(again), again.id) == (type(message), message.id)


@given(value=json_values(MESSAGE_WORDS))
def test_random_json_is_unsupported(value: Any) -> None:
    with pytest.raises(UnsupportedMessage):
        decode(value)
    with pytest.raises(UnsupportedMessage):
        decode_body(json.dumps(value))


@given(text=st.text(max_size=200))
def test_random_text_is_unsupported(text: str) -> None:
    with pytest.raises(UnsupportedMessage):
        decode_body(text)
