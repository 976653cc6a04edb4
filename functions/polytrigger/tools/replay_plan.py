"""What `polytrigger replay` would do: the objects matched, their partitions, the starts, and what is skipped.

The plan is made the same way for `--dry-run` and for the live run, so the live run makes exactly the
plan that was printed. For each object listed (or named by an S3 Inventory report), each selected route
that matches it (its glob, and the `--since`/`--until` and `--partition` filters), and each sync of
that route, the object is either skipped or waits for a start:

- skipped, `covered`: a run of the sync created since the object landed has it (the coverage rule of
  `status`, deferral and reconciliation: `dispatch.deferrals.coverage_since`); only for a start any run
  does (`SyncTarget.coverable`): a resync, a test or a full fetch is not done by another run;
- skipped, `held` / `waiting` / `deferred`: its event's start is pending (`tools.fate`), it comes anyway;
- skipped, `started earlier`: the start it would be in was made already (a replay run before this one,
  interrupted or not): its dedup record says so;
- else it is in one start per (sync, options) — per (route, partition) on a gated route — since one run
  of the sync created after all of them landed covers them all. Its trigger is the group's newest
  object (found by `replay`), so its dedup key, and the Idempotency-Key Polytomic sees, are the same
  on a rerun: a replay run twice starts nothing twice.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.triggers import iso
from polytrigger.dispatch.deferrals import coverage_since
from polytrigger.dispatch.landings import SKEW, Landing
from polytrigger.gating.state import partition_text
from polytrigger.reconciliation.listing import Listed
from polytrigger.routing import Routes
from polytrigger.routing.globs import Partition
from polytrigger.routing.model import Route

PENDING = ("held", "waiting", "deferred")  # an event's start is on its way: replay leaves it be
PENDING_MARGIN = 86400.0  # past a route's hold, a day for a deferral's and a debounce window's own limits


@dataclass(frozen=True, slots=True)
class Selection:
    """What the user asked to replay: routes, a bucket and prefix, a LastModified range, partition values."""

    routes: tuple[str, ...] = ()  # route names; none: every S3 route of the bucket
    bucket: str = ""
    prefix: str = ""
    since: datetime | None = None  # LastModified at or after
    until: datetime | None = None  # LastModified before
    partitions: tuple[tuple[str, str, str], ...] = ()  # (placeholder, lowest, highest), both included

    def admits(self, listed: Listed) -> bool:
        if self.bucket and (listed.bucket != self.bucket or not listed.key.startswith(self.prefix)):
            return False
        if self.since is not None and listed.last_modified < self.since:
            return False
        return self.until is None or listed.last_modified < self.until

    def admits_partition(self, partition: Partition) -> bool:
        values = dict(partition)
        return all(name in values and low <= values[name] <= high for name, low, high in self.partitions)

    def chosen(self, routes: Routes) -> list[Route]:
        """The S3 routes that start syncs when an object is created, of those selected."""
        return [
            route
            for route in routes.routes
            if route.key_pattern is not None
            and route.action == "start"
            and "created" in route.events
            and (not self.routes or route.name in self.routes)
            and (not self.bucket or route.bucket == self.bucket)
        ]


class Coverage(Protocol):
    """What the plan reads of the dedup table (`replay_reads.TableCoverage`; a dict in the unit tests)."""

    def landings(self, objects: list[tuple[str, str]]) -> dict[tuple[str, str], Landing]: ...

    def runs(self, sync: SyncTarget, since: float) -> list[tuple[float, str]]:
        """(covers_from, execution id) of the sync's runs covering files from `since` on, earliest first."""
        ...

    def pending(self, listed: Listed, route: str, sync: SyncTarget) -> tuple[str, str] | None:
        """(state, reason) when the object's own start for this sync is held, waiting or deferred."""
        ...

    def done(self, action: Action) -> dict[str, Any] | None:
        """The outcome the action's dedup record keeps, if it was done."""
        ...


@dataclass(frozen=True, slots=True)
class Start:
    """One start the replay makes: for these objects, of this sync, by this route's action."""

    route: str
    partition: Partition
    objects: tuple[Listed, ...]  # in key order; the newest is the action's trigger
    action: Action
    activate: Action | None = None  # the route says activate_first

    @property
    def sync(self) -> SyncTarget:
        return self.action.sync

    def to_dict(self) -> dict[str, Any]:
        newest = self.action.trigger
        return {
            "route": self.route,
            "sync_id": self.sync.id,
            "sync_type": self.sync.type,
            "options": self.sync.option_pairs(),
            "partition": partition_text(self.partition) if self.partition else "",
            "objects": len(self.objects),
            "newest": f"s3://{newest.bucket}/{newest.key}",
            "newest_landed": iso(newest.time),
            "idempotency_key": self.action.dedup_key,
        }


@dataclass(frozen=True, slots=True)
class Skip:
    """One object left out for one sync, and why."""

    listed: Listed
    route: str
    sync: SyncTarget
    reason: str  # covered, held, waiting, deferred, started earlier
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": f"s3://{self.listed.bucket}/{self.listed.key}",
            "route": self.route,
            "sync_id": self.sync.id,
            "sync_type": self.sync.type,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Plan:
    matched: list[Listed] = field(default_factory=list)
    partitions: list[tuple[str, str]] = field(default_factory=list)  # (route, partition), sorted
    starts: list[Start] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    seen: int = 0  # objects listed, matched or not

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for skip in self.skipped:
            counts[skip.reason] += 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "listed": self.seen,
            "matched": len(self.matched),
            "partitions": [{"route": route, "partition": text} for route, text in self.partitions],
            "starts": [start.to_dict() for start in self.starts],
            "skipped": [skip.to_dict() for skip in self.skipped],
            "skipped_by_reason": self.skipped_by_reason(),
        }


_GroupKey = tuple[Any, str, tuple[tuple[str, Any], ...], str, Partition]  # sync type, id, options, route, partition


def make_plan(objects: Iterable[Listed], routes: Routes, selection: Selection, coverage: Coverage, now: float) -> Plan:
    """The plan for these objects; `now`: when an object no event brought is taken to reach polytrigger."""
    chosen = {route.name for route in selection.chosen(routes)}
    plan = Plan()
    groups: dict[_GroupKey, list[tuple[Listed, Route]]] = defaultdict(list)
    partitions: set[tuple[str, str]] = set()
    for listed in _unique(objects):
        plan.seen += 1
        if not selection.admits(listed):
            continue
        hit = False
        for route in routes.matching(listed.trigger("replay")):
            partition = route.partition(listed.key) or ()
            if route.name not in chosen or not selection.admits_partition(partition):
                continue
            hit = True
            if partition:
                partitions.add((route.name, partition_text(partition)))
            gated = route.gate is not None
            for sync in route.syncs:
                key = (sync.type, sync.id, sync.options, route.name if gated else "", partition if gated else ())
                groups[key].append((listed, route))
        if hit:
            plan.matched.append(listed)
    plan.partitions = sorted(partitions)
    landings = coverage.landings([(listed.bucket, listed.key) for listed in plan.matched]) if plan.matched else {}
    for key in sorted(groups, key=_order):
        members = _one_per_object(groups[key])
        sync = next(s for s in members[0][1].syncs if (s.type, s.id, s.options) == key[:3])
        _decide(plan, members, sync, key[4], context=(landings, coverage, now))
    return plan


def _decide(
    plan: Plan,
    members: list[tuple[Listed, Route]],
    sync: SyncTarget,
    partition: Partition,
    *,
    context: tuple[dict[tuple[str, str], Landing], Coverage, float],
) -> None:
    """Skip what a run covers or what is pending; one start for the rest (unless it was made already)."""
    landings, coverage, now = context
    since = {listed: _since(listed, landings.get((listed.bucket, listed.key)), now) for listed, _ in members}
    runs = coverage.runs(sync, min(since.values())) if sync.coverable else []
    bounds = [covers_from for covers_from, _ in runs]
    outstanding: list[tuple[Listed, Route]] = []
    for listed, route in members:
        at = bisect.bisect_left(bounds, since[listed])
        if at < len(runs):
            plan.skipped.append(Skip(listed, route.name, sync, "covered", f"run {runs[at][1]}"))
            continue
        landing = landings.get((listed.bucket, listed.key))
        pending = coverage.pending(listed, route.name, sync) if _may_wait(landing, listed, route, now) else None
        if pending is not None:
            plan.skipped.append(Skip(listed, route.name, sync, pending[0], pending[1]))
            continue
        outstanding.append((listed, route))
    if not outstanding:
        return
    newest, route = max(outstanding, key=lambda member: (member[0].last_modified, member[0].key))
    shape = (sync.type, sync.id, sync.options)  # the newest's route may set activate_first otherwise
    made = [a for a in route.actions_for(newest.trigger("replay")) if (a.sync.type, a.sync.id, a.sync.options) == shape]
    start = next(action for action in made if action.kind == "start")
    activate = next((action for action in made if action.kind == "activate"), None)
    earlier = coverage.done(start)
    if earlier is not None:
        detail = f"{earlier.get('status', 'done')} {earlier.get('execution_id') or ''}".strip()
        plan.skipped.extend(Skip(listed, r.name, sync, "started earlier", detail) for listed, r in outstanding)
        return
    objects = tuple(sorted((listed for listed, _ in outstanding), key=lambda listed: (listed.bucket, listed.key)))
    plan.starts.append(Start(route.name, partition, objects, start, activate))


def _since(listed: Listed, landing: Landing | None, now: float) -> float:
    """The coverage bound of the object: from its LastModified, and when it reached polytrigger if it did."""
    received = landing.received_at.timestamp() if landing is not None and _of(landing, listed) else now
    return coverage_since(listed.trigger("replay").time, received)


def _may_wait(landing: Landing | None, listed: Listed, route: Route, now: float) -> bool:
    """Its event came, recently enough that its start may still be on its way: held at most the route's
    `hold`, deferred at most the dispatch queue's maximum age (hours), in a debounce window at most its
    `max_wait`; after that a start is made or parked. A gate's partition may wait as long as it is
    incomplete. So an object that landed long ago costs no more reads than a landing (a new sync fed
    the last month reads no hold or window per object)."""
    if landing is None or not _of(landing, listed):
        return False
    return route.gate is not None or landing.received_at.timestamp() >= now - route.hold - PENDING_MARGIN


def _of(landing: Landing, listed: Listed) -> bool:
    """The landing kept is of this upload (or a later one), not of an older upload of the key."""
    return landing.landed_at >= listed.trigger("replay").time - SKEW


def _unique(objects: Iterable[Listed]) -> list[Listed]:
    """Each (bucket, key) once (the newest listing of it wins), in key order."""
    found: dict[tuple[str, str], Listed] = {}
    for listed in objects:
        old = found.get((listed.bucket, listed.key))
        if old is None or listed.last_modified > old.last_modified:
            found[(listed.bucket, listed.key)] = listed
    return [found[key] for key in sorted(found)]


def _one_per_object(members: list[tuple[Listed, Route]]) -> list[tuple[Listed, Route]]:
    """Two routes of one sync matching one object: the object counts once (the first route's)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for listed, route in members:
        if (listed.bucket, listed.key) not in seen:
            seen.add((listed.bucket, listed.key))
            kept.append((listed, route))
    return kept


def _order(key: _GroupKey) -> tuple[str, str, str, str, str]:
    sync_type, sync_id, options, route, partition = key
    return (route, partition_text(partition), sync_type, sync_id, repr(options))
