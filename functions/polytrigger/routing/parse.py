"""The routes file's document → `Routes`, validated as a whole: every problem, with its route and field.

Nothing half-valid is returned: one problem anywhere rejects the file, so nothing half-loaded ever runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from polytrigger.core.actions import ACTION_KINDS, SYNC_TYPES, ActionKind, SyncTarget, SyncType
from polytrigger.core.keys import is_uuid
from polytrigger.core.triggers import S3_EVENT_KINDS
from polytrigger.routing.chains import chain_cycles, parse_chain
from polytrigger.routing.durations import duration_field
from polytrigger.routing.expect import parse_expect
from polytrigger.routing.fields import events_field, is_bucket_name
from polytrigger.routing.gates import parse_gate
from polytrigger.routing.globs import compile_glob, literal_prefix
from polytrigger.routing.model import DEFAULT_HOLD_SECONDS, Route, Routes
from polytrigger.routing.reconciling import parse_reconcile
from polytrigger.routing.schedules import SCHEDULE_FIELDS, ScheduleSpec, definitions, parse_schedule
from polytrigger.routing.suggest import close_to, did_you_mean

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


_ROUTE_FIELDS = {
    "name", "s3", "schedule", "polytomic", "action", "syncs", "debounce", "max_wait", "freshness", "hold", "gate",
    "expect",
}  # fmt: skip
MAX_DEBOUNCE = 900  # an SQS message can be delayed at most 15 minutes
MAX_WAIT = 86400
MAX_FRESHNESS = 2 * 86400  # Polytomic keeps events 48 hours: a promise longer than that could not be checked
MIN_HOLD, MAX_HOLD = 60, 30 * 86400
# What people write for an action, and the action they mean.
ACTION_ALIASES = {
    "pause": "deactivate", "disable": "deactivate", "suspend": "deactivate", "freeze": "deactivate",
    "resume": "activate", "unpause": "activate", "enable": "activate", "thaw": "activate", "unfreeze": "activate",
    "run": "start", "trigger": "start", "sync": "start",
}  # fmt: skip
_S3_FIELDS = {"bucket", "key", "events", "reconcile"}
_MODEL_OPTIONS = {"resync": bool, "test": bool, "identities": list}
_BULK_OPTIONS = {"fetch_mode": str, "resync_mode": str, "schemas": list, "test": bool}
_BULK_ENUMS = {"fetch_mode": ("none", "incremental", "full"), "resync_mode": ("refetch", "resync", "rebuild")}
# A field one level off is a common slip (YAML indentation): say where it belongs, not just "unknown".
_SYNC_FIELDS = {"id", "type", "activate_first"} | set(_MODEL_OPTIONS) | set(_BULK_OPTIONS)
_UNDER_S3 = "belongs under s3"
_UNDER_SYNCS = "belongs under syncs[n], on each sync it applies to"
_ON_ROUTE = "belongs on the route itself"
_UNDER_SCHEDULE = "belongs under schedule, as in schedule: {name: NAME, cron: ...}"
_BELONGS = (
    (_ROUTE_FIELDS, _ON_ROUTE),
    (_S3_FIELDS, _UNDER_S3),
    (_SYNC_FIELDS, _UNDER_SYNCS),
    (SCHEDULE_FIELDS - {"name"}, _UNDER_SCHEDULE),
)


def _misplaced(raw: Mapping[Any, Any], allowed: set[str], where: str, here: str, problems: list[str]) -> None:
    """The fields not allowed `here`: where each one belongs when it is a field of another level, the
    rest as unknown. `where` prefixes the field (`s3` → `s3.key`; "" on the route itself)."""
    unknown: list[str] = []
    for field in sorted(set(map(str, raw)) - allowed):
        belongs = next((place for fields, place in _BELONGS if field in fields), None)
        if belongs is not None:
            problems.append(f"{where + '.' if where else ''}{field}: {belongs}, not {here}")
        elif (meant := _misspelt(field, allowed)) is not None:
            problems.append(f"{where + '.' if where else ''}{field}: unknown field; did you mean {meant}?")
        else:
            unknown.append(field)
    if unknown:
        problems.append(f"{where + ': ' if where else ''}unknown field(s): {', '.join(unknown)}")


def _misspelt(field: str, allowed: set[str]) -> str | None:
    """The field `field` most probably meant: one of this level (`evnets` → `events`), else one of another
    level, with where that one belongs (`resynk` on the route → `resync (under syncs[n])`)."""
    meant = close_to(field, sorted(allowed))
    if meant is not None:
        return meant
    for fields, place in _BELONGS:
        if (meant := close_to(field, sorted(fields))) is not None:
            return f"{meant} (it {place})"
    return None


class RoutesError(ValueError):
    """The routes file is invalid; the message lists every problem with its route and field.

    `problems` holds the same problems one by one (without the "routes file ..." heading).
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems is not None else [message]


def file_error(source: str, problem: str) -> RoutesError:
    """The whole file is unusable (unreadable, not YAML, the wrong shape): one problem."""
    return RoutesError(f"routes file {source}: {problem}", [problem])


def invalid(source: str, problems: Sequence[str]) -> RoutesError:
    listing = "\n  - ".join(problems)
    plural = "s" if len(problems) > 1 else ""
    return RoutesError(f"routes file {source} is invalid ({len(problems)} problem{plural}):\n  - {listing}", problems)


def parse_routes(
    document: Any, *, source: str = "routes", problems: Sequence[str] = (), check_zones: bool = False
) -> Routes:
    """Validate a routes document; `problems` already found in its text (duplicate keys) are listed first.

    `check_zones`: also ask the time zone database about each schedule's zone (the build, `validate`).
    """
    found = list(problems)
    shape = _shape_problem(document)
    if shape is not None:
        raise invalid(source, [*found, shape]) if found else file_error(source, shape)
    extra = sorted(set(map(str, document)) - {"routes"})
    if extra:
        misplaced = [name for name in extra if name in _ROUTE_FIELDS | _S3_FIELDS | _SYNC_FIELDS]
        verb = "belongs" if len(misplaced) == 1 else "belong"
        hint = f"; {', '.join(misplaced)} {verb} in a route, under routes" if misplaced else ""
        found.append(f"unknown top-level field(s): {', '.join(extra)}{hint}")
    raw_routes = document["routes"]

    routes: list[Route] = []
    names: set[str] = set()
    schedules: dict[str, tuple[str, ScheduleSpec | None]] = {}
    for index, raw in enumerate(raw_routes):
        label = f"routes[{index}]"
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and raw["name"]:
            label = f"route '{raw['name']}'"
        route_problems: list[str] = []
        route = _parse_route(raw, route_problems, check_zones=check_zones)
        if route is not None and route.name in names:
            route_problems.append(f"name: '{route.name}' is used by an earlier route; names must be unique")
        found.extend(f"{label}: {problem}" for problem in route_problems)
        if route is not None and not route_problems:
            names.add(route.name)
            routes.append(route)
            if route.schedule:
                schedules[route.name] = (route.schedule, route.schedule_spec)
    found.extend(definitions(schedules)[1])
    found.extend(chain_cycles(routes))
    if found:
        raise invalid(source, found)
    return Routes(routes)


def _shape_problem(document: Any) -> str | None:
    """Why the document is no list of routes at all, or None."""
    if not isinstance(document, Mapping) or "routes" not in document:
        return "expected a mapping with a 'routes' list at the top"
    raw_routes = document["routes"]
    if raw_routes is not None and not isinstance(raw_routes, list):
        return "'routes' must be a list"
    if not raw_routes:
        return "'routes' is empty, so nothing would ever fire; add at least one route"
    return None


def _parse_route(raw: Any, problems: list[str], *, check_zones: bool = False) -> Route | None:
    if not isinstance(raw, Mapping):
        problems.append("must be a mapping with name, a trigger (s3, schedule or polytomic) and syncs")
        return None
    _misplaced(raw, _ROUTE_FIELDS, "", "on the route itself", problems)

    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append("name: required; 1-64 letters, digits, '-' or '_'")
        name = ""

    action = raw.get("action", "start")
    if action not in ACTION_KINDS:
        meant = did_you_mean(action, ACTION_KINDS, ACTION_ALIASES)
        problems.append(f"action: must be one of {', '.join(ACTION_KINDS)} (got {action!r}){meant}")
        action = "start"

    triggers = [kind for kind in ("s3", "schedule", "polytomic") if kind in raw]
    fields: dict[str, Any] = {}
    if len(triggers) != 1:
        problems.append("needs exactly one trigger: s3, schedule or polytomic")
    elif triggers[0] == "s3":
        fields = _parse_s3(raw["s3"], problems)
    elif triggers[0] == "polytomic":
        fields = parse_chain(raw["polytomic"], problems)
    else:
        schedule, spec = parse_schedule(raw["schedule"], problems, check_zone=check_zones)
        fields = {"schedule": schedule, "schedule_spec": spec}

    syncs = _parse_syncs(raw.get("syncs"), cast(ActionKind, action), problems)
    debounce, max_wait = _parse_debounce(raw, action, problems)
    freshness = _parse_freshness(raw.get("freshness"), action, problems)
    hold = _parse_hold(raw.get("hold"), action, problems)
    if "gate" in raw:
        fields["gate"] = _parse_gated(raw, triggers, fields, action, problems)
    if raw.get("expect") is not None:
        if triggers != ["s3"]:
            problems.append("expect: only applies to an s3 route (an arrival deadline for its objects)")
        else:
            glob = fields.get("key_pattern")
            fields["expect"] = parse_expect(raw["expect"], problems, check_zone=check_zones, glob=glob)
            if fields["expect"] is not None:
                problems.extend(fields["expect"].partition_problems(fields.get("gate") is not None, glob))
    if problems:
        return None
    return Route(
        name=name,
        action=cast(ActionKind, action),
        syncs=syncs,
        debounce=debounce,
        max_wait=max_wait,
        freshness=freshness,
        hold=hold,
        **fields,
    )


def _parse_gated(
    raw: Mapping[str, Any], triggers: list[str], fields: dict[str, Any], action: Any, problems: list[str]
) -> Any:
    """`gate:` (routing.gates): only on an S3 route that starts syncs, and instead of a debounce."""
    if triggers != ["s3"]:
        problems.append("gate: only applies to an s3 route (a gate waits for a partition of its keys)")
        return None
    if action != "start":
        problems.append("gate: only applies to action start")
    if "debounce" in raw:
        problems.append(
            "debounce: a gated route starts once per complete partition; drop debounce (gate.quiet waits for quiet)"
        )
    key = fields.get("key")
    return parse_gate(raw["gate"], fields.get("key_pattern"), key if isinstance(key, str) else "", problems)


def _parse_freshness(raw: Any, action: Any, problems: list[str]) -> int:
    """`freshness: 30m`: each trigger's data in a completed run within this long, or it is reported."""
    if raw is None:
        return 0
    duration = duration_field(raw, "freshness", problems, low=60, high=MAX_FRESHNESS)
    if duration is None:
        return 0
    if action != "start":
        problems.append("freshness: only applies to action start")
    return duration.seconds


def _parse_hold(raw: Any, action: Any, problems: list[str]) -> int:
    """`hold: 3d`: how long a start that meets a paused sync waits for it to be active again, then is parked."""
    if raw is None:
        return DEFAULT_HOLD_SECONDS
    duration = duration_field(raw, "hold", problems, low=MIN_HOLD, high=MAX_HOLD)
    if duration is None:
        return DEFAULT_HOLD_SECONDS
    if action != "start":
        problems.append("hold: only applies to action start (a start that meets a paused sync is held)")
    return duration.seconds


def _parse_debounce(raw: Mapping[str, Any], action: Any, problems: list[str]) -> tuple[int, int]:
    """`debounce`: wait this long for more files before one start; `max_wait`: but never longer than this."""
    if "debounce" not in raw:
        if raw.get("max_wait") is not None:
            problems.append("max_wait: only applies together with debounce")
        return 0, 0
    debounce = duration_field(raw["debounce"], "debounce", problems, low=1, high=MAX_DEBOUNCE)
    if debounce is None:
        return 0, 0
    if action != "start":
        problems.append("debounce: only applies to action start")
    if raw.get("max_wait") is None:
        return debounce.seconds, debounce.seconds
    max_wait = duration_field(raw["max_wait"], "max_wait", problems, low=debounce.seconds, high=MAX_WAIT)
    if max_wait is None:
        return 0, 0
    return debounce.seconds, max_wait.seconds


def _parse_s3(raw: Any, problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append("s3: must be a mapping with bucket, key and events")
        return {}
    _misplaced(raw, _S3_FIELDS, "s3", "under s3", problems)
    bucket = raw.get("bucket")
    if not is_bucket_name(bucket):
        problems.append(f"s3.bucket: must be an S3 bucket name (got {bucket!r})")
    key = raw.get("key", "**")
    pattern = None
    if not isinstance(key, str):
        problems.append(f"s3.key: must be a glob string (got {key!r})")
    elif key.startswith("/"):
        problems.append(
            f"s3.key: S3 keys never start with '/', so it can never match; drop the leading / (got {key!r})"
        )
    else:
        try:
            pattern = compile_glob(key)
        except ValueError as error:
            problems.append(f"s3.key: {error} (got {key!r})")
    events = events_field(raw, "s3", "created", S3_EVENT_KINDS, problems)
    reconcile = parse_reconcile(raw["reconcile"], problems) if raw.get("reconcile") is not None else None
    if reconcile is not None and events and "created" not in events:
        problems.append("s3.reconcile: a listing finds objects, never deletions; add created to s3.events or drop it")
    return {
        "reconcile": reconcile,
        "bucket": bucket,
        "key": key,
        "key_pattern": pattern,
        "key_prefix": literal_prefix(key) if isinstance(key, str) else "",
        "events": events,
    }


def _parse_syncs(raw: Any, action: ActionKind, problems: list[str]) -> tuple[SyncTarget, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("syncs: must be a non-empty list of {id: <sync uuid>, ...}")
        return ()
    syncs: list[SyncTarget] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(raw):
        where = f"syncs[{index}]"
        sync = _parse_sync(item, action, where, problems)
        if sync is None:
            continue
        if (sync.type, sync.id) in seen:
            problems.append(f"{where}.id: {sync.id} is listed twice in this route")
        seen.add((sync.type, sync.id))
        syncs.append(sync)
    return tuple(syncs)


def _parse_sync(raw: Any, action: ActionKind, where: str, problems: list[str]) -> SyncTarget | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a mapping with an id")
        return None
    before = len(problems)
    sync_id = raw.get("id")
    if not is_uuid(sync_id):
        problems.append(f"{where}.id: must be a sync UUID (got {sync_id!r})")
    sync_type = raw.get("type", "model")
    if sync_type not in SYNC_TYPES:
        problems.append(f"{where}.type: must be model or bulk (got {sync_type!r})")
        return None
    allowed = _MODEL_OPTIONS if sync_type == "model" else _BULK_OPTIONS
    activate_first = raw.get("activate_first", False)
    if not isinstance(activate_first, bool):
        problems.append(f"{where}.activate_first: must be true or false")
    elif activate_first and action != "start":
        problems.append(f"{where}.activate_first: only applies to action start")

    options: list[tuple[str, Any]] = []
    for name in raw:
        if name in ("id", "type", "activate_first"):
            continue
        value = raw[name]
        if name in _ROUTE_FIELDS or name in _S3_FIELDS:
            belongs = _ON_ROUTE if name in _ROUTE_FIELDS else _UNDER_S3
            problems.append(f"{where}.{name}: {belongs}, not under {where}")
            continue
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            meant = did_you_mean(name, sorted({"id", "type", "activate_first", *allowed}))
            problems.append(f"{where}.{name}: not an option of a {sync_type} sync (options: {known}){meant}")
            continue
        if action != "start":
            problems.append(f"{where}.{name}: options only apply to action start")
            continue
        expected = allowed[name]
        if not isinstance(value, expected):
            problems.append(f"{where}.{name}: must be a {expected.__name__} (got {value!r})")
            continue
        if name in _BULK_ENUMS and value not in _BULK_ENUMS[name]:
            problems.append(f"{where}.{name}: must be one of {', '.join(_BULK_ENUMS[name])} (got {value!r})")
            continue
        if isinstance(value, list):
            if not all(isinstance(item, str) and item for item in value):
                problems.append(f"{where}.{name}: must be a list of non-empty strings")
                continue
            value = tuple(value)
        options.append((str(name), value))
    names = {name for name, _ in options}
    if {"test", "resync_mode"} <= names and sync_type == "bulk":
        problems.append(f"{where}: test cannot be combined with resync_mode (Polytomic rejects it)")
    if len(problems) > before:
        return None
    return SyncTarget(
        id=str(sync_id).lower(),
        type=cast(SyncType, sync_type),
        options=tuple(options),
        activate_first=bool(activate_first),
    )
