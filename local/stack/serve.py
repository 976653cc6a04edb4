"""`make stack` (`python -m local.stack`): the local stack in the foreground, to ask it questions.

Starts what `make demo` starts (DynamoDB Local or moto's DynamoDB, moto, the fake Polytomic with every
sync of the routes, the dedup table, the queues, the secret, the routes' schedules), writes the
environment that points polytrigger at it to `.local-stack.env` (`source` it in another terminal),
prints it with example commands, and waits. Ctrl-C (or SIGTERM, or closing the terminal) stops every
server and removes the file.

The file is also how `python -m local.stack land` and `poll` (`local.stack.land`) find the stack.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".local-stack.env"
PID_VARIABLE = "POLYTRIGGER_LOCAL_STACK_PID"  # the stack's process: `land` checks it is still there
S3_FUNCTION_VARIABLE = "S3_TRIGGER_FUNCTION"  # the name `land` invokes the S3 function as (for redrive)
S3_FUNCTION = "polytrigger-S3TriggerFunction-local"
POLLER_FUNCTION = "polytrigger-PollerFunction-local"
EXAMPLE_PLACEHOLDER = "s3://BUCKET/KEY"
POLYTRIGGER = ".venv/bin/polytrigger"  # make install's (also: .venv/bin/python -m polytrigger)
PYTHON = ".venv/bin/python"


class StackRunning(RuntimeError):
    """Another local stack owns the env file."""


# -- the env file --------------------------------------------------------------------------------


def render_env(env: Mapping[str, str]) -> str:
    """`export NAME=value` lines, values quoted for the shell."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def read_env(path: Path) -> dict[str, str]:
    """The variables of an env file `render_env` wrote (comments and blank lines skipped)."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: there all the same
        return True
    return True


def owner(path: Path) -> int | None:
    """The process of the stack that wrote this env file, if the file is there and that process runs."""
    try:
        pid = int(read_env(path).get(PID_VARIABLE, ""))
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


@contextlib.contextmanager
def env_file(path: Path, env: Mapping[str, str]) -> Iterator[Path]:
    """Write the env file for as long as the stack runs; remove it after (unless another stack took it)."""
    running = owner(path)
    if running is not None and running != os.getpid():
        raise StackRunning(
            f"a local stack (pid {running}) already writes {path}: stop it first, or give this one --env-file"
        )
    header = (
        f"# the polytrigger local stack (pid {os.getpid()}): source this file; it is removed when the stack stops\n"
    )
    path.write_text(header + render_env(env), encoding="utf-8")
    try:
        yield path
    finally:
        if owner(path) in (None, os.getpid()):
            path.unlink(missing_ok=True)


# -- what the stack is given --------------------------------------------------------------------


def add_syncs(fake: Any, routes: Any, run_seconds: float) -> int:
    """Every sync the routes name (chained routes' upstream syncs too) exists, active, in the fake."""
    syncs: dict[str, str] = {}
    for route in routes.routes:
        for sync in route.syncs:
            syncs[sync.id] = sync.type
        for upstream in route.followed:
            syncs.setdefault(upstream, "model")
    for sync_id, kind in syncs.items():
        fake.add_sync(sync_id, kind=kind, run_seconds=run_seconds)
    return len(syncs)


def example_url(routes: Any) -> str:
    """An `s3://` URL some route acts on when the object is created (its glob's wildcards filled in)."""
    from polytrigger.tools.explain import ExplainInputError, s3_trigger

    for route in routes.routes:
        if not route.bucket or "created" not in route.events:
            continue
        key = _fill(route.key or "**")
        try:
            trigger = s3_trigger(f"s3://{route.bucket}/{key}")
        except ExplainInputError:
            continue
        if route.matches(trigger):
            return f"s3://{route.bucket}/{key}"
    return EXAMPLE_PLACEHOLDER


def _fill(glob: str) -> str:
    """A key the glob matches: `**` a few folders, `*` a word, `?` one character."""
    filled = []
    for segment in glob.split("/"):
        if segment == "**":
            filled.append("2026/06/01")
            continue
        filled.append(segment.replace("*", "example").replace("?", "x") or "example")
    return "/".join(filled)


def status_args(url: str) -> list[str]:
    """The `polytrigger status` arguments that ask about one object, in the form this CLI takes."""
    return ["status", url]


def commands(url: str, env_path: Path = ENV_FILE) -> list[tuple[str, str]]:
    """What to try, in order, each with what it shows: explain, land, status, poll, status, redrive's dry run."""
    quoted = shlex.quote(url)
    status = " ".join(shlex.quote(word) for word in status_args(url))
    env = "" if env_path == ENV_FILE else f" --env-file {shlex.quote(str(env_path))}"
    return [
        (f"{POLYTRIGGER} explain {quoted}", "which routes match and what they would do (exit 0)"),
        (f"{PYTHON} -m local.stack land {quoted}{env}", "an upload: the S3 function starts the syncs"),
        (f"{POLYTRIGGER} {status}", "exit 1: the runs started, no ending heard yet"),
        (f"{PYTHON} -m local.stack poll{env}", "the poller once: the runs' endings, the chained start"),
        (f"{POLYTRIGGER} {status}", "exit 0: every run for the file completed"),
        (
            f'{POLYTRIGGER} redrive --queue-url "$DEAD_LETTER_QUEUE_URL" --function "${S3_FUNCTION_VARIABLE}" --dry-run',
            "what is parked (exit 0)",
        ),
    ]


def aligned(lines: Sequence[tuple[str, str]]) -> list[str]:
    """Commands with their comments in one column."""
    width = max(len(command) for command, _ in lines)
    return [f"{command.ljust(width)}  # {comment}" for command, comment in lines]


# -- serving --------------------------------------------------------------------------------------


class Stopper:
    """Ctrl-C, SIGTERM or SIGHUP: one KeyboardInterrupt, never while the servers start or stop.

    A signal while the stack starts is kept until it is up: interrupted while it waits for DynamoDB
    Local, `LocalStack.start` has no hold of the JVM yet, and only the garbage collector would stop it.
    Once stopping, further signals are ignored, so a second Ctrl-C cannot cut the stop short.
    """

    def __init__(self) -> None:
        self.starting = True
        self.stopping = False
        self.pending = ""

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        name = signal.Signals(signum).name
        if self.starting:
            if not self.pending:
                print(f"\n{name}: stopping once every server is up ...", flush=True)
            self.pending = name
            return
        self.stopping = True
        raise KeyboardInterrupt(name)

    def started(self) -> None:
        """Up: a signal kept meanwhile stops it now."""
        self.starting = False
        if self.pending:
            self.stopping = True
            raise KeyboardInterrupt(self.pending)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__)
    parser.add_argument(
        "--routes",
        type=Path,
        default=Path(os.environ.get("ROUTES") or os.environ.get("ROUTES_FILE") or ROOT / "functions" / "routes.yaml"),
        help="the routes file (default: $ROUTES, else $ROUTES_FILE, else the bundled example functions/routes.yaml)",
    )
    parser.add_argument(
        "--env-file", type=Path, default=ENV_FILE, help=f"where to write the exports (default {ENV_FILE.name})"
    )
    parser.add_argument(
        "--run-seconds",
        type=float,
        default=0.0,
        help="how long each run lasts in the fake Polytomic (default 0: it has ended by the next poll)",
    )
    args = parser.parse_args(argv)
    from polytrigger.routing import RoutesError, load_routes

    routes_path = args.routes.resolve()
    try:
        routes = load_routes(routes_path)
    except (OSError, RoutesError) as error:
        parser.error(f"--routes: {error}")
    env_path = args.env_file.resolve()
    if (running := owner(env_path)) is not None:
        parser.error(f"a local stack (pid {running}) already writes {env_path}: stop it first, or give --env-file")
    # Ctrl-C, a plain kill or its terminal closed: each stops the servers. SIGINT too, explicitly: a shell
    # that starts the stack in the background (`&`) has it ignored, and Python then leaves it so.
    stopper = Stopper()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stopper)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the route wiring's logs: its summary says it
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    print("polytrigger local stack: starting DynamoDB, moto and the fake Polytomic on 127.0.0.1 ...", flush=True)
    try:
        return _serve(routes, routes_path, env_path, args.run_seconds, stopper)
    except KeyboardInterrupt:
        print("\npolytrigger local stack: stopped", flush=True)
        return 0
    except StackRunning as error:
        print(f"python -m local.stack: {error}", file=sys.stderr)
        return 2


def _serve(routes: Any, routes_path: Path, env_path: Path, run_seconds: float, stopper: Stopper) -> int:
    from local.stack import LocalStack

    with LocalStack() as stack:
        syncs = add_syncs(stack.fake, routes, run_seconds)
        env = {
            **stack.env(),
            "ROUTES_FILE": str(routes_path),
            S3_FUNCTION_VARIABLE: S3_FUNCTION,
            PID_VARIABLE: str(os.getpid()),
        }
        with stack.environ(ROUTES_FILE=str(routes_path)):
            wired = _wire(stack)
        with env_file(env_path, env):
            stopper.started()
            print(
                _banner(
                    stack, routes=routes, routes_path=routes_path, syncs=syncs, env_path=env_path, env=env, wired=wired
                ),
                flush=True,
            )
            while True:
                signal.pause()  # until Ctrl-C, SIGTERM or SIGHUP: KeyboardInterrupt


def _wire(stack: Any) -> list[str]:
    """The routes' schedules, created as `sam deploy` would (the demo's deploy step)."""
    from local.demo.wiring import wire
    from polytrigger import bootstrap

    bootstrap.reset()
    try:
        return wire(stack)
    finally:
        bootstrap.reset()


def _banner(
    stack: Any,
    *,
    routes: Any,
    routes_path: Path,
    syncs: int,
    env_path: Path,
    env: Mapping[str, str],
    wired: list[str],
) -> str:
    where = _shown(env_path)
    lines = [
        f"  DynamoDB: {stack.dynamodb_engine} at {stack.dynamodb_endpoint}; moto at {stack.moto.endpoint_url};"
        f" fake Polytomic at {stack.fake.url}",
        f"  routes: {_shown(routes_path)} ({len(routes.routes)} routes; {syncs} syncs in the fake Polytomic)",
        *(f"  {line}" for line in wired),
        "",
        f"In another terminal, from {ROOT}: `source {where}`, or paste:",
        "",
        *render_env(env).splitlines(),
        "",
        "then try:",
        "",
        *aligned(commands(example_url(routes), env_path)),
        "",
        f"Ctrl-C stops every server and removes {where}.",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
