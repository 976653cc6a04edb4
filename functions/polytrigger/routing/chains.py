"""Chained routes: a sync's run ending starts other syncs; chains must never come back to where they began."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from polytrigger.core.keys import is_uuid
from polytrigger.core.triggers import RUN_ENDINGS
from polytrigger.routing.fields import events_field
from polytrigger.routing.suggest import unknown_fields

CHAIN_FIELDS = {"sync", "events"}
_FIELD_ALIASES = {"sync_id": "sync", "id": "sync", "upstream": "sync", "status": "events", "statuses": "events"}


def parse_chain(raw: Any, problems: list[str]) -> dict[str, Any]:
    """A route's `polytomic: {sync, events}` → its Route fields (`upstream`, `upstream_statuses`)."""
    if not isinstance(raw, Mapping):
        problems.append("polytomic: must be a mapping with sync (the upstream sync's id) and events")
        return {}
    unknown_fields(raw, CHAIN_FIELDS, "polytomic", problems, _FIELD_ALIASES)
    sync = raw.get("sync")
    if not is_uuid(sync):
        problems.append(f"polytomic.sync: must be a sync UUID (got {sync!r})")
    events = events_field(raw, "polytomic", "completed", RUN_ENDINGS, problems)
    return {"upstream": str(sync).lower() if is_uuid(sync) else "", "upstream_statuses": events}


def chain_cycles(routes: Sequence[Any]) -> list[str]:
    """One problem per cycle of chained starts (A's end starts B, B's end starts A), naming its routes."""
    edges: dict[str, list[tuple[str, str]]] = {}  # upstream sync -> (started sync, route)
    for route in routes:
        if route.upstream and route.action == "start":
            for sync in route.syncs:
                edges.setdefault(route.upstream, []).append((sync.id, route.name))
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
