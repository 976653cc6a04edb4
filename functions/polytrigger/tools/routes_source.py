"""Which routes a command reads, said on stderr in one line whenever it is not the file the user named.

A user's routes live outside the code (ROUTES=/path/to/routes.yaml), so configuring polytrigger needs no
fork; functions/routes.yaml is only the example. `validate` checks a file: `--routes`, else `$ROUTES`,
else `$ROUTES_FILE` (the functions' own variable, which the local stack's .local-stack.env sets), else the
bundled example, announced.

`status` and `explain` answer for a deployed stack when they know where it is (`--table`, or
IDEMPOTENCY_TABLE): without `--routes` they read the routes the route wiring recorded there on the last
deploy (`routing.deployed`), and say so. Precedence: `--routes` > the deployed routes > `$ROUTES` >
`$ROUTES_FILE` > the bundled example. A file the user named that differs from the deployed routes is one
warning line (answers checked against routes the stack does not run can mislead); a table that cannot be
read, or holds no record, is a fall back said in the same line, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from polytrigger.observability import error_line
from polytrigger.routing import Routes, load_routes
from polytrigger.routing.deployed import DEPLOYED_ROUTES_KEY, DeployedRoutes, from_item, sha256_of
from polytrigger.routing.load import load_routes_text
from polytrigger.settings import BUNDLED_ROUTES

VARIABLES = ("ROUTES", "ROUTES_FILE")
BUNDLED_NOTE = "the bundled example; set ROUTES or --routes for yours"


class RoutesPathError(ValueError):
    """A variable names a routes file that is not there: one line naming it."""


class DeployedUnreadable(Exception):
    """The table could not be read (credentials, region, no such table): one line."""


@dataclass(frozen=True, slots=True)
class RoutesSource:
    """Routes to read: a file, or the text a stack recorded as deployed."""

    name: str  # as the stderr line and a routes error name it
    path: Path | None = None
    deployed: DeployedRoutes | None = None

    def load(self) -> Routes:
        """The routes (RoutesError lists every problem)."""
        if self.deployed is not None and self.deployed.text is not None:
            return load_routes_text(self.deployed.text.encode("utf-8"), self.name)
        assert self.path is not None
        return load_routes(self.path)


def routes_path(flag: str | None, env: Mapping[str, str] | None = None, say: TextIO | None = None) -> Path:
    """The routes file to read; a variable naming a missing file raises RoutesPathError, and the bundled
    example is announced on `say` (stderr) in one line."""
    if flag:
        return Path(flag)
    named = _named(os.environ if env is None else env, say or sys.stderr)
    if named is not None:
        return named[1]
    print(f"routes: {shown(BUNDLED_ROUTES)} ({BUNDLED_NOTE})", file=say or sys.stderr)
    return BUNDLED_ROUTES


def choose_routes(
    flag: str | None,
    table: str,
    *,
    env: Mapping[str, str] | None = None,
    say: TextIO | None = None,
    read: Callable[[str], DeployedRoutes | None] | None = None,
) -> RoutesSource:
    """The routes `status` and `explain` read (see the module's docstring); `read` gives the table's record
    (None: there is none; DeployedUnreadable: why it cannot be read). A variable naming a missing file
    raises RoutesPathError before the table is read."""
    say = say or sys.stderr
    named = (f"--routes {flag}", Path(flag)) if flag else _named(os.environ if env is None else env, say)
    if not table:
        return _file_or_bundled(named, say, "")
    try:
        deployed, missing = (read or read_deployed)(table), f"no routes recorded as deployed in table {table}"
    except DeployedUnreadable as error:
        deployed, missing = None, f"the routes deployed to table {table} cannot be read: {error}"
    if deployed is not None and deployed.text is None:
        missing = f"the routes deployed to table {table} were recorded without their text (too large)"
    if flag and named is not None:
        _warn_if_differs(named, deployed, table, say, "answers follow it, not the routes the stack runs")
        return RoutesSource(str(named[1]), path=named[1])
    if deployed is None or deployed.text is None:
        return _file_or_bundled(named, say, missing)
    print(f"routes: as deployed to table {table} ({deployed.describe()})", file=say)
    if named is not None:
        _warn_if_differs(named, deployed, table, say, f"using the deployed ones; --routes {named[1]} checks yours")
    return RoutesSource(f"routes deployed to table {table}", deployed=deployed)


def read_deployed(table: str, client: Any = None) -> DeployedRoutes | None:
    """The table's record of the deployed routes, None when it holds none; DeployedUnreadable says why not."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if client is None:  # short: an unreachable table is a fall back, not a long wait
            config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})
            client = boto3.client("dynamodb", config=config)
        item = client.get_item(TableName=table, Key={"id": {"S": DEPLOYED_ROUTES_KEY}}, ConsistentRead=True)
    except (BotoCoreError, ClientError, ValueError) as error:  # ValueError: an endpoint botocore cannot use
        raise DeployedUnreadable(error_line(error)) from None
    if "Item" not in item:
        return None
    try:
        return from_item(item["Item"])
    except ValueError as error:
        raise DeployedUnreadable(str(error)) from None


def _named(env: Mapping[str, str], say: TextIO) -> tuple[str, Path] | None:
    """(how to call it, path) of the file the environment names: ROUTES, else ROUTES_FILE; a line when both
    are set to different files."""
    values = {name: env.get(name, "").strip() for name in VARIABLES}
    found = [(f"{name}={value}", Path(value).expanduser()) for name, value in values.items() if value]
    if found and not found[0][1].is_file():  # the one that wins must be there
        raise RoutesPathError(f"{found[0][0]}: no such routes file")
    if len(found) == 2 and found[0][1].resolve() != found[1][1].resolve():
        print(
            f"routes: {found[0][0]} and {found[1][0]} name different files: ROUTES wins"
            " (it is yours; ROUTES_FILE is the functions' own, which the local stack's env file sets)",
            file=say,
        )
    return found[0] if found else None


def _file_or_bundled(named: tuple[str, Path] | None, say: TextIO, missing: str) -> RoutesSource:
    if named is None:
        print(f"routes: {shown(BUNDLED_ROUTES)} ({BUNDLED_NOTE}{'; ' + missing if missing else ''})", file=say)
        return RoutesSource(str(BUNDLED_ROUTES), path=BUNDLED_ROUTES)
    if missing:
        print(f"routes: {named[0]} ({missing})", file=say)
    return RoutesSource(str(named[1]), path=named[1])


def _warn_if_differs(
    named: tuple[str, Path], deployed: DeployedRoutes | None, table: str, say: TextIO, consequence: str
) -> None:
    if deployed is None:
        return
    try:
        mine = sha256_of(named[1].read_bytes())
    except OSError:
        return  # reading it fails next, with the reason
    if mine != deployed.sha256:
        print(
            f"routes: warning: {named[0]} differs from the routes deployed to table {table}"
            f" (sha256 {mine[:12]}…; deployed: {deployed.describe()}): {consequence}",
            file=say,
        )


def shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (functions/routes.yaml from the checkout)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
