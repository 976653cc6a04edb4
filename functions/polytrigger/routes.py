"""The routes file: which triggers lead to which actions on which syncs.

The file is validated as a whole when it is loaded (at cold start): every problem is reported at
once, each with its route and field, and nothing half-loaded ever runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from polytrigger.actions import Action, ActionKind, SyncTarget, SyncType
from polytrigger.globs import compile_glob, literal_prefix, literal_suffix
from polytrigger.triggers import S3EventKind, Trigger

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SCHEDULE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_ROUTE_FIELDS = {"name", "s3", "schedule", "action", "syncs", "debounce", "max_wait"}
MAX_DEBOUNCE = 900  # an SQS message can be delayed at most 15 minutes
_S3_FIELDS = {"bucket", "key", "events"}
_ACTIONS: tuple[ActionKind, ...] = ("start", "activate", "deactivate")
_S3_EVENTS: tuple[S3EventKind, ...] = ("created", "deleted")
_MODEL_OPTIONS = {"resync": bool, "test": bool, "identities": list}
_BULK_OPTIONS = {"fetch_mode": str, "resync_mode": str, "schemas": list, "test": bool}
_BULK_ENUMS = {"fetch_mode": ("none", "incremental", "full"), "resync_mode": ("refetch", "resync", "rebuild")}


class RoutesError(ValueError):
    """The routes file is invalid; the message lists every problem with its route and field."""


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    action: ActionKind
    syncs: tuple[SyncTarget, ...]
    bucket: str = ""
    key: str = ""
    key_pattern: re.Pattern[str] | None = None
    key_prefix: str = ""
    events: frozenset[S3EventKind] = frozenset()
    schedule: str = ""
    debounce: int = 0
    max_wait: int = 0

    def matches(self, trigger: Trigger) -> bool:
        if trigger.kind == "schedule":
            return self.schedule == trigger.schedule
        return (
            self.bucket == trigger.bucket
            and trigger.event in self.events
            and trigger.key.startswith(self.key_prefix)
            and self.key_pattern is not None
            and self.key_pattern.fullmatch(trigger.key) is not None
        )

    def actions_for(self, trigger: Trigger) -> list[Action]:
        actions: list[Action] = []
        for sync in self.syncs:
            if self.action == "start" and sync.activate_first:
                actions.append(Action(route=self.name, kind="activate", sync=sync, trigger=trigger))
            actions.append(
                Action(
                    route=self.name,
                    kind=self.action,
                    sync=sync,
                    trigger=trigger,
                    debounce=self.debounce,
                    max_wait=self.max_wait,
                )
            )
        return actions

    @property
    def trigger_label(self) -> str:
        if self.schedule:
            return f"schedule {self.schedule}"
        return f"s3://{self.bucket}/{self.key} on {', '.join(sorted(self.events))}"


class Routes:
    """Validated routes, indexed so that matching a trigger does not scan every route.

    Schedules are indexed by name. S3 routes are indexed by (bucket, event) and then by the folder part
    of their glob's literal prefix (up to and including its last `/`: `orders/2026-*.csv` → `orders/`,
    `**/*.csv` → ``). A key is looked up only at its own folder prefixes (``, `a/`, `a/b/`, ... no
    deeper than the deepest indexed folder), so each record tests only the routes whose literal prefix
    can be a prefix of its key, whatever the number of routes; those are then checked against the full
    literal prefix and the compiled glob. Results keep file order.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._by_schedule: dict[str, list[Route]] = {}
        self._by_s3: dict[tuple[str, str], _FolderIndex] = {}
        for order, route in enumerate(self.routes):
            if route.schedule:
                self._by_schedule.setdefault(route.schedule, []).append(route)
            elif route.key_pattern is not None:  # a route without a pattern never matches an S3 trigger
                for event in route.events:
                    index = self._by_s3.setdefault((route.bucket, event), _FolderIndex())
                    index.add(order, route, route.key_pattern)

    def __len__(self) -> int:
        return len(self.routes)

    def matching(self, trigger: Trigger) -> list[Route]:
        if trigger.kind == "schedule":
            return [route for route in self._by_schedule.get(trigger.schedule, ()) if route.matches(trigger)]
        index = self._by_s3.get((trigger.bucket, trigger.event))
        return index.matching(trigger.key) if index is not None else []

    def actions_for(self, triggers: Iterable[Trigger]) -> list[Action]:
        """All actions of an event, in route order; the same (action, sync) is kept once per event."""
        seen: set[tuple[str, str, str]] = set()
        actions: list[Action] = []
        for trigger in triggers:
            for route in self.matching(trigger):
                for action in route.actions_for(trigger):
                    if action.dedup_scope not in seen:
                        seen.add(action.dedup_scope)
                        actions.append(action)
        return actions


_Entry = tuple[int, str, str, Callable[[str], object], Route]  # file order, literal prefix and suffix, glob


class _FolderIndex:
    """The S3 routes of one (bucket, event), keyed by the folder part of their literal key prefix."""

    __slots__ = ("depth", "folders", "root")

    def __init__(self) -> None:
        self.folders: dict[str, list[_Entry]] = {}  # folder ("a/b/") -> its routes, in file order
        self.root: list[_Entry] = []  # routes whose literal prefix has no folder: candidates for every key
        self.depth = 0  # the most slashes in any indexed folder: deeper folders of a key need no lookup

    def add(self, order: int, route: Route, pattern: re.Pattern[str]) -> None:
        prefix = route.key_prefix
        folder = prefix[: prefix.rfind("/") + 1]
        entry = (order, prefix, literal_suffix(route.key), pattern.fullmatch, route)
        if folder:
            self.folders.setdefault(folder, []).append(entry)
            self.depth = max(self.depth, folder.count("/"))
        else:
            self.root.append(entry)

    def matching(self, key: str) -> list[Route]:
        found: list[_Entry] = []
        levels = 0
        for entry in self.root:
            if key.startswith(entry[1]) and key.endswith(entry[2]) and entry[3](key) is not None:
                found.append(entry)
        if found:
            levels = 1
        folders = self.folders
        slash = -1
        for _ in range(self.depth):
            slash = key.find("/", slash + 1)
            if slash < 0:
                break
            entries = folders.get(key[: slash + 1])
            if entries is None:
                continue
            before = len(found)
            for entry in entries:
                if key.startswith(entry[1]) and key.endswith(entry[2]) and entry[3](key) is not None:
                    found.append(entry)
            if len(found) > before:
                levels += 1
        if levels > 1:
            found.sort(key=_order)  # matches from several folders: back to file order
        return [entry[4] for entry in found]


def _order(entry: _Entry) -> int:
    return entry[0]


def load_routes(path: str | Path) -> Routes:
    """Read and validate a routes file (YAML; JSON is valid YAML), from its pre-validated cache when current."""
    from polytrigger.routes_cache import cached_document

    source = Path(path)
    data = _read(source)
    document = cached_document(source, data)
    if document is None:
        document = _parse_yaml(source, data)
    return parse_routes(document, source=str(source))


def read_document(path: str | Path) -> tuple[bytes, Any]:
    """The routes file's bytes and its validated document (RoutesError lists every problem)."""
    source = Path(path)
    data = _read(source)
    document = _parse_yaml(source, data)
    parse_routes(document, source=str(source))
    return data, document


def _read(source: Path) -> bytes:
    try:
        return source.read_bytes()
    except OSError as error:
        raise RoutesError(f"routes file {source}: cannot be read ({error.strerror or error})") from None


def _parse_yaml(source: Path, data: bytes) -> Any:
    import yaml  # deferred: only a cold start without a current cache pays for it

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RoutesError(f"routes file {source}: not UTF-8 text (byte {error.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise RoutesError(f"routes file {source}: not valid YAML{at}: {problem}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        # SafeLoader converts date-like and tagged scalars with plain Python calls (2026-13-01, !!int abc,
        # !!bool maybe) and composes nodes recursively: those fail with builtin exceptions, not YAMLError.
        problem = "nested too deeply" if isinstance(error, RecursionError) else f"a value cannot be read ({error})"
        raise RoutesError(f"routes file {source}: not valid YAML: {problem[:200]}") from None


def parse_routes(document: Any, *, source: str = "routes") -> Routes:
    problems: list[str] = []
    if not isinstance(document, Mapping) or "routes" not in document:
        raise RoutesError(f"routes file {source}: expected a mapping with a 'routes' list at the top")
    extra = sorted(set(map(str, document)) - {"routes"})
    if extra:
        problems.append(f"unknown top-level field(s): {', '.join(extra)}")
    raw_routes = document["routes"]
    if raw_routes is None:
        raw_routes = []
    if not isinstance(raw_routes, list):
        raise RoutesError(f"routes file {source}: 'routes' must be a list")

    routes: list[Route] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_routes):
        label = f"routes[{index}]"
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and raw["name"]:
            label = f"route '{raw['name']}'"
        route_problems: list[str] = []
        route = _parse_route(raw, route_problems)
        if route is not None and route.name in names:
            route_problems.append(f"name: '{route.name}' is used by an earlier route; names must be unique")
        problems.extend(f"{label}: {problem}" for problem in route_problems)
        if route is not None and not route_problems:
            names.add(route.name)
            routes.append(route)
    if problems:
        listing = "\n  - ".join(problems)
        plural = "s" if len(problems) > 1 else ""
        raise RoutesError(f"routes file {source} is invalid ({len(problems)} problem{plural}):\n  - {listing}")
    return Routes(routes)


def _parse_route(raw: Any, problems: list[str]) -> Route | None:
    if not isinstance(raw, Mapping):
        problems.append("must be a mapping with name, a trigger (s3 or schedule) and syncs")
        return None
    unknown = sorted(set(map(str, raw)) - _ROUTE_FIELDS)
    if unknown:
        problems.append(f"unknown field(s): {', '.join(unknown)}")

    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append("name: required; 1-64 letters, digits, '-' or '_'")
        name = ""

    action = raw.get("action", "start")
    if action not in _ACTIONS:
        problems.append(f"action: must be one of {', '.join(_ACTIONS)} (got {action!r})")
        action = "start"

    has_s3, has_schedule = "s3" in raw, "schedule" in raw
    fields: dict[str, Any] = {}
    if has_s3 == has_schedule:
        problems.append("needs exactly one trigger: s3 or schedule")
    elif has_s3:
        fields = _parse_s3(raw["s3"], problems)
    else:
        schedule = raw["schedule"]
        if not isinstance(schedule, str) or not _SCHEDULE.fullmatch(schedule):
            problems.append("schedule: must be a schedule name (1-64 letters, digits, '.', '-' or '_')")
        else:
            fields = {"schedule": schedule}

    syncs = _parse_syncs(raw.get("syncs"), cast(ActionKind, action), problems)
    debounce, max_wait = _parse_debounce(raw, action, problems)
    if problems:
        return None
    return Route(
        name=name, action=cast(ActionKind, action), syncs=syncs, debounce=debounce, max_wait=max_wait, **fields
    )


def _parse_debounce(raw: Mapping[str, Any], action: Any, problems: list[str]) -> tuple[int, int]:
    """`debounce`: wait this long for more files before one start; `max_wait`: but never longer than this."""
    debounce, max_wait = raw.get("debounce", 0), raw.get("max_wait")
    if "debounce" not in raw:
        if max_wait is not None:
            problems.append("max_wait: only applies together with debounce")
        return 0, 0
    if isinstance(debounce, bool) or not isinstance(debounce, int) or not 1 <= debounce <= MAX_DEBOUNCE:
        problems.append(f"debounce: must be a whole number of seconds from 1 to {MAX_DEBOUNCE} (got {debounce!r})")
        return 0, 0
    if action != "start":
        problems.append("debounce: only applies to action start")
    if max_wait is None:
        return debounce, debounce
    if isinstance(max_wait, bool) or not isinstance(max_wait, int) or not debounce <= max_wait <= 86400:
        problems.append(f"max_wait: must be whole seconds from debounce ({debounce}) to 86400 (got {max_wait!r})")
        return 0, 0
    return debounce, max_wait


def _parse_s3(raw: Any, problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append("s3: must be a mapping with bucket, key and events")
        return {}
    unknown = sorted(set(map(str, raw)) - _S3_FIELDS)
    if unknown:
        problems.append(f"s3: unknown field(s): {', '.join(unknown)}")
    bucket = raw.get("bucket")
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        problems.append(f"s3.bucket: must be an S3 bucket name (got {bucket!r})")
    key = raw.get("key", "**")
    pattern = None
    if not isinstance(key, str):
        problems.append(f"s3.key: must be a glob string (got {key!r})")
    else:
        try:
            pattern = compile_glob(key)
        except ValueError as error:
            problems.append(f"s3.key: {error} (got {key!r})")
    events = raw.get("events", ["created"])
    if isinstance(events, str):
        events = [events]
    if (
        not isinstance(events, list)
        or not events
        or any(event not in _S3_EVENTS for event in events)
        or len(set(events)) != len(events)
    ):
        problems.append(f"s3.events: must be a list of created and/or deleted (got {events!r})")
        events = []
    return {
        "bucket": bucket,
        "key": key,
        "key_pattern": pattern,
        "key_prefix": literal_prefix(key) if isinstance(key, str) else "",
        "events": frozenset(events),
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
    if not isinstance(sync_id, str) or not _UUID.fullmatch(sync_id):
        problems.append(f"{where}.id: must be a sync UUID (got {sync_id!r})")
    sync_type = raw.get("type", "model")
    if sync_type not in ("model", "bulk"):
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
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            problems.append(f"{where}.{name}: not an option of a {sync_type} sync (options: {known})")
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
