"""`polytrigger explain EVENT_FILE`: what an event would do, with no API call and no dedup write."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polytrigger.events import UnsupportedEvent, trigger_groups
from polytrigger.routing import RoutesError, load_routes
from polytrigger.runtime.config import BUNDLED_ROUTES
from polytrigger.tools import redrive_cli


def explain(event: Any, routes_file: str | Path) -> list[dict[str, Any]]:
    routes = load_routes(routes_file)
    rows: list[dict[str, Any]] = []
    for triggers in trigger_groups(event):
        actions = routes.actions_for(triggers)
        for trigger in triggers:
            mine = [action for action in actions if action.trigger == trigger]
            if not mine:
                reached = any(route.matches(trigger) for route in routes.routes)
                rows.append({"trigger": trigger.describe(), "route": None, "covered": reached})
            rows.extend(
                {
                    "trigger": trigger.describe(),
                    "route": action.route,
                    "sync_id": action.sync.id,
                    "sync_type": action.sync.type,
                    "action": action.kind,
                    "options": action.sync.body() if action.kind == "start" else {},
                    "idempotency_key": action.dedup_key,
                    "debounce": action.debounce,
                    "max_wait": action.max_wait,
                }
                for action in mine
            )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no trigger in this event (nothing would happen)"
    by_trigger: dict[str, list[str]] = {}
    for row in rows:
        lines = by_trigger.setdefault(row["trigger"], [])
        if row["route"] is None:
            lines.append(
                "  -> already covered by an earlier trigger of this event"
                if row["covered"]
                else "  -> no route matches: nothing would happen"
            )
            continue
        options = f" {json.dumps(row['options'], sort_keys=True)}" if row["options"] else ""
        lines.append(f"  -> route {row['route']}: {row['action']} {row['sync_type']} sync {row['sync_id']}{options}")
        if row.get("debounce"):
            lines.append(
                f"     debounced: the first file opens a {row['debounce']} s window and later ones join it; one start"
                f" when it has been quiet {row['debounce']} s, at most {row['max_wait']} s after it opened"
            )
        if row["action"] == "start":
            lines.append(
                "     a 409 (run in progress) defers the start via the dispatch queue until it starts or a newer run covers it"
            )
        lines.append(f"     Idempotency-Key {row['idempotency_key']}")
    return "\n".join(f"{trigger}\n" + "\n".join(lines) for trigger, lines in by_trigger.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polytrigger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    explain_cmd = commands.add_parser("explain", help="dry run: which routes match and which actions would be taken")
    explain_cmd.add_argument("event_file", help="a Lambda event as JSON (see events/)")
    explain_cmd.add_argument(
        "--routes",
        default=os.getenv("ROUTES_FILE") or str(BUNDLED_ROUTES),
        help="routes file (default: $ROUTES_FILE or the bundled one)",
    )
    explain_cmd.add_argument("--json", action="store_true", help="print JSON rows instead of text")
    redrive_cmd = redrive_cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "redrive":
        return redrive_cli.run(args, usage_error=redrive_cmd.error)

    try:
        event = json.loads(Path(args.event_file).read_text(encoding="utf-8"))
        rows = explain(event, args.routes)
    except OSError as error:
        print(f"polytrigger: cannot read {args.event_file}: {error.strerror or error}", file=sys.stderr)
        return 2
    except ValueError as error:  # JSON, routes and unsupported events alike: one clear line
        kind = (
            "routes" if isinstance(error, RoutesError) else "event" if isinstance(error, UnsupportedEvent) else "input"
        )
        print(f"polytrigger: {kind} error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
