"""What `polytrigger explain` computes and prints: the actions triggers would lead to, or the near misses.

Three ways to name what happened: an event file (a Lambda event as delivered, or a Polytomic run event as
the webhook receives it), an S3 URL (an object created, or deleted) and a schedule name (a firing): the last two
build the `Trigger` the functions would normalise such an event to. A schedule can be asked when it fires next
(`--next N`), in its zone and UTC; an S3 route's `expect:` block likewise for its next deadlines (`--expect`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polytrigger.core.triggers import SCHEDULE_NAME, S3EventKind, Trigger, iso
from polytrigger.events import trigger_groups
from polytrigger.routing import Route, Routes, RoutesError, load_routes
from polytrigger.routing.durations import say
from polytrigger.routing.expect import describe, next_deadlines, zone_problem
from polytrigger.routing.fields import is_bucket_name
from polytrigger.routing.gates import GATE_AT_RUN_TIME
from polytrigger.routing.near import near_misses
from polytrigger.routing.schedules import ScheduleSpec, firings
from polytrigger.routing.suggest import did_you_mean
from polytrigger.tools.explain_endings import explain_ending, join_lines

S3_URL = "s3://"
# A real event carries the object's own sequencer, part of its Idempotency-Key; a URL has none.
PLACEHOLDER_SEQUENCER = "0000000000000000"
_MAX_KEY_BYTES = 1024  # S3's limit for an object key (UTF-8)
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
SCHEDULE_NOTE = (
    "note: `{name}` is named bare (`schedule: {name}`): polytrigger does not create it; it fires only if a"
    ' schedule in EventBridge Scheduler invokes the schedule function with {{"schedule": "{name}",'
    ' "time": "<aws.scheduler.scheduled-time>"}}'
)
CREATED_NOTE = "note: the stack creates schedule `{name}` from the routes file: {expression} {timezone}{window}"
SEQUENCER_NOTE = (
    "note: built from the URL with a placeholder sequencer: a real upload's Idempotency-Key differs"
    " (each write of a key has its own sequencer)"
)
VERBATIM_NOTE = (
    "note: the key is taken verbatim: `%XX` is not decoded (S3 URIs copied from the console are not encoded)"
)


class ExplainInputError(ValueError):
    """An S3 URL, schedule name or time that `explain` cannot build a trigger from; the message is short."""


def explain(event: Any, routes_file: str | Path | Routes) -> list[dict[str, Any]]:
    """The rows of an event: one per action, one per trigger that leads to none (with its near misses)."""
    routes = routes_file if isinstance(routes_file, Routes) else load_routes(routes_file)
    if isinstance(event, Mapping) and str(event.get("type", "")).startswith(("sync.", "bulk_sync.")):
        return explain_ending(event, routes, explain_groups)
    return explain_groups(trigger_groups(event), routes)


def explain_groups(groups: Iterable[Sequence[Trigger]], routes: Routes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for triggers in groups:
        actions = routes.actions_for(triggers) + [
            action
            for arrival in routes.arrivals(triggers)
            if arrival.counted
            for action in arrival.route.actions_for(arrival.trigger)
        ]
        for trigger in triggers:
            mine = [action for action in actions if action.trigger == trigger]
            if not mine:
                reached = any(route.matches(trigger) for route in routes.routes)
                rows.append(
                    {
                        "trigger": trigger.describe(),
                        "route": None,
                        "covered": reached,
                        "near_misses": [] if reached else near_misses(routes.routes, trigger),
                    }
                )
            rows.extend(
                {
                    "trigger": trigger.describe(),
                    "route": action.route,
                    "sync_id": action.sync.id,
                    "sync_type": action.sync.type,
                    "action": action.kind,
                    "options": action.sync.body() if action.kind == "start" else {},
                    "idempotency_key": None if _gated(routes, action) else action.dedup_key,
                    "debounce": action.debounce,
                    "max_wait": action.max_wait,
                    "reconcile": r.reconcile.describe() if (r := routes.named(action.route)) and r.reconcile else None,
                    **_gate_fields(routes.named(action.route), trigger),
                }
                for action in mine
            )
    return rows


def _gated(routes: Routes, action: Any) -> bool:
    """A gated route's start is keyed by its partition's version, which only the table knows."""
    route = routes.named(action.route)
    return route is not None and route.gate is not None and action.trigger.kind == "s3"


def _gate_fields(route: Route | None, trigger: Trigger) -> dict[str, Any]:
    """A gated route's row also says the trigger's partition and what its gate waits for (statically)."""
    if route is None or route.gate is None or trigger.kind != "s3":
        return {}
    partition = route.partition(trigger.key)
    if partition is None:
        return {}
    return {
        "partition": dict(partition),
        "gate": route.gate.waits_for(partition, route.bucket),
        "gate_timeout": route.gate.timeout,
    }


def would_act(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether anything would happen: the exit status (0 if so, 1 if not) a script can test."""
    return any(row["route"] for row in rows)


def s3_trigger(url: str, *, deleted: bool = False, now: datetime | None = None) -> Trigger:
    """The trigger of `s3://BUCKET/KEY`: the key verbatim (no percent-decoding), a placeholder sequencer."""
    if not url.startswith(S3_URL):
        raise ExplainInputError("an S3 URL starts with s3://")
    bucket, slash, key = url[len(S3_URL) :].partition("/")
    if not is_bucket_name(bucket):
        raise ExplainInputError(f"not an S3 bucket name: {_clip(bucket)}")
    if not slash or not key:
        raise ExplainInputError(f"s3://{bucket}/ names no object: give its key, e.g. s3://{bucket}/orders/x.csv")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > _MAX_KEY_BYTES:
        raise ExplainInputError(f"the key is {size} bytes long; S3 keys are at most {_MAX_KEY_BYTES} bytes (UTF-8)")
    event: S3EventKind = "deleted" if deleted else "created"
    moment = now or datetime.now(UTC)
    return Trigger.s3(bucket=bucket, key=key, event=event, sequencer=PLACEHOLDER_SEQUENCER, time=moment)


def schedule_trigger(name: str, time: str | None = None, *, now: datetime | None = None, zone: str = "UTC") -> Trigger:
    """The trigger of schedule `name` firing at `time` (ISO 8601, without an offset read in `zone`; default now)."""
    if not SCHEDULE_NAME.fullmatch(name):
        raise ExplainInputError(f"not a schedule name (1-64 letters, digits, '.', '-' or '_'): {_clip(name)}")
    return Trigger.scheduled(schedule=name, time=read_time(time, zone, now=now))


def read_time(time: str | None, zone: str = "UTC", *, now: datetime | None = None) -> datetime:
    """`--time`: ISO 8601 with an offset (or Z) as given, without one in `zone`; None: now."""
    if time is None:
        return now or datetime.now(UTC)
    text = time.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ExplainInputError(
            f"--time must be an ISO-8601 time, e.g. 2026-11-23T02:00:00Z (got {_clip(time)})"
        ) from None
    if moment.tzinfo is not None:
        return moment
    from zoneinfo import ZoneInfo

    return moment.replace(tzinfo=ZoneInfo(zone))


def schedule_spec(routes: Routes, name: str) -> ScheduleSpec | None:
    """How the routes file defines schedule `name` (None: it does not, or only names it bare)."""
    return next((r.schedule_spec for r in routes.routes if r.schedule == name and r.schedule_spec), None)


def time_note(time: str | None, trigger: Trigger, spec: ScheduleSpec | None) -> list[str]:
    """Say how a `--time` without an offset was read (the schedule's zone), so the UTC shown is no surprise."""
    if time is None or spec is None or spec.timezone == "UTC" or _has_offset(time):
        return []
    return [
        f"note: --time {time.strip()} has no offset: read in {spec.timezone}, the schedule's zone (= {iso(trigger.time)})"
    ]


def _has_offset(time: str) -> bool:
    text = time.strip()
    return text.endswith(("Z", "z")) or datetime.fromisoformat(text).tzinfo is not None


def next_of(routes: Routes, name: str, after: datetime, count: int) -> dict[str, Any]:
    """The next `count` firings of schedule `name`, as `explain --next` prints them (`render_next`) or as JSON.

    `firings` is empty when the routes file does not define the schedule: `why` then says so, with the
    closest schedule names when none of its routes names it.
    """
    spec = schedule_spec(routes, name)
    named = [route.name for route in routes.routes if route.schedule == name]
    document: dict[str, Any] = {"schedule": name, "routes": named, "after": iso(after), "firings": []}
    if spec is None:
        trigger = Trigger.scheduled(schedule=name, time=after)
        document["why"] = (
            [
                f"schedule {name} is named bare (schedule: {name}): it is made elsewhere, so its times are not in the routes file"
            ]
            if named
            else [f"no route names schedule {name}", *near_misses(routes.routes, trigger)]
        )
        return document
    zone = spec.timezone
    document.update(expression=spec.expression, timezone=zone, flexible_window=spec.flexible_window)
    for firing in firings(spec, after, count):
        if firing.at is None:
            document["firings"].append({"local": firing.wall.isoformat(), "utc": None, "skipped": "clocks skip it"})
        else:
            document["firings"].append(
                {"local": firing.at.isoformat(), "utc": iso(firing.at), "zone": firing.at.tzname()}
            )
    if not any(row["utc"] for row in document["firings"]):
        document["why"] = [f"{spec.expression} does not fire after {iso(after)}"]
    return document


def render_next(document: dict[str, Any]) -> str:
    name = document["schedule"]
    if "expression" not in document:
        return "\n".join(document["why"][:1] + [f"     - {miss}" for miss in document["why"][1:]])
    zone = document["timezone"]
    routes = ", ".join(document["routes"])
    lines = [f"schedule {name}: {document['expression']} {zone} (routes: {routes})"]
    if document["expression"].startswith("rate("):
        lines.append(
            "  a rate counts from when the stack created the schedule, not from a clock time: shown from --time"
        )
    if document["flexible_window"]:
        lines.append(f"  each firing may come up to {document['flexible_window']} minutes later (flexible window)")
    from zoneinfo import ZoneInfo

    here = ZoneInfo(zone)
    count = sum(1 for row in document["firings"] if row["utc"])
    after = _utc(document["after"]).astimezone(here)
    lines.append(f"the next {count} firing{'s' if count != 1 else ''} after {_local(after)} = {document['after']}:")
    for row in document["firings"]:
        if row["utc"] is None:
            wall = datetime.fromisoformat(row["local"])
            lines.append(
                f"  {wall:%a %Y-%m-%d %H:%M} does not exist in {zone} (clocks spring forward): the Scheduler skips it"
            )
        else:
            lines.append(f"  {_local(_utc(row['utc']).astimezone(here))} = {row['utc']}")
    lines.extend(document.get("why", []))
    return "\n".join(lines)


def route_zone(routes: Routes, name: str) -> str:
    """The zone of route `name`'s deadlines (UTC when it has none), to read a `--time` without an offset in."""
    route = routes.named(name)
    if route is None or route.expect is None:
        return "UTC"
    problem = zone_problem(route.expect.timezone)  # a cold start does not ask the zone database; here it must
    if problem is not None:
        raise RoutesError(f"route '{name}': {problem}")
    return route.expect.timezone


def deadlines_of(routes: Routes, name: str, after: datetime, count: int) -> dict[str, Any]:
    """The next `count` arrival deadlines of route `name`, as `explain --route NAME --expect` prints them
    (`render_deadlines`) or as JSON; `why` says when the route has none to list."""
    route = routes.named(name)
    document: dict[str, Any] = {"route": name, "after": iso(after), "deadlines": []}
    if route is None:
        meant = did_you_mean(name, [r.name for r in routes.routes])
        document["why"] = [f"no route is named {name}{meant}"]
        return document
    expect = route.expect
    if expect is None:
        document["why"] = [f"route {name} has no expect: block, so no arrival deadline"]
        return document
    document.update(expect=describe(expect), timezone=expect.timezone, by=f"{expect.by:%H:%M}")
    document["warn_at"] = f"{expect.warn:%H:%M}" if expect.warn is not None else None
    for deadline in next_deadlines(expect, after, count):
        document["deadlines"].append(
            {
                "day": deadline.day.isoformat(),
                "key": expect.key_for(deadline.day) if expect.key else None,
                "warn": iso(deadline.warn) if deadline.warn is not None else None,
                "by": iso(deadline.by),
                "late": iso(deadline.late),
            }
        )
    if not document["deadlines"]:
        document["why"] = [f"no day is due in the ten years after {iso(after)}"]
    return document


def render_deadlines(document: dict[str, Any]) -> str:
    if "expect" not in document:
        return "\n".join(document["why"])
    from zoneinfo import ZoneInfo

    zone = document["timezone"]
    here = ZoneInfo(zone)
    count = len(document["deadlines"])
    after = _utc(document["after"]).astimezone(here)
    lines = [
        f"route {document['route']} expects {document['expect']} (each miss reported once: deadline_missed)",
        f"the next {count} deadline{'s' if count != 1 else ''} after {_local(after)} = {document['after']}:",
    ]
    for row in document["deadlines"]:
        day = datetime.fromisoformat(row["day"])
        lines.append(f"  {day:%a %Y-%m-%d}: {row['key']}" if row["key"] else f"  {day:%a %Y-%m-%d}:")
        for label, wanted in (("warn", document["warn_at"]), ("by", document["by"]), ("late", None)):
            if row[label] is None or (label == "late" and row["late"] == row["by"]):
                continue
            moment = _utc(row[label]).astimezone(here)
            moved = ""
            if wanted is not None and f"{moment:%H:%M}" != wanted:
                moved = f" ({wanted} does not exist that day, clocks spring forward: the next valid instant)"
            lines.append(f"    {label:<5}{_local(moment)} = {row[label]}{moved}")
    lines.extend(document.get("why", []))
    return "\n".join(lines)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _local(moment: datetime) -> str:
    offset = moment.strftime("%z")
    return f"{moment:%a %Y-%m-%d %H:%M} {moment.tzname()} ({offset[:3]}:{offset[3:]})"


def notes(trigger: Trigger | None, routes: Routes | None = None) -> list[str]:
    """What the output of a URL or schedule form must add about the trigger it built (and who makes a schedule)."""
    if trigger is None:
        return []
    if trigger.kind == "schedule":
        named = [route for route in (routes.routes if routes is not None else ()) if route.schedule == trigger.schedule]
        spec = next((route.schedule_spec for route in named if route.schedule_spec is not None), None)
        if spec is not None:
            window = f", within a {spec.flexible_window}-minute window" if spec.flexible_window else ""
            return [
                CREATED_NOTE.format(name=spec.name, expression=spec.expression, timezone=spec.timezone, window=window)
            ]
        return [SCHEDULE_NOTE.format(name=trigger.schedule)] if named else []
    found = [SEQUENCER_NOTE]
    if _PERCENT_ESCAPE.search(trigger.key):
        found.append(VERBATIM_NOTE)
    return found


def render(rows: list[dict[str, Any]], extra: Sequence[str] = ()) -> str:
    if not rows:
        return "no trigger in this event (nothing would happen)"
    by_trigger: dict[str, list[str]] = {}
    for row in rows:
        lines = by_trigger.setdefault(printable(row["trigger"]), [])
        if row["route"] is None:
            if row["covered"]:
                lines.append("  -> already covered by an earlier trigger of this event")
                continue
            lines.append("  -> no route matches: nothing would happen")
            if row.get("near_misses"):
                lines.append("     closest routes:")
                lines.extend(f"     - {miss}" for miss in row["near_misses"])
            continue
        if row.get("join"):
            lines.extend(join_lines(row))
            continue
        options = f" {json.dumps(row['options'], sort_keys=True)}" if row["options"] else ""
        lines.append(f"  -> route {row['route']}: {row['action']} {row['sync_type']} sync {row['sync_id']}{options}")
        if row.get("gate"):
            partition = " ".join(f"{name}={printable(value)}" for name, value in row["partition"].items())
            lines.append(f"     partition {partition}")
            lines.append(f"     gate: {printable(row['gate'])}; timeout {say(row['gate_timeout'])}")
            lines.append(f"     ({GATE_AT_RUN_TIME})")
        if row.get("debounce"):
            lines.append(
                f"     debounced: the first file opens a {row['debounce']} s window and later ones join it; one start"
                f" when it has been quiet {row['debounce']} s, at most {row['max_wait']} s after it opened"
            )
        if row.get("reconcile"):
            lines.append(f"     reconciled: its prefix {row['reconcile']}, so a lost event costs at most a period")
        if row["action"] == "start":
            lines.append(
                "     a 409 (run in progress) defers the start via the dispatch queue until it starts or a newer run covers it"
            )
        lines.append(
            f"     Idempotency-Key {row['idempotency_key']}"
            if row["idempotency_key"]
            else "     Idempotency-Key: from the partition and its version, when it completes"
        )
    text = "\n".join(f"{trigger}\n" + "\n".join(lines) for trigger, lines in by_trigger.items())
    return "\n".join([text, *extra])


def printable(text: str) -> str:
    """One line whatever a key holds: control characters (newlines, escapes) shown as `\\n`, `\\x1b`..."""
    return text if text.isprintable() else "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _clip(value: str | None, limit: int = 60) -> str:
    return "nothing" if value is None else repr(value) if len(value) <= limit else repr(value[: limit - 1] + "…")
