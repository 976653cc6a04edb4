"""Which routes file a command reads: `--routes`, else `$ROUTES`, else the bundled example, said on stderr.

A user's routes live outside the code (ROUTES=/path/to/routes.yaml), so configuring polytrigger needs no
fork. functions/routes.yaml is only the example: reading it is never silent, or `explain` would check an
event against routes that are not the user's and look right. ROUTES_FILE (the functions' own variable,
which the local stack's .local-stack.env sets) is read after ROUTES.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from polytrigger.settings import BUNDLED_ROUTES

VARIABLES = ("ROUTES", "ROUTES_FILE")


class RoutesPathError(ValueError):
    """A variable names a routes file that is not there: one line naming it."""


def routes_path(flag: str | None, env: Mapping[str, str] | None = None, say: TextIO | None = None) -> Path:
    """The routes file to read; a variable naming a missing file raises RoutesPathError, and the bundled
    example is announced on `say` (stderr) in one line."""
    if flag:
        return Path(flag)
    env = os.environ if env is None else env
    for name in VARIABLES:
        value = env.get(name, "").strip()
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise RoutesPathError(f"{name}={value}: no such routes file")
            return path
    print(
        f"routes: {shown(BUNDLED_ROUTES)} (the bundled example; set ROUTES or --routes for yours)",
        file=say or sys.stderr,
    )
    return BUNDLED_ROUTES


def shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (functions/routes.yaml from the checkout)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
