"""What is under a bucket's routed prefixes, a page at a time (ListObjectsV2), as listed triggers.

The prefixes come from the routes' globs (the literal part before the first wildcard or placeholder),
merged so no object is listed twice: `orders/` covers `orders/eu/`. A page is at most 1,000 keys,
in key order, so a listing can stop after any page and resume with `StartAfter` the page's last key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.triggers import FoundBy, Trigger
from polytrigger.observability import error_code
from polytrigger.routing.model import Route

PAGE = 1000  # S3's most keys per ListObjectsV2 page


class ListingUnavailable(Exception):
    """S3 could not be listed (throttled, denied, no such bucket): one line naming the bucket and why."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One object as a listing shows it."""

    bucket: str
    key: str
    last_modified: datetime
    etag: str
    size: int

    def trigger(self, found_by: FoundBy) -> Trigger:
        return Trigger.listed(
            bucket=self.bucket,
            key=self.key,
            last_modified=self.last_modified,
            etag=self.etag,
            size=self.size,
            found_by=found_by,
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a prefix: its objects, and where the next page starts ("" after the last)."""

    prefix: str
    objects: tuple[Listed, ...]
    after: str  # the last key of this page: StartAfter for the next one; "" when the prefix is done


def prefixes(routes: Iterable[Route], bucket: str) -> list[str]:
    """The fewest prefixes whose listing holds every key the S3 routes of `bucket` can match."""
    found = sorted({route.key_prefix for route in routes if route.bucket == bucket and route.key_pattern is not None})
    merged: list[str] = []
    for prefix in found:
        if not merged or not prefix.startswith(merged[-1]):
            merged.append(prefix)
    return merged


class S3Listing:
    """ListObjectsV2 behind one method; the client is made on first use."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self.client = client

    def page(self, bucket: str, prefix: str, after: str = "", size: int = PAGE) -> Page:
        """The page of `prefix` that starts after the key `after` ("" for the first)."""
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": size}
        if after:
            request["StartAfter"] = after
        try:
            answer = self.client().list_objects_v2(**request)
        except (BotoCoreError, ClientError) as error:
            hint = ": the role needs s3:ListBucket on it" if error_code(error) in {"AccessDenied", "403"} else ""
            raise ListingUnavailable(
                f"s3://{bucket}/{prefix} could not be listed ({error_code(error)}{hint})"
            ) from None
        objects = tuple(
            Listed(
                bucket=bucket,
                key=entry["Key"],
                last_modified=_utc(entry["LastModified"]),
                etag=str(entry.get("ETag", "")).strip('"'),
                size=int(entry.get("Size", 0)),
            )
            for entry in answer.get("Contents", [])
        )
        more = bool(answer.get("IsTruncated")) and bool(objects)
        return Page(prefix=prefix, objects=objects, after=objects[-1].key if more else "")

    def walk(self, bucket: str, prefix: str, after: str = "") -> Iterator[Page]:
        """Every page of `prefix` from `after` on, fetched as they are asked for."""
        while True:
            page = self.page(bucket, prefix, after)
            yield page
            if not page.after:
                return
            after = page.after


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
