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
from typing import Any

from polytrigger.dispatch.table import due_in, due_items, expires, iso
from polytrigger.gating.manifest_checks import KEEP_SECONDS, Objects, check_arrival, missing
from polytrigger.gating.requests import MAX_TRIES, ConditionFailed, GateRequests, GatesUnavailable
from polytrigger.gating.state import PART_PREFIX, GateState, gate_id, member_id, seconds
from polytrigger.routing.gates import Gate
from polytrigger.routing.globs import Partition
from polytrigger.routing.model import Arrival

DUE_KIND = "gate"
OWED_GRACE = 300  # seconds: a fired start still owed then is made by the poller
__all__ = ["KEEP_SECONDS", "OWED_GRACE", "DynamoGates", "GatesUnavailable", "partition_of"]


class DynamoGates(GateRequests):
    def __init__(
        self, client: Any, table: str, objects: Objects | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, table, clock=clock)
        self.objects = objects  # the manifests' bucket(s)

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
            stale = known.get("landed_at", {}).get("S", "") > iso(trigger.time)  # an older upload, late
            if known.get("upload", {}).get("S") == upload or opening or stale:
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
            state = check_arrival(self, self.objects, arrival, state, gid=gid, url=url)
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
        gate_update, part_put = _counting(
            arrival, gid=gid, part=part, url=url, upload=upload, version=version, state=state, opening=opening, now=now
        )
        gate_update["TableName"] = part_put["TableName"] = self.table
        reasons = self._transact([{"Update": gate_update}, {"Put": part_put}], "count the object")
        if reasons is None:
            return None
        if reasons[1:2] == ["ConditionalCheckFailed"] and reasons[:1] != ["ConditionalCheckFailed"]:
            return "part"
        return "gate"  # the gate's condition, or a conflict with another transaction on the same items

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
        key = {"id": {"S": gate_id(state.route, state.partition)}}
        try:
            answer = self._call(
                lambda: self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET fired = :v, owed = :v, completed_at = :now, due_in = :due_in, due_at = :due_at",
                    ConditionExpression="version = :v AND (attribute_not_exists(fired) OR fired < :v)",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            )
        except ConditionFailed:
            return None
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

    def missing(self, state: GateState, gate: Gate, bucket: str) -> list[str]:
        """The listed keys and manifest entries of `state`'s version that have not landed (timeout report)."""
        return missing(self, self.objects, state, gate, bucket=bucket)

    def due(self, until: datetime) -> Iterator[dict[str, Any]]:
        """The gates the poller must look at by `until` (each a raw item: `route` and `gate_partition`)."""
        return due_items(self.client, self.table, DUE_KIND, until, self._call)

    # -- plumbing --------------------------------------------------------------------------------


def _partition_json(partition: Partition) -> str:
    return json.dumps([list(pair) for pair in partition], ensure_ascii=False)


def partition_of(item: dict[str, Any]) -> Partition:
    """A gate item's partition, as `_partition_json` wrote it."""
    return tuple((str(name), str(value)) for name, value in json.loads(item["gate_partition"]["S"]))


def _counting(
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
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The counting transaction's two writes: the gate's update (count, or open the next version) and the
    part's put, each with the condition that makes it happen once."""
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
        part_condition = "attribute_not_exists(id) OR (upload <> :upload AND landed_at <= :landed)"
    else:
        sets.append("first_at = if_not_exists(first_at, :now)")
        if arrival.counted:
            sets.append("first_key = if_not_exists(first_key, :key)")
        update = "SET " + ", ".join(sets) + " ADD objects :objects, bytes :bytes, keys_seen :keys"
        condition = "attribute_not_exists(id) OR (version = :v AND (attribute_not_exists(fired) OR fired < :v))"
        part_condition = "attribute_not_exists(id) OR (version < :v AND upload <> :upload AND landed_at <= :landed)"
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
        "Key": {"id": {"S": gid}},
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
    }
    # An upload counts only if it is not older than the one the part holds: a late event of an older upload
    # (delivered again after the key was uploaded anew) opens no version and counts nothing.
    part_values = {":upload": {"S": upload}, ":landed": {"S": iso(trigger.time)}} | (
        {} if opening else {":v": {"N": str(version)}}
    )
    part_put = {
        "Item": part_item,
        "ConditionExpression": part_condition,
        "ExpressionAttributeValues": part_values,
    }
    return gate_update, part_put


def _due_after_arrival(gate: Gate, state: GateState | None, opening: bool, now: float) -> float | None:
    """When the poller must next look at a gate an object just reached: the quiet period's end, or (for a
    new version) its timeout; None: leave as it is (an earlier look is already due)."""
    if gate.quiet:
        return now + gate.quiet
    if state is None or opening:
        owed_due = seconds(state.completed_at) + OWED_GRACE if state is not None and state.owed else None
        timeout = now + gate.timeout
        return min(timeout, owed_due) if owed_due is not None else timeout
    return None
