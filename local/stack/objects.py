"""Objects in the local S3 (moto, in this process) for reconciliation: many at once, dated as a test needs.

moto dates an object by the machine's clock when it is put; `backdate` sets its LastModified to any
moment (moto's S3 runs in this process, so its object is at hand), for a day of uploads no event told
of, or objects older than a pass looks at. `notification` is the S3 event notification of some of
them, in one payload (many records), as a bucket with notifications on would have sent it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

THREADS = 10  # botocore's connection pool


def put_objects(s3: Any, bucket: str, keys: Iterable[str]) -> dict[str, datetime]:
    """Put an empty object at each key (in parallel); each key's LastModified as the listing will show it."""
    keys = list(keys)
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    return {key: modified(bucket, key) for key in keys}


def _key(bucket: str, key: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys[key]


def modified(bucket: str, key: str) -> datetime:
    """The object's LastModified, to the second, as ListObjectsV2 gives it."""
    moment: datetime = _key(bucket, key).last_modified
    return moment.replace(microsecond=0, tzinfo=UTC)


def etag(bucket: str, key: str) -> str:
    """The object's ETag, as its event carries it (unquoted)."""
    return str(_key(bucket, key).etag).strip('"')


def backdate(bucket: str, key: str, when: datetime) -> None:
    """Make the object look uploaded at `when` (its LastModified in every listing)."""
    _key(bucket, key).last_modified = when.astimezone(UTC).replace(tzinfo=None)


def notification(bucket: str, landed: dict[str, datetime]) -> dict[str, Any]:
    """An S3 event notification of these uploads (key → when), one record each, as S3 sends it (the keys
    need no URL-encoding: letters, digits, `-`, `_`, `.` and `/`)."""
    records = []
    for key, when in landed.items():
        sequencer = uuid.uuid4().hex[:18].upper()
        records.append(
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": 1, "eTag": etag(bucket, key), "sequencer": sequencer},
                },
            }
        )
    return {"Records": records}
