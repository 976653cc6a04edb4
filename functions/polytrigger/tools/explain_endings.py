"""`polytrigger explain` of a Polytomic run event (a webhook body): what the chained routes do with it.

A route with `sync:` acts on the ending itself (the same rows as any trigger's); a join counts it
towards its set and starts later, once every upstream has ended so: its row says what it waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from polytrigger.core.triggers import Trigger
from polytrigger.routing import Routes
from polytrigger.routing.chains import join_waits
from polytrigger.runs.endings import run_event

Rows = list[dict[str, Any]]


def explain_ending(
    event: Mapping[str, Any], routes: Routes, explain_groups: Callable[[Iterable[Sequence[Trigger]], Routes], Rows]
) -> Rows:
    """The rows of a run event: its chained actions and the joins it counts towards, or why none."""
    ending = run_event(event)  # MalformedRunEvent (a ValueError) names the field
    if ending is None or not ending.terminal:
        kind = str(event.get("type", ""))[:60]
        return [{"trigger": f"{kind}: not a run ending", "route": None, "covered": False, "near_misses": []}]
    trigger = Trigger.polytomic(
        sync_id=ending.sync_id, execution=ending.execution_id, status=ending.status, time=ending.created_at
    )
    rows = [row for row in explain_groups([[trigger]], routes) if row["route"] is not None]
    rows.extend(
        {"trigger": trigger.describe(), "route": route.name, "action": "join", "join": join_waits(route)}
        for route in routes.joins_waiting_for(ending.sync_id, ending.status)
    )
    if rows:
        return rows
    follow = [route for route in routes.routes if ending.sync_id in route.followed]
    misses = [f"route {route.name}: follows {', '.join(sorted(route.upstream_statuses))} only" for route in follow]
    return [{"trigger": trigger.describe(), "route": None, "covered": False, "near_misses": misses}]


def join_lines(row: Mapping[str, Any]) -> list[str]:
    """How `render` shows a join's row."""
    return [
        f"  -> route {row['route']}: counted towards its join, which {row['join']}",
        "     (once per new set of endings; the start is queued when this ending completes the set)",
    ]
