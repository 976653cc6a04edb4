"""polytrigger starts Polytomic syncs when files land in S3 and on schedules, as a routes file says. This
command checks a routes file and tries it without AWS (validate, explain), follows what the deployed stack
did (status), starts the syncs for objects already in S3 (replay) and sends what it parked back (redrive).
`polytrigger COMMAND --help` gives a command's options and exit status."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from polytrigger.core.triggers import Trigger
from polytrigger.events import UnsupportedEvent
from polytrigger.routing import Routes, RoutesError
from polytrigger.tools import redrive_cli, replay_cli, status, validate
from polytrigger.tools.explain import (
    S3_URL,
    ExplainInputError,
    deadlines_of,
    explain,
    explain_groups,
    next_of,
    notes,
    read_time,
    render,
    render_deadlines,
    render_next,
    route_zone,
    s3_trigger,
    schedule_spec,
    schedule_trigger,
    time_note,
    would_act,
)
from polytrigger.tools.routes_source import RoutesPathError, choose_routes

__all__ = ["explain", "main"]

_EXPLAIN_EPILOG = """\
forms:
  polytrigger explain EVENT_FILE                 a Lambda event as JSON (see events/), or a Polytomic run
                                                 event as the webhook receives it (chains and joins)
  polytrigger explain s3://BUCKET/KEY [--deleted]  an object created (or deleted) now; the key is taken
                                                 verbatim, as the S3 console copies it (no %XX decoding)
  polytrigger explain --schedule NAME [--time T] a schedule firing at T (ISO 8601, default now)
  polytrigger explain --schedule NAME --next N [--time T]
                                                 when a schedule the routes file defines fires next,
                                                 after T, in its own time zone and in UTC
  polytrigger explain --route NAME --expect [--next N] [--time T]
                                                 an S3 route's next arrival deadlines (its expect:
                                                 block; default 7), in its time zone and in UTC

When no route matches, the closest routes are listed with why each missed.
exit status: 0 some action would be taken, 1 nothing would happen, 2 bad input or routes file."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polytrigger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    explain_cmd = commands.add_parser(
        "explain",
        help="dry run: what an event, s3:// URL or schedule firing would do",
        description="A dry run: no API call, no dedup write, no AWS account needed.",
        epilog=_EXPLAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain_cmd.add_argument("target", nargs="?", metavar="EVENT_FILE | s3://BUCKET/KEY", help="what happened")
    explain_cmd.add_argument("--deleted", action="store_true", help="with s3://…: the object was deleted")
    explain_cmd.add_argument("--schedule", metavar="NAME", help="a firing of the schedule routes name NAME")
    explain_cmd.add_argument("--route", metavar="NAME", help="with --expect: the route whose deadlines to list")
    explain_cmd.add_argument(
        "--expect", action="store_true", help="with --route: list its next arrival deadlines (its expect: block)"
    )
    explain_cmd.add_argument(
        "--time",
        metavar="ISO",
        help="with --schedule: the scheduled time, or where --next starts (default now); without an offset it is"
        " read in the schedule's time zone (with --route: the route's deadline zone)",
    )
    explain_cmd.add_argument(
        "--next",
        metavar="N",
        type=_count,
        help="with --schedule: list the schedule's next N firings (1-1000) in its time zone and in UTC;"
        " with --route NAME --expect: its next N deadlines (default 7)",
    )
    explain_cmd.add_argument(
        "--routes",
        help="routes file (default: the routes deployed to --table, else $ROUTES, else $ROUTES_FILE, else the"
        " bundled example; said on stderr)",
    )
    explain_cmd.add_argument(
        "--table",
        default=os.getenv("IDEMPOTENCY_TABLE", ""),
        help="the stack's table (IdempotencyTableName; default $IDEMPOTENCY_TABLE): read the routes deployed there",
    )
    explain_cmd.add_argument("--json", action="store_true", help="print JSON rows instead of text")
    validate.register(commands)
    status.register(commands)
    replay_cli.register(commands)
    redrive_cmd = redrive_cli.add_parser(commands)
    code: int | None = None
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # --help, or a usage error: what was printed must reach the reader, or fail quietly
            sys.stdout.flush()
            raise
        code = _run(args, explain_cmd, redrive_cmd)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`polytrigger explain ... | head -2`): no traceback, and no second error when
        # Python flushes stdout at exit (the Python docs' recipe: point stdout at devnull).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return code if code is not None else 0
    return code


def _run(args: argparse.Namespace, explain_cmd: argparse.ArgumentParser, redrive_cmd: argparse.ArgumentParser) -> int:
    if args.command == "validate":
        return validate.run(args)
    if args.command == "status":
        return status.run(args)
    if args.command == "replay":
        return replay_cli.run(args)
    if args.command == "redrive":
        return redrive_cli.run(args, usage_error=redrive_cmd.error)
    problem = _usage_problem(args)
    if problem:
        explain_cmd.error(problem)  # prints the usage and exits 2
    try:
        args.routes = choose_routes(args.routes, args.table.strip())
    except RoutesPathError as error:
        print(f"polytrigger: routes error: {error}", file=sys.stderr)
        return 2
    return _explain(args)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.expect != (args.route is not None):
        return "--route NAME and --expect go together"
    if [args.target, args.schedule, args.route].count(None) != 2:
        return "give one of EVENT_FILE, s3://BUCKET/KEY, --schedule NAME or --route NAME --expect"
    if args.route is not None:
        return "--deleted goes with an s3:// URL" if args.deleted else None
    url = args.target is not None and args.target.startswith(S3_URL)
    if args.deleted and not url:
        return "--deleted goes with an s3:// URL"
    if args.time is not None and args.schedule is None:
        return "--time goes with --schedule or --route"
    if args.next is not None and args.schedule is None:
        return "--next goes with --schedule or --route"
    return None


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000 (got {text!r})")
    return int(text)


def _explain(args: argparse.Namespace) -> int:
    trigger: Trigger | None = None
    routes: Routes | None = None
    extra: list[str] = []
    try:
        if args.route is not None:
            routes = args.routes.load()
            return _explain_deadlines(args, routes)
        if args.schedule is not None:
            routes = args.routes.load()
            spec = schedule_spec(routes, args.schedule)
            zone = spec.timezone if spec else "UTC"
            if args.next is not None:
                return _explain_next(args, routes, zone)
            trigger = schedule_trigger(args.schedule, args.time, zone=zone)
            extra = time_note(args.time, trigger, spec)
        elif args.target.startswith(S3_URL):
            trigger = s3_trigger(args.target, deleted=args.deleted)
        if trigger is not None:
            routes = routes or args.routes.load()
            rows = explain_groups([[trigger]], routes)
        else:
            rows = explain(json.loads(Path(args.target).read_text(encoding="utf-8")), args.routes.load())
    except OSError as error:
        print(f"polytrigger: cannot read {args.target}: {error.strerror or error}", file=sys.stderr)
        return 2
    except ValueError as error:  # JSON, routes, unsupported events and bad URLs alike: one clear line
        kind = (
            "routes"
            if isinstance(error, RoutesError)
            else "event"
            if isinstance(error, UnsupportedEvent)
            else "argument"
            if isinstance(error, ExplainInputError)
            else "input"
        )
        print(f"polytrigger: {kind} error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(rows, indent=2, ensure_ascii=False) if args.json else render(rows, [*notes(trigger, routes), *extra])
    )
    return 0 if would_act(rows) else 1


def _explain_next(args: argparse.Namespace, routes: Routes, zone: str) -> int:
    after = read_time(args.time, zone)
    document = next_of(routes, args.schedule, after, args.next)
    print(json.dumps(document, indent=2, ensure_ascii=False) if args.json else render_next(document))
    return 0 if document["firings"] and "why" not in document else 1


def _explain_deadlines(args: argparse.Namespace, routes: Routes) -> int:
    after = read_time(args.time, route_zone(routes, args.route))
    document = deadlines_of(routes, args.route, after, args.next or 7)
    print(json.dumps(document, indent=2, ensure_ascii=False) if args.json else render_deadlines(document))
    return 0 if document["deadlines"] else 1


if __name__ == "__main__":
    sys.exit(main())
