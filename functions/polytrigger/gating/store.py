"""Gates in the dedup table: each object counted once per version, each complete version fired once.

Counting is one transaction of two writes: the object's `part#` item (its condition is what makes a
redelivery, or the same upload seen by two invocations at once, count nothing) and the gate's `ADD`.
A crash between two calls loses nothing: the transaction is whole or absent, and a fired version
keeps `owed` until its start is made (the poller makes it after `OWED_GRACE`). Completion is decided
by the write that completes it: the caller that reads the complete state claims the firing with a
conditional write, and only the one that gets it makes the start: concurrency and duplicates included.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.dispatch.table import due_in, due_items, expires, iso
from polytrigger.gating.manifests import Entry, ManifestError, matches, parse_manifest
from polytrigger.gating.state import GOT_PREFIX, NEED_PREFIX, PART_PREFIX, GateState, gate_id, member_id
from polytrigger.observability import error_code
from polytrigger.routing.gates import Gate
from polytrigger.routing.globs import Partition
from polytrigger.routing.model import Arrival

DUE_KIND = "gate"
OWED_GRACE = 300  # seconds: a fired start still owed then is made by the poller
KEEP_SECONDS = 35 * 86400  # a partition is remembered this long after its latest write
MAX_TRIES = 8  # a gate contended this often by one arrival is a busy gate: the event is retried
BATCH_WRITE, BATCH_GET = 25, 100


class GatesUnavailable(Exception):
    """The table could not be read or written: the object's event fails and is delivered again."""


class Objects(Protocol):
    def read(self, bucket: str, key: str) -> bytes: ...


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp() if text else 0.0


class DynamoGates:
    def __init__(
        self, client: Any, table: str, objects: Objects | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.table = table
        self.objects = objects
        self.clock = clock
        self.calls = 0  # requests made, for the benchmarks

    # -- reading ---------------------------------------------------------------------------------
    def read(self, route: str, partition: Partition) -> GateState | None:
        item = self._call(
            lambda: self.client.get_item(
                TableName=self.table, Key={"id": {"S": gate_id(route, partition)}}, ConsistentRead=True
            )
        ).get("Item")
        return GateState.from_item(item, route, partition) if item else None

    # -- an object arrives -----------------------------------------------------------------------
    def arrive(self, arrival: Arrival) -> GateState:
        """Count the object in its partition's current version (or open the next one, after a completion);
        the gate as it is afterwards. A redelivered upload changes nothing."""
        route, partition, trigger = arrival.route, arrival.partition, arrival.trigger
        gid = gate_id(route.name, partition)
        url = f"s3://{trigger.bucket}/{trigger.key}"
        part = member_id(PART_PREFIX, gid, url)
        upload = trigger.sequencer or iso(trigger.time)
        state = self.read(route.name, partition)
        for _ in range(MAX_TRIES):
            now = self.clock()
            opening = state is not None and state.complete
            version = state.version + 1 if state is not None and opening else max(state.version if state else 0, 1)
            failed = self._count(
                arrival,
                gid=gid,
                part=part,
                url=url,
                upload=upload,
                version=version,
                state=state,
                opening=opening,
                now=now,
            )
            if failed is None:
                state = self.read(route.name, partition)
                break
            if failed == "gate":  # another arrival opened a version, or the version fired: decide again
                state = self.read(route.name, partition)
                continue
            known = self._item(part)
            if known.get("upload", {}).get("S") == upload or opening:
                state = state or self.read(route.name, partition)
                break  # counted already (a redelivery, or a retry): its manifest step is still to finish
            if not self._touch(
                arrival, gid=gid, part=part, upload=upload, version=version, now=now
            ):  # a new upload of a counted key
                state = self.read(route.name, partition)
                continue
            state = self.read(route.name, partition)
            break
        else:
            raise GatesUnavailable(f"the gate of {route.name} {partition} stayed too busy to count {url}")
        assert state is not None
        if route.gate is not None and route.gate.manifest is not None:
            state = self._manifest(arrival, state, gid, url)
        return state

    def _count(
        self,
        arrival: Arrival,
        *,
        gid: str,
        part: str,
        url: str,
        upload: str,
        version: int,
        state: GateState | None,
        opening: bool,
        now: float,
    ) -> str | None:
        """The counting transaction; None when written, else which condition failed ("gate" or "part")."""
        gate, trigger = arrival.gate, arrival.trigger
        counts = arrival.counted and not arrival.marker and not arrival.manifest  # at_least counts the data only
        at = iso(datetime.fromtimestamp(now, UTC))
        values: dict[str, Any] = {
            ":v": {"N": str(version)},
            ":route": {"S": arrival.route.name},
            ":text": {"S": _partition_json(arrival.partition)},
            ":now": {"S": at},
            ":exp": expires(KEEP_SECONDS, now),
            ":objects": {"N": "1" if counts else "0"},
            ":bytes": {"N": str(trigger.size if counts else 0)},
            ":keys": {"N": "1" if arrival.listed else "0"},
        }
        sets = ["route = :route", "gate_partition = :text", "version = :v", "last_at = :now", "expiration = :exp"]
        removes: list[str] = []
        if arrival.counted:
            values[":key"] = {"S": trigger.key}
        if arrival.marker:
            sets.append("marker_at = :now")
        due = _due_after_arrival(gate, state, opening, now)
        if due is not None:
            values[":due_in"] = {"S": due_in(DUE_KIND, gid)}
            values[":due_at"] = {"S": iso(datetime.fromtimestamp(due, UTC))}
            sets += ["due_in = :due_in", "due_at = :due_at"]
        if opening:
            assert state is not None
            values[":previous"] = {"N": str(state.version)}
            values[":zero"] = {"N": "0"}
            sets += ["first_at = :now", "objects = :objects", "bytes = :bytes", "keys_seen = :keys"]
            sets.append("manifest_present = :zero")
            if arrival.counted:
                sets.append("first_key = :key")
            else:
                removes.append("first_key")
            if not arrival.marker:
                removes.append("marker_at")
            removes += ["manifest_total", "manifest_key", "manifest_error"]
            update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
            condition = "version = :previous AND fired = :previous"
            part_condition = "attribute_not_exists(id) OR upload <> :upload"
        else:
            sets.append("first_at = if_not_exists(first_at, :now)")
            if arrival.counted:
                sets.append("first_key = if_not_exists(first_key, :key)")
            update = "SET " + ", ".join(sets) + " ADD objects :objects, bytes :bytes, keys_seen :keys"
            condition = "attribute_not_exists(id) OR (version = :v AND (attribute_not_exists(fired) OR fired < :v))"
            part_condition = "attribute_not_exists(id) OR (version < :v AND upload <> :upload)"
        part_item = {
            "id": {"S": part},
            "gate": {"S": gid},
            "url": {"S": url},
            "version": {"N": str(version)},
            "upload": {"S": upload},
            "size": {"N": str(trigger.size)},
            "etag": {"S": trigger.etag},
            "landed_at": {"S": iso(trigger.time)},
            "expiration": expires(KEEP_SECONDS, now),
        }
        gate_update = {
            "TableName": self.table,
            "Key": {"id": {"S": gid}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        part_values = {":upload": {"S": upload}} | ({} if opening else {":v": {"N": str(version)}})
        part_put = {
            "TableName": self.table,
            "Item": part_item,
            "ConditionExpression": part_condition,
            "ExpressionAttributeValues": part_values,
        }
        reasons = self._transact([{"Update": gate_update}, {"Put": part_put}], "count the object")
        if reasons is None:
            return None
        if reasons[1:2] == ["ConditionalCheckFailed"] and reasons[:1] != ["ConditionalCheckFailed"]:
            return "part"
        return "gate"  # the gate's condition, or a conflict with another transaction on the same items

    def _transact(self, items: list[dict[str, Any]], what: str) -> list[str] | None:
        """One transaction; None when written, else each item's cancellation code ("None" for the ones that held)."""
        try:
            self.calls += 1
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise GatesUnavailable(f"the gate could not {what}: {error_code(error)}") from None
            return [str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])]
        except BotoCoreError as error:
            raise GatesUnavailable(f"the gate could not {what}: {error_code(error)}") from None
        return None

    def _touch(self, arrival: Arrival, *, gid: str, part: str, upload: str, version: int, now: float) -> bool:
        """A new upload of a key already counted in this version: it moves the partition's last arrival
        (and the marker's), counts nothing. False when the version moved meanwhile."""
        at = iso(datetime.fromtimestamp(now, UTC))
        sets = ["last_at = :now"] + (["marker_at = :now"] if arrival.marker else [])
        values: dict[str, Any] = {":v": {"N": str(version)}, ":now": {"S": at}}
        if arrival.gate.quiet:
            values[":due_in"] = {"S": due_in(DUE_KIND, gid)}
            values[":due_at"] = {"S": iso(datetime.fromtimestamp(now + arrival.gate.quiet, UTC))}
            sets += ["due_in = :due_in", "due_at = :due_at"]
        if not self._conditional(
            {"id": {"S": gid}},
            "SET " + ", ".join(sets),
            "version = :v AND (attribute_not_exists(fired) OR fired < :v)",
            values,
        ):
            return False
        trigger = arrival.trigger
        self._call(
            lambda: self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": part}},
                UpdateExpression="SET upload = :upload, size = :size, etag = :etag",
                ExpressionAttributeValues={
                    ":upload": {"S": upload},
                    ":size": {"N": str(trigger.size)},
                    ":etag": {"S": trigger.etag},
                },
            )
        )
        return True

    # -- manifests -------------------------------------------------------------------------------
    def _manifest(self, arrival: Arrival, state: GateState, gid: str, url: str) -> GateState:
        """The manifest read when it lands (its entries become `need#` items), and this object's entry
        flipped when the version's manifest lists it. Either side may come first; each entry counts once."""
        manifest = arrival.gate.manifest
        assert manifest is not None
        if arrival.manifest and not state.complete:  # each delivery of it (a retry finishes what a failure left)
            self._read_manifest(arrival, state, gid)
            state = self.read(arrival.route.name, arrival.partition) or state
        elif state.manifest_total >= 0 and not state.complete:
            scope = f"{gid}#v{state.version}"
            need = self._item(member_id(NEED_PREFIX, scope, url))
            trigger = arrival.trigger
            if (
                need
                and "arrived" not in need
                and matches(_entry_of(need), manifest.check, trigger.size, trigger.etag)
                and self._flip(scope, url, gid, state.version)
            ):
                state = self.read(arrival.route.name, arrival.partition) or state
        return state

    def _read_manifest(self, arrival: Arrival, state: GateState, gid: str) -> None:
        manifest = arrival.gate.manifest
        assert manifest is not None
        assert self.objects is not None
        trigger = arrival.trigger
        try:
            entries = parse_manifest(
                self.objects.read(trigger.bucket, trigger.key),
                manifest.format,
                bucket=trigger.bucket,
                manifest_key=trigger.key,
            )
        except ManifestError as error:
            self._conditional(
                {"id": {"S": gid}},
                "SET manifest_error = :why",
                "version = :v",
                {":why": {"S": f"s3://{trigger.bucket}/{trigger.key} {error}"[:500]}, ":v": {"N": str(state.version)}},
            )
            raise
        scope = f"{gid}#v{state.version}"
        now = self.clock()
        needs = [_need_item(member_id(NEED_PREFIX, scope, entry.url), entry, now) for entry in entries]
        for start in range(0, len(needs), BATCH_WRITE):
            self._batch_write(needs[start : start + BATCH_WRITE])
        self._conditional(  # refused when another delivery of it set it first, or the version moved on
            {"id": {"S": gid}},
            "SET manifest_total = :n, manifest_key = :key REMOVE manifest_error",
            "version = :v AND attribute_not_exists(manifest_total)",
            {":n": {"N": str(len(entries))}, ":key": {"S": trigger.key}, ":v": {"N": str(state.version)}},
        )
        # The objects that landed before: counted here, by every delivery of the manifest (each entry once:
        # `_flip`), so a reader that failed after writing the total leaves nothing uncounted.
        parts = {member_id(PART_PREFIX, gid, entry.url): entry for entry in entries}
        for landed in self._batch_get(list(parts)):
            entry = parts[landed["id"]["S"]]
            size = int(landed.get("size", {}).get("N", "0"))
            if matches(entry, manifest.check, size, landed.get("etag", {}).get("S", "")):
                self._flip(scope, entry.url, gid, state.version)

    def missing(self, state: GateState, gate: Gate, bucket: str, limit: int = 20) -> list[str]:
        """The listed keys and manifest entries of `state`'s version that have not landed (at most `limit`
        of each), for the timeout report: read once, when it is made."""
        gid = gate_id(state.route, state.partition)
        wanted = {
            member_id(PART_PREFIX, gid, _url(item.fill(state.partition, bucket), bucket)): item.fill(
                state.partition, bucket
            )
            for item in gate.keys
        }
        here = {item["id"]["S"] for item in self._batch_get(list(wanted)) if item["version"]["N"] == str(state.version)}
        missing = [written for key, written in wanted.items() if key not in here][:limit]
        if gate.manifest is None or state.manifest_total < 0 or not state.manifest_key or self.objects is None:
            return missing
        try:
            entries = parse_manifest(
                self.objects.read(bucket, state.manifest_key),
                gate.manifest.format,
                bucket=bucket,
                manifest_key=state.manifest_key,
            )
        except (ManifestError, GatesUnavailable):
            return [*missing, f"(manifest s3://{bucket}/{state.manifest_key} could not be read again)"]
        scope = f"{gid}#v{state.version}"
        got = {member_id(GOT_PREFIX, scope, entry.url): entry.url for entry in entries}
        arrived = {item["id"]["S"] for item in self._batch_get(list(got))}
        return missing + [url for key, url in got.items() if key not in arrived][:limit]

    def _flip(self, scope: str, url: str, gid: str, version: int) -> bool:
        """One manifest entry found: counted once, with its `got#` item in the same transaction (the need's
        `arrived` is only a hint: a later read of the manifest writes the need again). A conflict with another
        transaction is tried again; True when this call counted it."""
        now = self.clock()
        need = {
            "TableName": self.table,
            "Key": {"id": {"S": member_id(NEED_PREFIX, scope, url)}},
            "UpdateExpression": "SET arrived = :now",
            "ConditionExpression": "attribute_exists(id)",
            "ExpressionAttributeValues": {":now": {"S": iso(datetime.fromtimestamp(now, UTC))}},
        }
        got = {
            "TableName": self.table,
            "Item": {"id": {"S": member_id(GOT_PREFIX, scope, url)}, "expiration": expires(KEEP_SECONDS, now)},
            "ConditionExpression": "attribute_not_exists(id)",
        }
        gate = {
            "TableName": self.table,
            "Key": {"id": {"S": gid}},
            "UpdateExpression": "ADD manifest_present :one",
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":v": {"N": str(version)}},
        }
        for _ in range(MAX_TRIES):
            reasons = self._transact([{"Update": need}, {"Put": got}, {"Update": gate}], "count a manifest entry")
            if reasons is None:
                return True
            if "ConditionalCheckFailed" in reasons or "TransactionConflict" not in reasons:
                return False  # counted already, not listed, or the version moved on
        raise GatesUnavailable(f"the gate {gid} stayed too busy to count {url}")

    # -- firing ----------------------------------------------------------------------------------
    def fire(self, state: GateState) -> GateState | None:
        """Claim the completion of `state`'s version: the gate as written when this caller won, else None
        (another caller has it). The start stays owed until `settle`."""
        now = self.clock()
        values = {
            ":v": {"N": str(state.version)},
            ":now": {"S": iso(datetime.fromtimestamp(now, UTC))},
            ":due_in": {"S": due_in(DUE_KIND, gate_id(state.route, state.partition))},
            ":due_at": {"S": iso(datetime.fromtimestamp(now + OWED_GRACE, UTC))},
        }
        try:
            self.calls += 1
            answer = self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": gate_id(state.route, state.partition)}},
                UpdateExpression="SET fired = :v, owed = :v, completed_at = :now, due_in = :due_in, due_at = :due_at",
                ConditionExpression="version = :v AND (attribute_not_exists(fired) OR fired < :v)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise GatesUnavailable(f"the gate could not fire: {error_code(error)}") from None
        except BotoCoreError as error:
            raise GatesUnavailable(f"the gate could not fire: {error_code(error)}") from None
        return GateState.from_item(answer["Attributes"], state.route, state.partition)

    def settle(self, state: GateState) -> None:
        """The fired version's start is made (or in the dispatch queue): nothing is owed any more."""
        key = {"id": {"S": gate_id(state.route, state.partition)}}
        values = {":v": {"N": str(state.fired)}}
        if not self._conditional(key, "REMOVE owed, due_in, due_at", "owed = :v AND version = :v", values):
            self._conditional(key, "REMOVE owed", "owed = :v", values)

    def reported(self, state: GateState) -> bool:
        """Claim the timeout report of `state`'s version: True for the one caller that makes it."""
        return self._conditional(
            {"id": {"S": gate_id(state.route, state.partition)}},
            "SET reported = :v",
            "version = :v AND (attribute_not_exists(reported) OR reported < :v)",
            {":v": {"N": str(state.version)}},
        )

    def next_check(self, state: GateState, at: float | None) -> None:
        """When the poller looks at this version again (None: never, until an object lands)."""
        key = {"id": {"S": gate_id(state.route, state.partition)}}
        values: dict[str, Any] = {":v": {"N": str(state.version)}, ":owed": {"N": str(state.owed)}}
        if at is None:
            self._conditional(key, "REMOVE due_in, due_at", "version = :v AND owed = :owed", values)
            return
        values[":due_in"] = {"S": due_in(DUE_KIND, key["id"]["S"])}
        values[":due_at"] = {"S": iso(datetime.fromtimestamp(at, UTC))}
        self._conditional(key, "SET due_in = :due_in, due_at = :due_at", "version = :v", values)

    def made(self, keys: list[str]) -> set[str]:
        """Of these actions' dedup keys, those whose start already has its settled outcome in the dedup table
        (the completing invocation made it, then died before `settle`): an owed start not to make again."""
        from polytrigger.dispatch.dedup import KEY_PREFIX  # the dedup records' ids: `polytrigger#<dedup key>`

        records = {f"{KEY_PREFIX}#{key}": key for key in keys}
        return {
            records[item["id"]["S"]]
            for item in self._batch_get(list(records))
            if item.get("status", {}).get("S") == "COMPLETED"
        }

    def due(self, until: datetime) -> Iterator[dict[str, Any]]:
        """The gates the poller must look at by `until` (each a raw item: `route` and `gate_partition`)."""
        return due_items(self.client, self.table, DUE_KIND, until, self._call)

    # -- plumbing --------------------------------------------------------------------------------
    def _item(self, key: str) -> dict[str, Any]:
        answer = self._call(
            lambda: self.client.get_item(TableName=self.table, Key={"id": {"S": key}}, ConsistentRead=True)
        )
        return answer.get("Item") or {}

    def _conditional(self, key: dict[str, Any], update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self._call(
                lambda: self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            )
        except _ConditionFailed:
            return False
        return True

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        request = {self.table: [{"PutRequest": {"Item": item}} for item in items]}
        for _ in range(MAX_TRIES):
            answer = self._call(lambda request=request: self.client.batch_write_item(RequestItems=request))  # type: ignore[misc]
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
            time.sleep(0.05)
        raise GatesUnavailable("the manifest's entries could not all be written")

    def _batch_get(self, keys: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(keys), BATCH_GET):
            request = {
                self.table: {
                    "Keys": [{"id": {"S": key}} for key in keys[start : start + BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(MAX_TRIES):
                answer = self._call(lambda request=request: self.client.batch_get_item(RequestItems=request))  # type: ignore[misc]
                yield from answer.get("Responses", {}).get(self.table, [])
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05)

    def _call(self, call: Callable[[], Any]) -> Any:
        self.calls += 1
        try:
            return call()
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            raise GatesUnavailable(f"the gate's table: {error_code(error)}") from None
        except BotoCoreError as error:
            raise GatesUnavailable(f"the gate's table: {error_code(error)}") from None


class _ConditionFailed(Exception):
    pass


def _url(key: str, bucket: str) -> str:
    """A filled key template as its part item names it: `s3://bucket/key` (a template may name another bucket)."""
    return key if key.startswith("s3://") else f"s3://{bucket}/{key}"


def _partition_json(partition: Partition) -> str:
    return json.dumps([list(pair) for pair in partition], ensure_ascii=False)


def partition_of(item: dict[str, Any]) -> Partition:
    """A gate item's partition, as `_partition_json` wrote it."""
    return tuple((str(name), str(value)) for name, value in json.loads(item["gate_partition"]["S"]))


def _due_after_arrival(gate: Gate, state: GateState | None, opening: bool, now: float) -> float | None:
    """When the poller must next look at a gate an object just reached: the quiet period's end, or (for a
    new version) its timeout; None: leave as it is (an earlier look is already due)."""
    if gate.quiet:
        return now + gate.quiet
    if state is None or opening:
        owed_due = _seconds(state.completed_at) + OWED_GRACE if state is not None and state.owed else None
        timeout = now + gate.timeout
        return min(timeout, owed_due) if owed_due is not None else timeout
    return None


def _need_item(key: str, entry: Entry, now: float) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": key},
        "url": {"S": entry.url},
        "etag": {"S": entry.etag},
        "expiration": expires(KEEP_SECONDS, now),
    }
    if entry.size is not None:
        item["size"] = {"N": str(entry.size)}
    return item


def _entry_of(need: dict[str, Any]) -> Entry:
    bucket, _, key = need["url"]["S"][len("s3://") :].partition("/")
    size = need.get("size", {}).get("N")
    return Entry(bucket, key, int(size) if size is not None else None, need.get("etag", {}).get("S", ""))
