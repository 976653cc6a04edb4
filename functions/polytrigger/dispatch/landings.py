"""What polytrigger keeps so that every file can answer for itself (`polytrigger status s3://…`).

- `file#s3://<bucket>/<key>`: the object's latest landing — when it landed and reached us, and its
  sequencer, so its trigger (and each of its actions' dedup keys) can be made again. One write per
  landed file, whatever the number of routes and syncs; a later upload of the key replaces it.
- `parked#<digest>`: a start parked with its reason, under its sync in the `by_sync` index, sorted by
  the coverage bound of the triggers it was for (`covers_from`): the files it was for are those that
  landed by then and that no run covers. Only failures write one.

Which run has a file is not written per file: the coverage rule answers it (`runs.dynamo_ledger`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.table import expires, iso, sync_key
from polytrigger.observability import error_code

KEEP_SECONDS = 14 * 86400  # as long as the run ledger keeps a run
FILE_PREFIX = "file#"
PARKED_PREFIX = "parked#"
MAX_KEY_BYTES = 1024  # DynamoDB allows 2048 for a partition key; S3 keys are at most 1024 bytes anyway


class LandingsUnavailable(Exception):
    """The table could not be written: the file's story is not kept (its actions go on)."""


@dataclass(frozen=True, slots=True)
class Landing:
    """One object's latest landing, as it reached polytrigger."""

    bucket: str
    key: str
    sequencer: str
    landed_at: datetime  # the event's time: when S3 had the object
    received_at: datetime  # when polytrigger had the event

    def trigger(self) -> Trigger:
        """The trigger this landing was: every action's dedup key derives from it."""
        return Trigger.s3(
            bucket=self.bucket, key=self.key, event="created", sequencer=self.sequencer, time=self.landed_at
        )


def file_key(bucket: str, key: str) -> str:
    """The object's item: its URL, or a digest of it when the URL is no DynamoDB key (too long, not UTF-8)."""
    url = f"s3://{bucket}/{key}"
    try:
        fits = len(url.encode("utf-8")) <= MAX_KEY_BYTES
    except UnicodeEncodeError:
        fits = False
    if fits:
        return FILE_PREFIX + url
    return f"{FILE_PREFIX}sha256:{hashlib.sha256(url.encode('utf-8', 'surrogatepass')).hexdigest()}"


class DynamoLandings:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def landed(self, trigger: Trigger, received: float) -> None:
        """Keep the object's landing, unless a later upload of the key is kept already. A redelivery of
        the same upload keeps the first (its time of arrival bounds which runs have the file)."""
        item = {
            "id": {"S": file_key(trigger.bucket, trigger.key)},
            "sequencer": {"S": trigger.sequencer},
            "landed_at": {"S": iso(trigger.time)},
            "received_at": {"S": iso(datetime.fromtimestamp(received, UTC))},
            "expiration": expires(KEEP_SECONDS, self.clock()),
        }
        self._write(
            lambda: self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(id) OR landed_at < :landed OR (landed_at = :landed AND sequencer <> :seq)"
                ),
                ExpressionAttributeValues={":landed": item["landed_at"], ":seq": item["sequencer"]},
            )
        )

    def parked(self, action: Action, since: float, reason: str, where: str) -> None:
        """A start parked (with why and where), for the files whose coverage bound is `since` at most
        (epoch seconds: `coverage_since` of the latest file it was for) and that no run has."""
        now = self.clock()
        key = digest(["parked", action.dedup_key, repr(since), repr(now)])
        item = {
            "id": {"S": PARKED_PREFIX + key},
            "sync_key": {"S": sync_key(action.sync.type, action.sync.id)},
            "covers_from": {"S": iso(datetime.fromtimestamp(since, UTC))},
            "route": {"S": action.route},
            "options": {"S": digest(action.sync.option_pairs())},
            "trigger": {"S": action.trigger.describe()[:300]},
            "reason": {"S": reason[:1000]},
            "parked_in": {"S": where},
            "parked_at": {"S": iso(datetime.fromtimestamp(now, UTC))},
            "expiration": expires(KEEP_SECONDS, now),
        }
        self._write(lambda: self.client.put_item(TableName=self.table, Item=item))

    def get(self, bucket: str, key: str) -> Landing | None:
        try:
            answer = self.client.get_item(TableName=self.table, Key={"id": {"S": file_key(bucket, key)}})
        except (BotoCoreError, ClientError) as error:
            raise LandingsUnavailable(error_code(error)) from None
        item = answer.get("Item")
        if not item:
            return None
        return Landing(
            bucket=bucket,
            key=key,
            sequencer=item.get("sequencer", {}).get("S", ""),
            landed_at=datetime.fromisoformat(item["landed_at"]["S"]),
            received_at=datetime.fromisoformat(item["received_at"]["S"]),
        )

    def _write(self, call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return  # a later upload of the key is kept: this one was replaced
            raise LandingsUnavailable(f"the file's landing could not be kept: {error_code(error)}") from None
        except BotoCoreError as error:
            raise LandingsUnavailable(f"the file's landing could not be kept: {error_code(error)}") from None
