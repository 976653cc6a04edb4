"""Chained routes: a sync's run ending starts other syncs; chains must never come back to where they began.

`polytomic: {sync: A}` follows one upstream sync: each of its endings starts the route's syncs.
`polytomic: {syncs: [A, B], within: 12h}` joins several: the route starts once every one of them has
a new ending (since the last start), all within `within` of each other (`runs.joins` at run time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from polytrigger.core.keys import is_uuid
from polytrigger.core.triggers import RUN_ENDINGS
from polytrigger.routing.durations import duration_field, say
from polytrigger.routing.fields import events_field
from polytrigger.routing.suggest import unknown_fields

CHAIN_FIELDS = {"sync", "syncs", "events", "within"}
_FIELD_ALIASES = {
    "sync_id": "sync", "id": "sync", "upstream": "sync", "status": "events", "statuses": "events",
    "upstreams": "syncs", "sync_ids": "syncs", "ids": "syncs", "window": "within",
}  # fmt: skip
MAX_UPSTREAMS = 10  # a join reads one item per upstream on every ending: a handful, not a fan-in of hundreds
DEFAULT_WITHIN = 86400  # a join's endings must all fall within a day of each other unless the route says
MIN_WITHIN, MAX_WITHIN = 60, 7 * 86400  # a join's state is kept a little longer than this (`runs.joins`)


def parse_chain(raw: Any, problems: list[str]) -> dict[str, Any]:
    """A route's `polytomic: {sync | syncs, events, within}` → its Route fields (`upstream` or `upstreams`
    and `within`, `upstream_statuses`)."""
    if not isinstance(raw, Mapping):
        problems.append("polytomic: must be a mapping with sync (the upstream sync's id) and events")
        return {}
    unknown_fields(raw, CHAIN_FIELDS, "polytomic", problems, _FIELD_ALIASES)
    events = events_field(raw, "polytomic", "completed", RUN_ENDINGS, problems)
    if "syncs" in raw:
        if "sync" in raw:
            problems.append("polytomic: give sync (one upstream) or syncs (several), not both")
        return {**_joined(raw, problems), "upstream_statuses": events}
    if "within" in raw:
        problems.append("polytomic.within: only applies with syncs (several upstreams whose endings it pairs)")
    sync = raw.get("sync")
    if not is_uuid(sync):
        problems.append(f"polytomic.sync: must be a sync UUID (got {sync!r})")
    return {"upstream": str(sync).lower() if is_uuid(sync) else "", "upstream_statuses": events}


def _joined(raw: Mapping[Any, Any], problems: list[str]) -> dict[str, Any]:
    """`syncs: [A, B]` and `within: 12h`: the upstreams a join waits for, and how far apart their endings may be."""
    syncs = raw["syncs"]
    if (
        not isinstance(syncs, list)
        or not 2 <= len(syncs) <= MAX_UPSTREAMS
        or not all(is_uuid(sync) for sync in syncs)
        or len({str(sync).lower() for sync in syncs}) != len(syncs)
    ):
        one = "; for one upstream write sync: ID" if isinstance(syncs, list) and len(syncs) == 1 else ""
        problems.append(
            f"polytomic.syncs: must be a list of 2 to {MAX_UPSTREAMS} distinct sync UUIDs (got {syncs!r}){one}"
        )
        syncs = []
    within = DEFAULT_WITHIN
    if raw.get("within") is not None:
        duration = duration_field(raw["within"], "polytomic.within", problems, low=MIN_WITHIN, high=MAX_WITHIN)
        within = duration.seconds if duration is not None else DEFAULT_WITHIN
    return {"upstreams": tuple(str(sync).lower() for sync in syncs), "within": within}


def chain_summary(route: Any) -> str:
    """What validate says of a chained route: `route R follows sync A: completed`, or for a join `route R
    starts bulk sync C once A and B have both completed within 12 hours ...`."""
    if not route.upstreams:
        return f"route {route.name} follows sync {route.upstream}: {', '.join(sorted(route.upstream_statuses))}"
    return f"route {route.name} {join_waits(route)} (once per new set of endings)"


def join_waits(route: Any) -> str:
    """`starts bulk sync C once A and B have both completed within 12 hours of each other`."""
    statuses = " or ".join(sorted(route.upstream_statuses))
    targets = ", ".join(f"{sync.type} sync {sync.id}" for sync in route.syncs)
    verb = {"start": "starts", "activate": "activates", "deactivate": "deactivates"}.get(route.action, route.action)
    names = route.upstreams
    each = "both" if len(names) == 2 else "all"
    return (
        f"{verb} {targets} once {', '.join(names[:-1])} and {names[-1]} have {each} {statuses}"
        f" within {say(route.within)} of each other"
    )


def chain_cycles(routes: Sequence[Any]) -> list[str]:
    """One problem per cycle of chained starts (A's end starts B, B's end starts A), naming its routes."""
    edges: dict[str, list[tuple[str, str]]] = {}  # upstream sync -> (started sync, route)
    for route in routes:
        if route.action == "start":
            for upstream in route.followed:
                for sync in route.syncs:
                    edges.setdefault(upstream, []).append((sync.id, route.name))
    problems: list[str] = []
    reported: set[frozenset[str]] = set()
    for origin in sorted(edges):
        stack: list[tuple[str, list[str], list[str]]] = [(origin, [origin], [])]
        while stack:
            node, path, names = stack.pop()
            for target, name in edges.get(node, ()):
                if target == origin:
                    cycle = frozenset([*names, name])
                    if cycle not in reported:
                        reported.add(cycle)
                        chain = " -> ".join(f"'{n}'" for n in [*names, name, names[0] if names else name])
                        problems.append(
                            f"routes {chain} chain syncs in a cycle ({' -> '.join([*path, origin])}):"
                            " each run would start the next for ever; break the chain"
                        )
                elif target not in path:
                    stack.append((target, [*path, target], [*names, name]))
    return problems
