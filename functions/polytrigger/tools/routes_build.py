"""The build step that validates the routes file and caches it as JSON, so a cold start needs no YAML parser.

`sam build` runs `python -m polytrigger.tools.routes_build --as ROUTES routes.yaml` on the artifact's
copy of the user's routes (functions/Makefile: ROUTES, else the bundled example): a bad routes file
fails the build, with every problem listed; a good one is written beside itself as `routes.validated.json` (polytrigger.routing.load reads it back, for exactly the same bytes).
Beside it goes `routes.source.json`: the name the build was given (`--as`, the user's own path), which
the route wiring records in the stack's table with the routes, so `status` can say which file is deployed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from polytrigger.route_wiring.plan import plan_problems
from polytrigger.routing.deployed import write_source_note
from polytrigger.routing.load import CACHE_FORMAT, cache_path, read_routes, source_hash
from polytrigger.routing.parse import RoutesError, invalid


def write_cache(source: Path) -> Path | None:
    """Validate `source` (RoutesError lists every problem) and cache it; None when JSON cannot carry it exactly.

    Beyond the routes themselves, what no deployment could wire fails the build too (an unknown time
    zone, more buckets than the S3 rule can list). A document JSON would change (an unquoted `at:`
    time, a non-string key) is left to the YAML parser at run time.
    """
    data, document, routes = read_routes(source)
    problems = plan_problems(routes)
    if problems:
        raise invalid(str(source), problems)
    target = cache_path(source)
    try:
        text = json.dumps(
            {"format": CACHE_FORMAT, "source_sha256": source_hash(data), "document": document},
            sort_keys=True,
        )
        exact = json.loads(text)["document"] == document
    except (TypeError, ValueError):
        exact = False
    if not exact:
        target.unlink(missing_ok=True)
        return None
    target.write_text(text + "\n", encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """`routes_build [--as NAME] ROUTES_FILE...`: NAME is what the messages call the file (the build
    validates its copy in the artifact; the user knows their own path)."""
    files = list(sys.argv[1:] if argv is None else argv)
    label = ""
    if files[:1] == ["--as"] and len(files) > 1:
        label, files = files[1], files[2:]
    if not files:
        print("usage: python -m polytrigger.tools.routes_build [--as NAME] ROUTES_FILE...", file=sys.stderr)
        return 2
    for name in files:
        shown = label or name
        try:
            written = write_cache(Path(name))
        except RoutesError as error:
            print(str(error).replace(f"routes file {name}", f"routes file {shown}", 1), file=sys.stderr)
            return 1
        write_source_note(Path(name), shown)
        if written is None:
            print(f"{shown}: valid; not cached (JSON cannot carry it exactly), so it is parsed as YAML at cold start")
        else:
            print(f"{shown}: valid; cached as {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
