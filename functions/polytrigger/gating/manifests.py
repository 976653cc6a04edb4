"""Reading a manifest: the objects a vendor says it sent, each with its size and ETag when given.

Formats (the gate's `manifest.format`):
- `json`: a list of keys, or of objects with `key` (or `path`, `url`, `file`, `name`) and optional
  `size` and `etag`; or an object holding such a list under `files`, `entries`, `keys` or `objects`.
- `lines`: one key per line; blank lines and lines starting with `#` are skipped.
- `csv`: a header naming a `key` (or `path`, `url`, `file`, `name`) column and optional `size` and
  `etag` columns; without such a header, the first column of every row is the key.

An entry without a `/` is a file in the manifest's own folder; any other is a key from the bucket's
root, or `s3://bucket/key`. Pure: the caller reads the bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from polytrigger.routing.gates import S3_URL

MAX_MANIFEST_BYTES = 16 * 2**20
MAX_ENTRIES = 100_000
KEY_FIELDS = ("key", "path", "url", "file", "name")
LIST_FIELDS = ("files", "entries", "keys", "objects")


class ManifestError(ValueError):
    """The manifest cannot be read as its format says: one line naming what is wrong."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One object a manifest lists: its key (in `bucket`), and what to check it against."""

    bucket: str
    key: str
    size: int | None = None
    etag: str = ""

    @property
    def url(self) -> str:
        return f"{S3_URL}{self.bucket}/{self.key}"


def parse_manifest(data: bytes, form: str, *, bucket: str, manifest_key: str) -> list[Entry]:
    """The entries of a manifest object `manifest_key` in `bucket`, each once, in its order."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"is {len(data)} bytes, more than the {MAX_MANIFEST_BYTES} polytrigger reads")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError("is not UTF-8 text") from None
    if form == "json":
        raw = _json_entries(text)
    elif form == "csv":
        raw = _csv_entries(text)
    else:
        raw = [(line.strip(), None, "") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    folder = manifest_key[: manifest_key.rfind("/") + 1]
    found: dict[str, Entry] = {}
    for key, size, etag in raw:
        entry = _entry(key, size, etag, bucket, folder)
        if entry.url != f"{S3_URL}{bucket}/{manifest_key}":
            found.setdefault(entry.url, entry)
        if len(found) > MAX_ENTRIES:
            raise ManifestError(f"lists more than {MAX_ENTRIES} objects")
    if not found:
        raise ManifestError("lists no object")
    return list(found.values())


def _entry(key: str, size: int | None, etag: str, bucket: str, folder: str) -> Entry:
    if key.startswith(S3_URL):
        other, _, rest = key[len(S3_URL) :].partition("/")
        if not other or not rest:
            raise ManifestError(f"lists {key[:200]!r}, which is no s3://BUCKET/KEY")
        return Entry(other, rest, size, etag)
    key = key.lstrip("/") if "/" in key else folder + key
    return Entry(bucket, key, size, etag.strip('"'))


def _json_entries(text: str) -> list[tuple[str, int | None, str]]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ManifestError(f"is not JSON ({error})") from None
    if isinstance(document, Mapping):
        listed = next((document[name] for name in LIST_FIELDS if isinstance(document.get(name), list)), None)
        if listed is None:
            raise ManifestError(f"is a JSON object without a list under {', '.join(LIST_FIELDS)}")
        document = listed
    if not isinstance(document, list):
        raise ManifestError("is JSON but neither a list nor an object holding one")
    return [_json_item(item, index) for index, item in enumerate(document)]


def _json_item(item: Any, index: int) -> tuple[str, int | None, str]:
    if isinstance(item, str) and item.strip():
        return item.strip(), None, ""
    if isinstance(item, Mapping):
        key = next((item[name] for name in KEY_FIELDS if isinstance(item.get(name), str) and item[name]), None)
        if key is not None:
            return key.strip(), _size(item.get("size"), index), _text(item.get("etag") or item.get("ETag"))
    raise ManifestError(f"entry {index} is neither a key nor an object with a key: {str(item)[:100]!r}")


def _csv_entries(text: str) -> list[tuple[str, int | None, str]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    key_column = next((header.index(name) for name in KEY_FIELDS if name in header), None)
    if key_column is None:
        return [(row[0].strip(), None, "") for row in rows if row[0].strip()]
    size_column = header.index("size") if "size" in header else None
    etag_column = header.index("etag") if "etag" in header else None
    return [
        (
            row[key_column].strip(),
            _size(_cell(row, size_column), index) if size_column is not None else None,
            _cell(row, etag_column),
        )
        for index, row in enumerate(rows[1:], start=1)
        if _cell(row, key_column)
    ]


def _cell(row: list[str], column: int | None) -> str:
    return row[column].strip() if column is not None and column < len(row) else ""


def _size(value: Any, index: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ManifestError(f"entry {index}: size {str(value)[:40]!r} is not a whole number of bytes") from None
    if size < 0:
        raise ManifestError(f"entry {index}: size {size} is negative")
    return size


def _text(value: Any) -> str:
    return value.strip('"') if isinstance(value, str) else ""


def matches(entry: Entry, checks: Iterable[str], size: int, etag: str) -> bool:
    """Whether a landed object is the entry, on the gate's `check` (size, etag) where the entry gives them."""
    wanted = set(checks)
    if "size" in wanted and entry.size is not None and entry.size != size:
        return False
    return not ("etag" in wanted and entry.etag and entry.etag != etag.strip('"'))
