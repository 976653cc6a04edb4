"""Reading a routes file: from the build's pre-validated JSON cache when it is current, else as YAML.

The build (`python -m polytrigger.tools.routes_build`) validates the file and writes
`routes.validated.json` beside it: the parsed document with the SHA-256 of the YAML bytes it came
from. The cache is used only when that hash matches the file's bytes, so an edited routes file is
never shadowed by an old cache. Importing PyYAML and parsing costs 15-25 ms of a cold start;
reading the JSON, under 1 ms.

A key given twice in one mapping is refused (PyYAML would silently keep the last one), with its
route, field and lines, alongside every other problem of the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytrigger.routing.model import Routes
from polytrigger.routing.parse import file_error, parse_routes

if TYPE_CHECKING:
    from yaml.nodes import Node

CACHE_SUFFIX = ".validated.json"
CACHE_FORMAT = 2  # 2: validated with duplicate keys, empty routes, "/" key globs and misplaced fields refused
_MERGE_TAG = "tag:yaml.org,2002:merge"


def load_routes(path: str | Path) -> Routes:
    """Read and validate a routes file (YAML; JSON is valid YAML), from its pre-validated cache when current."""
    source = Path(path)
    data = _read(source)
    document = cached_document(source, data)
    if document is not None:
        return parse_routes(document, source=str(source))
    document, duplicates = _parse_yaml(source, data)
    return parse_routes(document, source=str(source), problems=duplicates)


def load_routes_text(data: bytes, source: str) -> Routes:
    """Validate routes given as bytes (the deployed routes, as the stack recorded them); `source` names them."""
    document, duplicates = _parse_yaml(Path(source), data)
    return parse_routes(document, source=source, problems=duplicates)


def read_document(path: str | Path) -> tuple[bytes, Any]:
    """The routes file's bytes and its validated document (RoutesError lists every problem)."""
    data, document, _ = read_routes(path)
    return data, document


def read_routes(path: str | Path) -> tuple[bytes, Any, Routes]:
    """The routes file's bytes, document and routes, from the YAML itself (never a cache), with its time
    zones checked too (the build and `validate` use it); writes nothing."""
    source = Path(path)
    data = _read(source)
    document, duplicates = _parse_yaml(source, data)
    return data, document, parse_routes(document, source=str(source), problems=duplicates, check_zones=True)


def _read(source: Path) -> bytes:
    try:
        return source.read_bytes()
    except OSError as error:
        raise file_error(str(source), f"cannot be read ({error.strerror or error})") from None


def _parse_yaml(source: Path, data: bytes) -> tuple[Any, list[str]]:
    """The document, and a problem for each key given twice in one mapping."""
    import yaml  # deferred: only a cold start without a current cache pays for it

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise file_error(str(source), f"not UTF-8 text (byte {error.start})") from None
    try:
        loader = yaml.SafeLoader(text)  # its reader already refuses unprintable characters
        try:
            node = loader.get_single_node()
            if node is None:
                return None, []
            duplicates = _duplicate_keys(node)
            return loader.construct_document(node), duplicates
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise file_error(str(source), f"not valid YAML{at}: {problem}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        # SafeLoader converts date-like and tagged scalars with plain Python calls (2026-13-01, !!int abc,
        # !!bool maybe) and composes nodes recursively: those fail with builtin exceptions, not YAMLError.
        problem = "nested too deeply" if isinstance(error, RecursionError) else f"a value cannot be read ({error})"
        raise file_error(str(source), f"not valid YAML: {problem[:200]}") from None


def _duplicate_keys(root: Node) -> list[str]:
    """A problem for every key repeated in one mapping, naming its route (as parse_routes does), field and lines.

    Walks the composed nodes, before construction keeps only the last value; iteratively, and each node
    once (an alias shares its anchor's node, and may even contain it). Merge keys (`<<`) are YAML's own
    way to override and are left alone.
    """
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    found: list[tuple[int, str]] = []
    visited: set[int] = set()
    stack: list[tuple[Node, str | None, str]] = [(root, None, "")]  # node, its route's label, its field path
    while stack:
        node, label, field = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                if label is None and field == "routes":
                    stack.append((item, _route_label(item, index), ""))
                else:
                    stack.append((item, label, f"{field}[{index}]"))
        elif isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                path = f"{field}.{key.value}" if field else str(key.value)
                line, ident = key.start_mark.line + 1, (key.tag, key.value)
                if ident in first:
                    prefix = f"{label}: " if label is not None else ""
                    found.append(
                        (
                            line,
                            f"{prefix}{path}: given again at line {line} (first at line {first[ident]});"
                            " YAML would silently keep only the last one: remove one",
                        )
                    )
                else:
                    first[ident] = line
                stack.append((value, label, path))
    return [problem for _, problem in sorted(found)]


def _route_label(node: Node, index: int) -> str:
    """How parse_routes names a route: by its (last) name when it has one, else by its position."""
    from yaml.nodes import MappingNode, ScalarNode

    name = ""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "name" and isinstance(value, ScalarNode):
                name = value.value if value.tag == "tag:yaml.org,2002:str" else ""
    return f"route '{name}'" if name else f"routes[{index}]"


def cache_path(source: Path) -> Path:
    """routes.yaml -> routes.validated.json, in the same folder."""
    return source.with_name(source.stem + CACHE_SUFFIX)


def source_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_document(source: Path, data: bytes) -> Any | None:
    """The cached document for exactly these bytes of `source`, or None (no cache, stale, unreadable)."""
    try:
        cache = json.loads(cache_path(source).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(cache, dict) or cache.get("format") != CACHE_FORMAT:
        return None
    if cache.get("source_sha256") != source_hash(data):
        return None
    return cache.get("document")
