"""A gate's manifest at run time: read when it lands, each entry found once, the missing ones named.

- The manifest's entries become `need#<gate id>#v<version>#<url>` items (one per entry), then the gate
  learns how many there are (`manifest_total`), then the parts already landed are looked up: an entry
  is flipped `arrived` (and the gate's `manifest_present` moved) in one transaction, by whichever side
  sees both first, the manifest's reader or the part's arrival. Each entry counts once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from polytrigger.dispatch.table import expires, iso
from polytrigger.gating.manifests import Entry, ManifestError, matches, parse_manifest
from polytrigger.gating.requests import BATCH_WRITE, MAX_TRIES, GateRequests, GatesUnavailable
from polytrigger.gating.state import GOT_PREFIX, NEED_PREFIX, PART_PREFIX, GateState, gate_id, member_id, read_gate
from polytrigger.routing.gates import Gate
from polytrigger.routing.model import Arrival

KEEP_SECONDS = 35 * 86400  # as long as the gate's own items


class Objects(Protocol):
    def read(self, bucket: str, key: str) -> bytes: ...


def _reread(gates: GateRequests, state: GateState) -> GateState | None:
    return read_gate(gates.client, gates.table, state.route, state.partition)


def check_arrival(
    gates: GateRequests, objects: Objects | None, arrival: Arrival, state: GateState, *, gid: str, url: str
) -> GateState:
    """The manifest read when it lands (its entries become `need#` items), and this object's entry
    flipped when the version's manifest lists it. Either side may come first; each entry counts once."""
    manifest = arrival.gate.manifest
    assert manifest is not None
    if arrival.manifest and not state.complete:  # each delivery of it: a retry finishes what a failure left
        read_manifest(gates, objects, arrival, state, gid)
        state = _reread(gates, state) or state
    elif state.manifest_total >= 0 and not state.complete:
        scope = f"{gid}#v{state.version}"
        need = gates._item(member_id(NEED_PREFIX, scope, url))
        trigger = arrival.trigger
        if (
            need
            and "arrived" not in need
            and matches(_entry_of(need), manifest.check, trigger.size, trigger.etag)
            and flip(gates, scope, url, gid, state.version)
        ):
            state = _reread(gates, state) or state
    return state


def read_manifest(gates: GateRequests, objects: Objects | None, arrival: Arrival, state: GateState, gid: str) -> None:
    manifest = arrival.gate.manifest
    assert manifest is not None
    assert objects is not None
    trigger = arrival.trigger
    try:
        entries = parse_manifest(
            objects.read(trigger.bucket, trigger.key),
            manifest.format,
            bucket=trigger.bucket,
            manifest_key=trigger.key,
        )
    except ManifestError as error:
        gates._conditional(
            {"id": {"S": gid}},
            "SET manifest_error = :why",
            "version = :v",
            {":why": {"S": f"s3://{trigger.bucket}/{trigger.key} {error}"[:500]}, ":v": {"N": str(state.version)}},
        )
        raise
    scope = f"{gid}#v{state.version}"
    now = gates.clock()
    needs = [_need_item(member_id(NEED_PREFIX, scope, entry.url), entry, now) for entry in entries]
    for start in range(0, len(needs), BATCH_WRITE):
        gates._batch_write(needs[start : start + BATCH_WRITE])
    gates._conditional(  # refused when another delivery of it set it first, or the version moved on
        {"id": {"S": gid}},
        "SET manifest_total = :n, manifest_key = :key REMOVE manifest_error",
        "version = :v AND attribute_not_exists(manifest_total)",
        {":n": {"N": str(len(entries))}, ":key": {"S": trigger.key}, ":v": {"N": str(state.version)}},
    )
    # The objects that landed before it: counted by every delivery of the manifest (each entry once: `flip`),
    # so a reader that failed after writing the total leaves nothing uncounted.
    parts = {member_id(PART_PREFIX, gid, entry.url): entry for entry in entries}
    for landed in gates._batch_get(list(parts)):
        entry = parts[landed["id"]["S"]]
        size = int(landed.get("size", {}).get("N", "0"))
        if matches(entry, manifest.check, size, landed.get("etag", {}).get("S", "")):
            flip(gates, scope, entry.url, gid, state.version)


def missing(
    gates: GateRequests, objects: Objects | None, state: GateState, gate: Gate, *, bucket: str, limit: int = 20
) -> list[str]:
    """The listed keys and manifest entries of `state`'s version that have not landed (at most `limit`
    of each), for the timeout report: read once, when it is made."""
    gid = gate_id(state.route, state.partition)
    wanted = {
        member_id(PART_PREFIX, gid, _url(item.fill(state.partition, bucket), bucket)): item.fill(
            state.partition, bucket
        )
        for item in gate.keys
    }
    here = {item["id"]["S"] for item in gates._batch_get(list(wanted)) if item["version"]["N"] == str(state.version)}
    missing = [written for key, written in wanted.items() if key not in here][:limit]
    if gate.manifest is None or state.manifest_total < 0 or not state.manifest_key or objects is None:
        return missing
    try:
        entries = parse_manifest(
            objects.read(bucket, state.manifest_key),
            gate.manifest.format,
            bucket=bucket,
            manifest_key=state.manifest_key,
        )
    except (ManifestError, GatesUnavailable):
        return [*missing, f"(manifest s3://{bucket}/{state.manifest_key} could not be read again)"]
    scope = f"{gid}#v{state.version}"
    got = {member_id(GOT_PREFIX, scope, entry.url): entry.url for entry in entries}
    arrived = {item["id"]["S"] for item in gates._batch_get(list(got))}
    return missing + [url for key, url in got.items() if key not in arrived][:limit]


def flip(gates: GateRequests, scope: str, url: str, gid: str, version: int) -> bool:
    """One manifest entry found: counted once, with its `got#` item in the same transaction (the need's
    `arrived` is only a hint: a later read of the manifest writes the need again). A conflict with another
    transaction is tried again; True when this call counted it."""
    now = gates.clock()
    need = {
        "TableName": gates.table,
        "Key": {"id": {"S": member_id(NEED_PREFIX, scope, url)}},
        "UpdateExpression": "SET arrived = :now",
        "ConditionExpression": "attribute_exists(id)",
        "ExpressionAttributeValues": {":now": {"S": iso(datetime.fromtimestamp(now, UTC))}},
    }
    got = {
        "TableName": gates.table,
        "Item": {"id": {"S": member_id(GOT_PREFIX, scope, url)}, "expiration": expires(KEEP_SECONDS, now)},
        "ConditionExpression": "attribute_not_exists(id)",
    }
    gate = {
        "TableName": gates.table,
        "Key": {"id": {"S": gid}},
        "UpdateExpression": "ADD manifest_present :one",
        "ConditionExpression": "version = :v",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":v": {"N": str(version)}},
    }
    for _ in range(MAX_TRIES):
        reasons = gates._transact([{"Update": need}, {"Put": got}, {"Update": gate}], "count a manifest entry")
        if reasons is None:
            return True
        if "ConditionalCheckFailed" in reasons or "TransactionConflict" not in reasons:
            return False  # counted already, not listed, or the version moved on
    raise GatesUnavailable(f"the gate {gid} stayed too busy to count {url}")


def _url(key: str, bucket: str) -> str:
    """A filled key template as its part item names it: `s3://bucket/key` (a template may name another bucket)."""
    return key if key.startswith("s3://") else f"s3://{bucket}/{key}"


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
