"""What polytrigger keeps so that every file can answer for itself (`polytrigger status s3://…`).

- `file#s3://<bucket>/<key>`: the object's latest landing — when it landed and reached us, and its
  sequencer, so its trigger (and each of its actions' dedup keys) can be made again. One write per
  landed file, whatever the number of routes and syncs; a later upload of the key replaces it.
  It is also the one arbiter between the ways an object can reach polytrigger: its event, and a listing
  (reconciliation, replay) that knows no sequencer. Whichever keeps the landing first acts on the
  upload; the other finds it kept and acts on nothing (`landed` answers which), so the three never
  start a sync twice for one landing. A listed landing is marked `handled` once its actions are done,
  so the next listing passes over it, and until then is acted on again (a crash resumes).
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
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.triggers import LISTINGS, FoundBy, Trigger
from polytrigger.dispatch.table import expires, iso, sync_key
from polytrigger.observability import error_code

KEEP_SECONDS = 14 * 86400  # as long as the run ledger keeps a run
FILE_PREFIX = "file#"
PARKED_PREFIX = "parked#"
MAX_KEY_BYTES = 1024  # DynamoDB allows 2048 for a partition key; S3 keys are at most 1024 bytes anyway
# A landing at most this much before a listed object's LastModified is of an older upload: the event
# time of an upload is at or after its LastModified (whole seconds in a listing, finer in an event).
SKEW = timedelta(seconds=2)
BATCH_READ = 100  # keys per BatchGetItem, DynamoDB's limit


class LandingsUnavailable(Exception):
    """The table could not be written: the file's story is not kept (its actions go on)."""


@dataclass(frozen=True, slots=True)
class Landing:
    """One object's latest landing, as it reached polytrigger."""

    bucket: str
    key: str
    sequencer: str
    landed_at: datetime  # the event's time: when S3 had the object (a listing: its LastModified)
    received_at: datetime  # when polytrigger had the event
    etag: str = ""
    found_by: FoundBy = "event"
    handled: bool = True  # a listed landing: its actions are done (an event's are retried by AWS)

    def trigger(self) -> Trigger:
        """The trigger this landing was: every action's dedup key derives from it."""
        if self.found_by != "event":
            return Trigger.listed(
                bucket=self.bucket,
                key=self.key,
                last_modified=self.landed_at,
                etag=self.etag,
                size=0,
                found_by=self.found_by,
            )
        return Trigger.s3(
            bucket=self.bucket, key=self.key, event="created", sequencer=self.sequencer, time=self.landed_at
        )

    def has(self, listed: Trigger) -> bool:
        """This landing is of the listed object's upload or a later one, and needs no action from it:
        an event's, or a listing's whose actions are done."""
        if self.landed_at < listed.time - SKEW:
            return False  # an older upload
        return self.found_by == "event" or self.handled or not self.same_listing(listed)

    def same_listing(self, listed: Trigger) -> bool:
        return self.found_by != "event" and self.landed_at == listed.time and self.etag == listed.etag


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

    def landed(self, trigger: Trigger, received: float) -> bool:
        """Keep the object's landing, unless this upload's or a later one's is kept already; True when
        this trigger is to be acted on.

        An event: always, but for an upload a listing found first (same ETag: the same bytes, so its
        data was synced then); a redelivery keeps the first arrival (its time bounds which runs have
        the file) and is acted on again, for dedup to answer. A listed object: only when no landing of
        its upload or a later one is kept, or its own listed landing is not `handled` yet (a crash)."""
        item = {
            "id": {"S": file_key(trigger.bucket, trigger.key)},
            "sequencer": {"S": trigger.sequencer},
            "landed_at": {"S": iso(trigger.time)},
            "received_at": {"S": iso(datetime.fromtimestamp(received, UTC))},
            "expiration": expires(KEEP_SECONDS, self.clock()),
        }
        if trigger.etag:
            item["etag"] = {"S": trigger.etag}
        if trigger.found_by != "event":
            return self._listed(trigger, item)
        values = {":landed": item["landed_at"], ":seq": item["sequencer"], ":etag": {"S": trigger.etag or "-"}}
        values.update({f":{name}": {"S": name} for name in LISTINGS})
        old = self._put(
            item,
            "attribute_not_exists(id) OR ((landed_at < :landed OR (landed_at = :landed AND sequencer <> :seq))"
            " AND NOT (found_by IN (:reconciliation, :replay) AND etag = :etag))",
            values,
        )
        if old is None:
            return True
        landing = _landing(trigger.bucket, trigger.key, old)
        return not (landing.found_by != "event" and landing.etag == trigger.etag and bool(trigger.etag))

    def _listed(self, trigger: Trigger, item: dict[str, Any]) -> bool:
        item["found_by"] = {"S": trigger.found_by}
        item["handled"] = {"BOOL": False}
        old = self._put(
            item,
            "attribute_not_exists(id) OR landed_at < :earliest",
            {":earliest": {"S": iso(trigger.time - SKEW)}},
        )
        if old is None:
            return True
        landing = _landing(trigger.bucket, trigger.key, old)
        return not landing.has(trigger)

    def handled(self, trigger: Trigger) -> None:
        """A listed object's actions are done: the next listing passes over it without acting."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": file_key(trigger.bucket, trigger.key)}},
                UpdateExpression="SET handled = :yes",
                ConditionExpression="landed_at = :landed AND found_by = :found_by",
                ExpressionAttributeValues={
                    ":yes": {"BOOL": True},
                    ":landed": {"S": iso(trigger.time)},
                    ":found_by": {"S": trigger.found_by},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return  # a later upload's landing is kept: it is acted on by its own way
            raise LandingsUnavailable(f"the file's landing could not be marked handled: {error_code(error)}") from None
        except BotoCoreError as error:
            raise LandingsUnavailable(f"the file's landing could not be marked handled: {error_code(error)}") from None

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Put `item` if `condition` holds: None when written, else the item that was kept instead."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise LandingsUnavailable(f"the file's landing could not be kept: {error_code(error)}") from None
            old: dict[str, Any] | None = cast("dict[str, Any] | None", error.response.get("Item"))
            if old is None:  # an engine that does not return it: read it (only on this rare path)
                key = {"id": item["id"]}
                old = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            return old or None
        except BotoCoreError as error:
            raise LandingsUnavailable(f"the file's landing could not be kept: {error_code(error)}") from None
        return None

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
        return _landing(bucket, key, item) if item else None

    def get_many(self, objects: list[tuple[str, str]]) -> dict[tuple[str, str], Landing]:
        """The landings kept of these (bucket, key) objects, in batches (a listing's page at a time)."""
        found: dict[tuple[str, str], Landing] = {}
        by_id = {file_key(bucket, key): (bucket, key) for bucket, key in objects}
        ids = list(by_id)
        for start in range(0, len(ids), BATCH_READ):
            keys: list[dict[str, Any]] = [{"id": {"S": one}} for one in ids[start : start + BATCH_READ]]
            for attempt in range(8):
                try:
                    answer = self.client.batch_get_item(RequestItems={self.table: {"Keys": keys}})
                except (BotoCoreError, ClientError) as error:
                    raise LandingsUnavailable(error_code(error)) from None
                for item in answer.get("Responses", {}).get(self.table, []):
                    bucket, key = by_id[item["id"]["S"]]
                    found[(bucket, key)] = _landing(bucket, key, item)
                keys = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if not keys:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise LandingsUnavailable("landings could not be read: requests throttled")
        return found

    def _write(self, call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return  # a later upload of the key is kept: this one was replaced
            raise LandingsUnavailable(f"the file's landing could not be kept: {error_code(error)}") from None
        except BotoCoreError as error:
            raise LandingsUnavailable(f"the file's landing could not be kept: {error_code(error)}") from None


def _landing(bucket: str, key: str, item: dict[str, Any]) -> Landing:
    found_by = item.get("found_by", {}).get("S", "event")
    return Landing(
        bucket=bucket,
        key=key,
        sequencer=item.get("sequencer", {}).get("S", ""),
        landed_at=datetime.fromisoformat(item["landed_at"]["S"]),
        received_at=datetime.fromisoformat(item["received_at"]["S"]),
        etag=item.get("etag", {}).get("S", ""),
        found_by=cast("FoundBy", found_by) if found_by in LISTINGS else "event",
        handled=item.get("handled", {}).get("BOOL", True),
    )
