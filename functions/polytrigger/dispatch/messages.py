"""The dispatch queue's messages, typed: a deferred start, or a debounce window to flush.

A message carries its whole action; the dispatcher performs it only if its own routes make exactly
that action of that trigger (`Routes.refusal`), so a forged message is parked, never done. `encode` writes the
JSON that travels on SQS (the format is kept across deploys: messages wait up to four days);
`decode` is its inverse and checks every field before anything acts on it, so a message that is
not one of ours raises one `UnsupportedMessage` naming the field, and nothing else.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from polytrigger.core.actions import ACTION_KINDS, SYNC_TYPES, Action, ActionKind, SyncTarget, SyncType
from polytrigger.core.keys import digest, is_uuid
from polytrigger.core.triggers import (
    LISTINGS,
    S3_EVENT_KINDS,
    TRIGGER_KINDS,
    FoundBy,
    S3EventKind,
    Trigger,
    TriggerKind,
)

_ID = re.compile(r"[0-9a-f]{64}")  # every message id is a digest (and the Idempotency-Key of its start)
WINDOW_PREFIX = "polytrigger#window#"  # a window's id in the dedup table: this prefix and a digest
_WINDOW = re.compile(re.escape(WINDOW_PREFIX) + r"[0-9a-f]{64}")


class UnsupportedMessage(ValueError):
    """A dispatch queue message polytrigger did not write (or cannot read any more); names what is wrong."""


@dataclass(frozen=True, slots=True)
class DeferredStart:
    """A start that met a running run (409): retried until it starts, a newer run covers it, or it is parked."""

    id: str
    action: Action
    since: float  # epoch seconds: a run created at or after this covers the start
    attempt: int  # 1 for the first deferral
    first_at: float  # when the first deferral happened: the maximum age counts from here
    parked_because: str | None = None  # set when a person moved it back from the dead-letter queue


@dataclass(frozen=True, slots=True)
class WindowFlush:
    """A debounce window's message: when it arrives, the window starts once (or waits a little longer)."""

    id: str
    action: Action
    window: str
    opened_at: float
    generation: int  # 0 for the window's first message; each wait for quiet sends the next one


Message = DeferredStart | WindowFlush


def message_id(*parts: object) -> str:
    """A deterministic id for a queued message: its dedup record key and its Idempotency-Key."""
    return digest([str(part) for part in parts])


def deferred_start(action: Action, *, since: float, attempt: int, first_at: float) -> DeferredStart:
    return DeferredStart(message_id(action.dedup_key, "deferred", attempt), action, since, attempt, first_at)


def owed_start(action: Action, *, since: float, first_at: float) -> DeferredStart:
    """A start its first maker may have made before it died (a gate's owed start): queued under the action's
    own dedup key, so the dispatcher's call finds that maker's record (and Polytomic its Idempotency-Key)
    and starts nothing twice, or makes the start now if it never was."""
    return DeferredStart(action.dedup_key, action, since, 1, first_at)


def window_flush(action: Action, window: str, opened_at: float, generation: int) -> WindowFlush:
    return WindowFlush(message_id(window, opened_at, generation), action, window, opened_at, generation)


# -- the wire format ---------------------------------------------------------------------------


def encode(message: Message) -> dict[str, Any]:
    if isinstance(message, DeferredStart):
        body: dict[str, Any] = {
            "kind": "deferred",
            "id": message.id,
            "action": _encode_action(message.action),
            "since": message.since,
            "attempt": message.attempt,
            "first_at": message.first_at,
        }
        if message.parked_because is not None:
            body["parked_because"] = message.parked_because
        return body
    return {
        "kind": "window",
        "id": message.id,
        "action": _encode_action(message.action),
        "window": message.window,
        "opened_at": message.opened_at,
        "generation": message.generation,
    }


def decode_body(body: object) -> Message:
    """An SQS message body (JSON text) as a message."""
    if not isinstance(body, str):
        raise UnsupportedMessage("the body is not text")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise UnsupportedMessage(f"the body is not JSON ({len(body)} characters)") from None
    return decode(data)


def decode(data: object) -> Message:
    """The inverse of `encode`; `UnsupportedMessage` for anything else."""
    fields = _Fields(data, "message")
    kind = fields.choice("kind", ("deferred", "window"))
    message_id_ = fields.text("id")
    if not _ID.fullmatch(message_id_):
        raise UnsupportedMessage("message: field id is not a message id")
    action = _decode_action(fields.get("action"))
    if kind == "window":
        window = fields.text("window")
        if not _WINDOW.fullmatch(window):  # it names an item of the dedup table: never another kind of record
            raise UnsupportedMessage("message: field window is not a window id")
        return WindowFlush(message_id_, action, window, fields.number("opened_at"), fields.whole("generation", 0))
    parked = fields.get("parked_because") if "parked_because" in fields.data else None
    return DeferredStart(
        message_id_,
        action,
        since=fields.number("since"),
        attempt=fields.whole("attempt", 1),
        first_at=fields.number("first_at"),
        parked_because=str(parked) if parked is not None else None,
    )


def _encode_action(action: Action) -> dict[str, Any]:
    trigger = action.trigger
    return {
        "route": action.route,
        "kind": action.kind,
        "sync": {"id": action.sync.id, "type": action.sync.type, "options": action.sync.option_pairs()},
        "trigger": {
            "kind": trigger.kind,
            "time": trigger.time.timestamp(),
            "bucket": trigger.bucket,
            "key": trigger.key,
            "event": trigger.event,
            "sequencer": trigger.sequencer,
            "schedule": trigger.schedule,
            **(
                {"upstream": trigger.upstream, "execution": trigger.execution, "status": trigger.status}
                if trigger.kind == "polytomic"
                else {}
            ),
            **({"after": [list(pair) for pair in trigger.after]} if trigger.after else {}),
            # a listed object's identity is its LastModified: without this it would come back an event's
            **({"found_by": trigger.found_by, "etag": trigger.etag} if trigger.found_by != "event" else {}),
        },
        "debounce": action.debounce,
        "max_wait": action.max_wait,
    }


def _decode_action(data: object) -> Action:
    fields = _Fields(data, "action")
    sync = _Fields(fields.get("sync"), "action.sync")
    trigger = _Fields(fields.get("trigger"), "action.trigger")
    chained = _chained(trigger)
    sync_id = sync.text("id")
    if not is_uuid(sync_id):
        raise UnsupportedMessage("action.sync: field id is not a sync UUID")
    return Action(
        route=fields.text("route"),
        kind=cast(ActionKind, fields.choice("kind", ACTION_KINDS)),
        sync=SyncTarget(
            id=sync_id, type=cast(SyncType, sync.choice("type", SYNC_TYPES)), options=_options(sync.get("options"))
        ),
        trigger=Trigger(
            kind=cast(TriggerKind, trigger.choice("kind", TRIGGER_KINDS)),
            time=_moment(trigger.number("time")),
            bucket=trigger.text("bucket", empty=True),
            key=trigger.text("key", empty=True),
            event=cast(S3EventKind, trigger.choice("event", S3_EVENT_KINDS)),
            sequencer=trigger.text("sequencer", empty=True),
            schedule=trigger.text("schedule", empty=True),
            upstream=chained.get("upstream", ""),
            execution=chained.get("execution", ""),
            status=chained.get("status", ""),
            after=chained.get("after", ()),
            etag=trigger.text("etag", empty=True) if "etag" in trigger.data else "",
            found_by=cast(FoundBy, trigger.choice("found_by", LISTINGS)) if "found_by" in trigger.data else "event",
        ),
        debounce=fields.whole("debounce", 0),
        max_wait=fields.whole("max_wait", 0),
    )


def _options(raw: object) -> tuple[tuple[str, Any], ...]:
    if not isinstance(raw, list):
        raise UnsupportedMessage("action.sync: field options is not a list")
    options: list[tuple[str, Any]] = []
    for pair in raw:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise UnsupportedMessage("action.sync: field options holds something other than [name, value] pairs")
        name, value = pair
        if isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise UnsupportedMessage(f"action.sync: option {name[:40]!r} is a list of something other than text")
            value = tuple(value)
        elif not isinstance(value, str | bool):
            raise UnsupportedMessage(f"action.sync: option {name[:40]!r} is neither text, true/false nor a list")
        options.append((name, value))
    return tuple(options)


def _moment(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise UnsupportedMessage("action.trigger: field time is not a time") from None


def _chained(trigger: _Fields) -> dict[str, Any]:
    """A polytomic trigger's run (messages of the other kinds carry none: older messages neither), and a
    join's whole set of (upstream, execution) when it is one."""
    if trigger.data.get("kind") != "polytomic":
        return {}
    run: dict[str, Any] = {name: trigger.text(name) for name in ("upstream", "execution", "status")}
    if "after" in trigger.data:
        pairs = trigger.data["after"]
        if (
            not isinstance(pairs, list)
            or not 2 <= len(pairs) <= 64
            or not all(
                isinstance(pair, list)
                and len(pair) == 2
                and is_uuid(pair[0])
                and isinstance(pair[1], str)
                and 0 < len(pair[1]) <= 128
                for pair in pairs
            )
        ):
            raise UnsupportedMessage("action.trigger: field after is not a list of [sync UUID, execution] pairs")
        run["after"] = tuple(sorted((str(sync), str(execution)) for sync, execution in pairs))
    return run


class _Fields:
    """Typed reads of one JSON object; every surprise is an `UnsupportedMessage` naming the field."""

    __slots__ = ("data", "where")

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise UnsupportedMessage(f"{where} is not a JSON object")
        self.data: dict[str, Any] = data
        self.where = where

    def get(self, name: str) -> Any:
        if name not in self.data:
            raise UnsupportedMessage(f"{self.where}: field {name} is missing")
        return self.data[name]

    def text(self, name: str, *, empty: bool = False) -> str:
        value = self.get(name)
        if not isinstance(value, str) or (not value and not empty):
            raise UnsupportedMessage(f"{self.where}: field {name} is not {'text' if empty else 'non-empty text'}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.get(name)
        if value not in allowed:
            raise UnsupportedMessage(f"{self.where}: field {name} is not one of {', '.join(allowed)}")
        return str(value)

    def number(self, name: str) -> float:
        value = self.get(name)
        try:
            number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
        except OverflowError:  # a JSON integer too large for a float
            number = math.nan
        if not math.isfinite(number):
            raise UnsupportedMessage(f"{self.where}: field {name} is not a number")
        return number

    def whole(self, name: str, minimum: int) -> int:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UnsupportedMessage(f"{self.where}: field {name} is not a whole number of at least {minimum}")
        return value
