"""A pre-validated routes file, cached as JSON beside it, so a cold start needs no YAML parser.

The build runs `python -m polytrigger.routes_cache routes.yaml`: it validates the file (a bad
routes file fails the build, with every problem listed) and writes `routes.validated.json`, the
parsed document with the SHA-256 of the YAML bytes it came from. At cold start the cache is used
only when that hash matches the routes file's bytes, so an edited routes file is never shadowed
by an old cache; without a usable cache the YAML is parsed as before. Importing PyYAML and
parsing costs 15-25 ms of every cold start; reading the JSON, under 1 ms.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CACHE_SUFFIX = ".validated.json"
FORMAT = 1


def cache_path(source: Path) -> Path:
    """routes.yaml -> routes.validated.json, in the same folder."""
    return source.with_name(source.stem + CACHE_SUFFIX)


def cached_document(source: Path, data: bytes) -> Any | None:
    """The cached document for exactly these bytes of `source`, or None (no cache, stale, unreadable)."""
    try:
        cache = json.loads(cache_path(source).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(cache, dict) or cache.get("format") != FORMAT:
        return None
    if cache.get("source_sha256") != hashlib.sha256(data).hexdigest():
        return None
    return cache.get("document")


def write_cache(source: Path) -> Path | None:
    """Validate `source` (RoutesError lists every problem) and cache it; None when JSON cannot carry it exactly.

    A document JSON would change (a date, a non-string key) is left to the YAML parser at run time.
    """
    from polytrigger.routes import read_document

    data, document = read_document(source)
    target = cache_path(source)
    try:
        text = json.dumps(
            {"format": FORMAT, "source_sha256": hashlib.sha256(data).hexdigest(), "document": document},
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
    from polytrigger.routes import RoutesError

    files = list(sys.argv[1:] if argv is None else argv)
    if not files:
        print("usage: python -m polytrigger.routes_cache ROUTES_FILE...", file=sys.stderr)
        return 2
    for name in files:
        try:
            written = write_cache(Path(name))
        except RoutesError as error:
            print(error, file=sys.stderr)
            return 1
        if written is None:
            print(f"{name}: valid; not cached (JSON cannot carry it exactly), so it is parsed as YAML at cold start")
        else:
            print(f"{name}: valid; cached as {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
