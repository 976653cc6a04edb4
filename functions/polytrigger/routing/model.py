"""Validated routes, and the index that finds the routes a trigger matches without scanning them all."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from polytrigger.core.actions import Action, ActionKind, SyncTarget
from polytrigger.core.triggers import S3EventKind, Trigger
from polytrigger.routing.expect import Expect
from polytrigger.routing.gates import S3_URL, Gate, fill
from polytrigger.routing.globs import Glob, Partition, compile_glob, literal_suffix
from polytrigger.routing.reconciling import Reconcile
from polytrigger.routing.schedules import ScheduleSpec

DEFAULT_HOLD_SECONDS = 7 * 86400  # a start that meets a paused sync waits this long for it by default


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    action: ActionKind
    syncs: tuple[SyncTarget, ...]
    bucket: str = ""
    key: str = ""
    key_pattern: Glob | None = None
    key_prefix: str = ""
    events: frozenset[S3EventKind] = frozenset()
    schedule: str = ""
    schedule_spec: ScheduleSpec | None = None  # None: a schedule made elsewhere (or an S3 route)
    upstream: str = ""  # a chained route: the sync whose run ending starts it
    upstream_statuses: frozenset[str] = frozenset()  # ... ending so (completed, failed, ...)
    upstreams: tuple[str, ...] = ()  # a join: the syncs that must all end so (2..N; `upstream` is then "")
    within: int = 0  # a join: seconds within which all of its endings must fall
    debounce: int = 0
    freshness: int = 0  # seconds: each trigger's data should be in a completed run by then (0: no promise)
    max_wait: int = 0
    hold: int = DEFAULT_HOLD_SECONDS  # seconds a start that meets a paused sync is held before it is parked
    gate: Gate | None = None  # an S3 route that starts its syncs once per complete partition

    def partition(self, key: str) -> Partition | None:
        """The partition of a key this S3 route's glob matches (`()` without placeholders), else None."""
        return self.key_pattern.partition(key) if self.key_pattern is not None else None

    expect: Expect | None = None  # an S3 route's arrival deadlines (checked by `deadlines`)
    reconcile: Reconcile | None = None  # an S3 route's prefix listed on a schedule (`reconciliation`)

    @property
    def followed(self) -> tuple[str, ...]:
        """The upstream syncs whose run endings this route follows (none unless it is chained)."""
        return self.upstreams or ((self.upstream,) if self.upstream else ())

    def waits_for(self, sync_id: str, status: str) -> bool:
        """This join counts such an ending towards its set (it starts only once the set is complete)."""
        return sync_id in self.upstreams and status in self.upstream_statuses

    def matches(self, trigger: Trigger) -> bool:
        if trigger.kind == "schedule":
            return self.schedule == trigger.schedule
        if trigger.kind == "polytomic" and self.upstreams:  # a join matches its complete set, never one ending
            return (
                self.waits_for(trigger.upstream, trigger.status)
                and (trigger.upstream, trigger.execution) in trigger.after
                and sorted(sync for sync, _ in trigger.after) == sorted(self.upstreams)
            )
        if trigger.kind == "polytomic":
            return (
                bool(self.upstream)
                and self.upstream == trigger.upstream
                and trigger.status in self.upstream_statuses
                and not trigger.after
            )
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


@dataclass(frozen=True, slots=True)
class Arrival:
    """An object landing in a gated route's partition, and what it is to the gate."""

    route: Route
    partition: Partition
    trigger: Trigger
    counted: bool  # in the route's own glob: counts toward at_least
    marker: bool  # the partition's marker
    listed: bool  # one of the gate's listed keys
    manifest: bool  # the partition's manifest

    @property
    def gate(self) -> Gate:
        return self.route.gate  # type: ignore[return-value]  # an arrival is made only for a gated route


def arrival(route: Route, partition: Partition, trigger: Trigger, *, counted: bool) -> Arrival:
    """What `trigger`'s object is to `route`'s gate in `partition`."""
    gate = route.gate
    assert gate is not None
    here = trigger.bucket == route.bucket
    url = trigger.key if here else f"{S3_URL}{trigger.bucket}/{trigger.key}"
    return Arrival(
        route=route,
        partition=partition,
        trigger=trigger,
        counted=counted,
        marker=here and bool(gate.marker) and fill(gate.marker, partition) == trigger.key,
        listed=any(item.fill(partition, route.bucket) == url for item in gate.keys),
        manifest=here and gate.manifest is not None and fill(gate.manifest.key, partition) == trigger.key,
    )


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
        self._by_name: dict[str, Route] = {}  # names are unique (parse checks); else the first, as in file order
        self._by_schedule: dict[str, list[Route]] = {}
        self._by_upstream: dict[str, list[Route]] = {}
        self._joins: dict[str, list[Route]] = {}  # upstream sync -> the joins waiting for its endings
        self._by_s3: dict[tuple[str, str], _FolderIndex] = {}
        self._gate_keys: dict[str, list[tuple[Glob, Route]]] = {}  # bucket -> a gate's listed key templates
        for order, route in enumerate(self.routes):
            self._by_name.setdefault(route.name, route)
            if route.schedule:
                self._by_schedule.setdefault(route.schedule, []).append(route)
            elif route.upstream:
                self._by_upstream.setdefault(route.upstream, []).append(route)
            elif route.upstreams:
                for upstream in route.upstreams:
                    self._joins.setdefault(upstream, []).append(route)
            elif route.key_pattern is not None:  # a route without a pattern never matches an S3 trigger
                for event in route.events:
                    index = self._by_s3.setdefault((route.bucket, event), _FolderIndex())
                    index.add(order, route, route.key_pattern)
                for item in route.gate.keys if route.gate is not None else ():
                    self._gate_keys.setdefault(item.bucket or route.bucket, []).append(
                        (compile_glob(item.template), route)
                    )

    def __len__(self) -> int:
        return len(self.routes)

    def named(self, name: str) -> Route | None:
        return self._by_name.get(name)

    def hold_limit(self, name: str) -> int:
        """How long the route's starts are held while their sync is paused (seconds), before parking."""
        route = self.named(name)
        return route.hold if route is not None else DEFAULT_HOLD_SECONDS

    def matching(self, trigger: Trigger) -> list[Route]:
        if trigger.kind == "schedule":
            return [route for route in self._by_schedule.get(trigger.schedule, ()) if route.matches(trigger)]
        if trigger.kind == "polytomic":
            candidates = self._joins if trigger.after else self._by_upstream
            return [route for route in candidates.get(trigger.upstream, ()) if route.matches(trigger)]
        index = self._by_s3.get((trigger.bucket, trigger.event))
        return index.matching(trigger.key) if index is not None else []

    def arrivals(self, triggers: Iterable[Trigger]) -> list[Arrival]:
        """Each created object's arrival in the partitions of the gated routes it reaches: through a route's
        glob, or as one of a gate's listed keys elsewhere (another prefix or bucket)."""
        found: list[Arrival] = []
        for trigger in triggers:
            if trigger.kind != "s3" or trigger.event != "created":
                continue
            seen: set[tuple[str, Partition]] = set()
            for route in self.matching(trigger):
                partition = route.partition(trigger.key) if route.gate is not None else None
                if partition is not None:
                    seen.add((route.name, partition))
                    found.append(arrival(route, partition, trigger, counted=True))
            for glob, route in self._gate_keys.get(trigger.bucket, ()):
                values = glob.partition(trigger.key)
                names = route.key_pattern.names if route.key_pattern is not None else ()
                if values is None or sorted(name for name, _ in values) != sorted(names):
                    continue  # a template without every placeholder of the route names no one partition
                partition = tuple((name, dict(values)[name]) for name in names)
                if (route.name, partition) not in seen:
                    seen.add((route.name, partition))
                    found.append(arrival(route, partition, trigger, counted=False))
        return found

    def joins_waiting_for(self, sync_id: str, status: str) -> list[Route]:
        """The joins that count this run ending towards their set (they start later, once it is complete)."""
        return [route for route in self._joins.get(sync_id, ()) if route.waits_for(sync_id, status)]

    def actions_for(self, triggers: Iterable[Trigger]) -> list[Action]:
        """All actions of an event, in route order; the same (action, sync, options) is kept once per event.
        A gated route makes none per object: its partition, once complete, does (`gating`)."""
        seen: set[tuple[str, str, str, str]] = set()
        actions: list[Action] = []
        for trigger in triggers:
            for route in self.matching(trigger):
                if route.gate is not None and trigger.kind == "s3":
                    continue
                for action in route.actions_for(trigger):
                    if action.dedup_scope not in seen:
                        seen.add(action.dedup_scope)
                        actions.append(action)
        return actions

    def refusal(self, action: Action) -> str | None:
        """Why these routes would not make `action` of its trigger (None: they would).

        A queued message carries its whole action; the dispatcher performs it only if the routes it
        was deployed with make exactly that action (route, action, sync, options, debounce) of that
        trigger, so a message written by anyone else, or left from routes since changed, is refused.
        """
        route = self.named(action.route)
        if route is None:
            return f"no route is named {action.route[:80]!r}"
        if not route.matches(action.trigger):
            return f"route {route.name} does not match {action.trigger.describe()[:300]}"
        wanted = _shape(action)
        if any(_shape(made) == wanted for made in route.actions_for(action.trigger)):
            return None
        return f"route {route.name} does not {action.kind} {action.sync.type} sync {action.sync.id} with these options"


def _shape(action: Action) -> tuple[object, ...]:
    """What a message's action must agree on with the routes (`activate_first` does not travel)."""
    sync = action.sync
    return (action.route, action.kind, sync.id, sync.type, sync.options, action.debounce, action.max_wait)


_Entry = tuple[int, str, str, Callable[[str], object], Route]  # file order, literal prefix and suffix, glob


class _FolderIndex:
    """The S3 routes of one (bucket, event), keyed by the folder part of their literal key prefix."""

    __slots__ = ("depth", "folders", "root")

    def __init__(self) -> None:
        self.folders: dict[str, list[_Entry]] = {}  # folder ("a/b/") -> its routes, in file order
        self.root: list[_Entry] = []  # routes whose literal prefix has no folder: candidates for every key
        self.depth = 0  # the most slashes in any indexed folder: deeper folders of a key need no lookup

    def add(self, order: int, route: Route, pattern: Glob) -> None:
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
