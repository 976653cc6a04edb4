"""What `polytrigger replay` reads: the objects (an S3 listing, or an S3 Inventory report) and the table.

- A listing walks the routed prefixes of each bucket the selected routes name (`reconciliation.listing`),
  or the one prefix the user gave, a page at a time.
- An S3 Inventory report is its `manifest.json` (`fileFormat` CSV, `fileSchema` naming the columns,
  `files` the CSV, gzipped, in the destination bucket). Keys in the CSV are URL-encoded (S3's own note);
  rows of older versions (`IsLatest` false) and delete markers are left out.
- The table: landings in batches, a sync's runs from its `by_sync` index (the coverage rule), and, only
  for an object an event brought that no run covers, `tools.fate`'s answer: held, waiting or deferred.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.actions import Action, SyncTarget
from polytrigger.dispatch.landings import Landing
from polytrigger.dispatch.table import BY_SYNC_INDEX, iso, sync_key
from polytrigger.observability import error_code
from polytrigger.reconciliation.listing import Listed, S3Listing, prefixes
from polytrigger.routing import Routes
from polytrigger.routing.model import Route
from polytrigger.tools.fate import Records, fate_of
from polytrigger.tools.replay_plan import PENDING

S3_URL = "s3://"


class ReplayInputError(ValueError):
    """The input cannot be read (a manifest, an inventory file, a listing): one line, exit 2."""


def listed_objects(
    client: Callable[[], Any], routes: list[Route], bucket: str = "", prefix: str = ""
) -> Iterator[Listed]:
    """Every object under `bucket`/`prefix`, or under the routed prefixes of the routes' buckets."""
    listing = S3Listing(client)
    if bucket:
        places = [(bucket, prefix)]
    else:
        buckets = sorted({route.bucket for route in routes})
        places = [(name, one) for name in buckets for one in prefixes(routes, name)]
    for name, where in places:
        for page in listing.walk(name, where):
            yield from page.objects


def inventory_objects(client: Any, manifest_url: str) -> Iterator[Listed]:
    """The objects an S3 Inventory report lists (CSV only), from its manifest.json."""
    bucket, key = split_url(manifest_url)
    manifest = _json(_read(client, bucket, key), manifest_url)
    if str(manifest.get("fileFormat", "")).upper() != "CSV":
        raise ReplayInputError(
            f"{manifest_url}: inventory format {manifest.get('fileFormat')!r} is not read; ask S3 for CSV"
        )
    columns = [name.strip() for name in str(manifest.get("fileSchema", "")).split(",")]
    if not {"Bucket", "Key", "LastModifiedDate"} <= set(columns):
        raise ReplayInputError(f"{manifest_url}: fileSchema lacks Bucket, Key or LastModifiedDate: {columns}")
    destination = str(manifest.get("destinationBucket", "")).rpartition(":")[2] or bucket
    for entry in manifest.get("files", []):
        raw = _read(client, destination, str(entry.get("key", "")))
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        for row in csv.reader(io.StringIO(text.decode("utf-8"))):
            yield from _row(dict(zip(columns, row, strict=False)), manifest_url)


def _row(row: dict[str, str], where: str) -> Iterator[Listed]:
    if row.get("IsLatest", "true").lower() == "false" or row.get("IsDeleteMarker", "false").lower() == "true":
        return
    try:
        modified = datetime.fromisoformat(row["LastModifiedDate"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        raise ReplayInputError(
            f"{where}: a row's LastModifiedDate is not a time: {row.get('LastModifiedDate')!r}"
        ) from None
    yield Listed(
        bucket=row.get("Bucket", ""),
        key=unquote_plus(row.get("Key", "")),
        last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
        etag=row.get("ETag", "").strip('"'),
        size=int(row.get("Size") or 0),
    )


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); a URL of another form is one clear line."""
    if not url.startswith(S3_URL) or not url[len(S3_URL) :].split("/", 1)[0]:
        raise ReplayInputError(f"not an S3 URL: {url[:80]!r} (give s3://BUCKET/PREFIX)")
    bucket, _, key = url[len(S3_URL) :].partition("/")
    return bucket, key


def _read(client: Any, bucket: str, key: str) -> bytes:
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise ReplayInputError(f"s3://{bucket}/{key} could not be read ({error_code(error)})") from None
    return body


def _json(raw: bytes, where: str) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except ValueError:
        raise ReplayInputError(f"{where}: not a manifest.json (not JSON)") from None
    if not isinstance(found, dict):
        raise ReplayInputError(f"{where}: not a manifest.json (not an object)")
    return found


class TableCoverage:
    """The dedup table as the plan reads it: by key, in batches and through the `by_sync` index."""

    def __init__(self, records: Records, routes: Routes) -> None:
        self.records = records
        self.routes = routes

    def landings(self, objects: list[tuple[str, str]]) -> dict[tuple[str, str], Landing]:
        return self.records.landings.get_many(objects)

    def runs(self, sync: SyncTarget, since: float) -> list[tuple[float, str]]:
        found: list[tuple[float, str]] = []
        paginator = self.records.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.records.table,
            IndexName=BY_SYNC_INDEX,
            KeyConditionExpression="sync_key = :sync AND covers_from >= :since",
            ExpressionAttributeValues={
                ":sync": {"S": sync_key(sync.type, sync.id)},
                ":since": {"S": iso(datetime.fromtimestamp(since, UTC))},
            },
        ):
            for item in page.get("Items", []):
                if item["id"]["S"].startswith("run#"):
                    bound = datetime.fromisoformat(item["covers_from"]["S"]).timestamp()
                    found.append((bound, item["id"]["S"].removeprefix("run#")))
        return sorted(found)

    def pending(self, listed: Listed, route: str, sync: SyncTarget) -> tuple[str, str] | None:
        fate = fate_of(listed.bucket, listed.key, self.routes, self.records, route=route, sync=sync.id)
        for one in fate.syncs:
            if one.sync_type == sync.type and one.state in PENDING:
                return one.state, one.reason
        return None

    def done(self, action: Action) -> dict[str, Any] | None:
        return self.records.outcome(action)
