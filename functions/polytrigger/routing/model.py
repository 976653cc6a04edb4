"""Validated routes, and the index that finds the routes a trigger matches without scanning them all."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from polytrigger.core.actions import Action, ActionKind, SyncTarget
from polytrigger.core.triggers import S3EventKind, Trigger
from polytrigger.routing.expect import Expect
from polytrigger.routing.gates import Gate
from polytrigger.routing.globs import Glob, Partition, literal_suffix
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
    debounce: int = 0
    freshness: int = 0  # seconds: each trigger's data should be in a completed run by then (0: no promise)
    max_wait: int = 0
    hold: int = DEFAULT_HOLD_SECONDS  # seconds a start that meets a paused sync is held before it is parked
    gate: Gate | None = None  # an S3 route that waits for each partition to be complete (not acted on yet)

    def partition(self, key: str) -> Partition | None:
        """The partition of a key this S3 route's glob matches (`()` without placeholders), else None."""
        return self.key_pattern.partition(key) if self.key_pattern is not None else None

    expect: Expect | None = None  # an S3 route's arrival deadlines (checked by `deadlines`)

    def matches(self, trigger: Trigger) -> bool:
        if trigger.kind == "schedule":
            return self.schedule == trigger.schedule
        if trigger.kind == "polytomic":
            return (
                bool(self.upstream) and self.upstream == trigger.upstream and trigger.status in self.upstream_statuses
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
        self._by_s3: dict[tuple[str, str], _FolderIndex] = {}
        for order, route in enumerate(self.routes):
            self._by_name.setdefault(route.name, route)
            if route.schedule:
                self._by_schedule.setdefault(route.schedule, []).append(route)
            elif route.upstream:
                self._by_upstream.setdefault(route.upstream, []).append(route)
            elif route.key_pattern is not None:  # a route without a pattern never matches an S3 trigger
                for event in route.events:
                    index = self._by_s3.setdefault((route.bucket, event), _FolderIndex())
                    index.add(order, route, route.key_pattern)

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
            return [route for route in self._by_upstream.get(trigger.upstream, ()) if route.matches(trigger)]
        index = self._by_s3.get((trigger.bucket, trigger.event))
        return index.matching(trigger.key) if index is not None else []

    def actions_for(self, triggers: Iterable[Trigger]) -> list[Action]:
        """All actions of an event, in route order; the same (action, sync, options) is kept once per event."""
        seen: set[tuple[str, str, str, str]] = set()
        actions: list[Action] = []
        for trigger in triggers:
            for route in self.matching(trigger):
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
