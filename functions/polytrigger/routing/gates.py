"""Gates: an S3 route that starts its syncs once per *partition*, when the partition is complete.

The partition is what the route's key glob's placeholders took (`exports/orders/dt={date}/**` →
`date=2026-12-06`, `Glob.partition`). A `gate:` block says when a partition is complete; every
condition given must hold (and at least one is needed):

    gate:
      marker: "exports/orders/dt={date}/_SUCCESS"          # this object has landed
      keys: ["exports/orders/dt={date}/part-000.parquet",    # each of these has landed
             "s3://acme-refs/refs/{date}.csv"]               # (another bucket: s3://bucket/key)
      manifest: {key: "vendor/{date}/manifest.json", format: json, check: [size, etag]}
      at_least: {objects: 40, bytes: 1GB}                    # this much has landed in the partition
      quiet: 10m                                             # and nothing new for this long
      timeout: 24h                                           # incomplete this long after its first object: reported

Key templates use only the glob's placeholders and are filled from a partition by `fill`. This module
is the routes-file side (the model, its parsing, its description for `explain` and `validate`); the
`gating` package acts on it at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from polytrigger.routing.durations import duration_field, say
from polytrigger.routing.fields import is_bucket_name
from polytrigger.routing.globs import Glob, Partition, placeholders, split_template
from polytrigger.routing.suggest import close_to

GATE_FIELDS = {"marker", "keys", "manifest", "at_least", "quiet", "timeout"}
CONDITIONS = ("marker", "keys", "manifest", "at_least", "quiet")  # timeout is none: it only reports
MANIFEST_FORMATS = ("json", "lines", "csv")
MANIFEST_CHECKS = ("size", "etag")
DEFAULT_TIMEOUT = 86400
MIN_QUIET, MAX_QUIET = 60, 86400
MIN_TIMEOUT, MAX_TIMEOUT = 60, 7 * 86400
GATE_AT_RUN_TIME = "starts once per complete partition: the object that completes it starts the syncs"
MAX_KEYS = 100  # each expected key is one item at run time: a long list belongs in a manifest
S3_URL = "s3://"
_BYTES = re.compile(r"^\s*(\d{1,15})\s*([A-Za-z]*)\s*$")
BYTE_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
ManifestFormat = Literal["json", "lines", "csv"]


@dataclass(frozen=True, slots=True)
class KeyTemplate:
    """A key template (`exports/dt={date}/_SUCCESS`), in the route's bucket ("") or another one."""

    template: str
    bucket: str = ""

    @property
    def written(self) -> str:
        """As the routes file has it: `refs/{date}.csv` or `s3://bucket/refs/{date}.csv`."""
        return f"{S3_URL}{self.bucket}/{self.template}" if self.bucket else self.template

    def fill(self, partition: Partition, route_bucket: str = "") -> str:
        """The key for a partition: `key`, or `s3://bucket/key` when the bucket is another one."""
        key = fill(self.template, partition)
        return f"{S3_URL}{self.bucket}/{key}" if self.bucket and self.bucket != route_bucket else key


@dataclass(frozen=True, slots=True)
class Manifest:
    """An object listing the partition's keys; `check`: also compare each listed object's size/ETag."""

    key: str
    format: ManifestFormat = "json"
    check: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gate:
    marker: str = ""
    keys: tuple[KeyTemplate, ...] = ()
    manifest: Manifest | None = None
    objects: int = 0  # at_least.objects (0: no such condition)
    bytes: int = 0  # at_least.bytes
    quiet: int = 0  # seconds without a new object in the partition (0: no such condition)
    timeout: int = DEFAULT_TIMEOUT  # seconds after the partition's first object: reported once if incomplete

    def waits_for(self, partition: Partition | None = None, bucket: str = "") -> str:
        """`marker exports/dt=2026-12-06/_SUCCESS, at least 40 objects, quiet 10 minutes`: the conditions,
        filled from `partition` (None: the templates as written)."""

        def key(template: str) -> str:
            return template if partition is None else fill(template, partition)

        said: list[str] = []
        if self.marker:
            said.append(f"marker {key(self.marker)}")
        if self.keys:
            listed = [item.fill(partition, bucket) if partition is not None else item.written for item in self.keys]
            said.append(f"key{'s' if len(listed) > 1 else ''} {', '.join(listed)}")
        if self.manifest is not None:
            checked = f", checking {' and '.join(self.manifest.check)}" if self.manifest.check else ""
            said.append(f"every key listed in manifest {key(self.manifest.key)} ({self.manifest.format}{checked})")
        if self.objects:
            said.append(f"at least {self.objects} object{'s' if self.objects != 1 else ''}")
        if self.bytes:
            said.append(f"at least {say_bytes(self.bytes)}")
        if self.quiet:
            said.append(f"quiet {say(self.quiet)}")
        return ", ".join(said)


class TemplateError(ValueError):
    """A template names a placeholder the partition has no value for."""


def fill(template: str, partition: Partition) -> str:
    """`exports/dt={date}/_SUCCESS` with `(("date", "2026-12-06"),)` → `exports/dt=2026-12-06/_SUCCESS`.

    Pure; `{{` and `}}` give literal braces, as in globs. Raise TemplateError for a placeholder without a
    value (parsing refuses such templates, so a validated gate never does), ValueError for a malformed one.
    """
    values = dict(partition)
    out: list[str] = []
    for piece in split_template(template):
        if isinstance(piece, tuple):
            if piece[0] not in values:
                raise TemplateError(f"no value for placeholder {{{piece[0]}}}")
            out.append(values[piece[0]])
        else:
            out.append(piece)
    return "".join(out)


def say_bytes(count: int) -> str:
    """`1000000000` → `1 GB`, `1073741824` → `1 GiB`: the largest unit that divides it exactly."""
    for unit in ("TB", "TiB", "GB", "GiB", "MB", "MiB", "KB", "KiB"):
        size = BYTE_UNITS[unit.lower()]
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes" if count != 1 else "1 byte"


def parse_gate(raw: Any, glob: Glob | None, key: str, problems: list[str]) -> Gate | None:
    """`gate:` of an S3 route whose key glob is `glob` (None: already refused), or None with problems."""
    if not isinstance(raw, Mapping):
        problems.append(f"gate: must be a mapping of {', '.join(CONDITIONS)} and timeout (got {raw!r})")
        return None
    before = len(problems)
    unknown = sorted(set(map(str, raw)) - GATE_FIELDS)
    for field in unknown:
        meant = close_to(field, sorted(GATE_FIELDS))
        problems.append(f"gate.{field}: unknown field" + (f"; did you mean {meant}?" if meant else ""))
    if not any(field in raw for field in CONDITIONS):
        problems.append(f"gate: needs at least one condition of completion: {', '.join(CONDITIONS)}")
    if glob is not None and not glob.names:
        problems.append(
            f"gate: the s3.key glob has no placeholder, so every key is one partition; name the partition"
            f" with one, such as exports/orders/dt={{date}}/** (got {key!r})"
        )
    names = glob.names if glob is not None else None
    check = _Templates(names, key, problems)
    marker = check.template(raw.get("marker"), "gate.marker") if "marker" in raw else ""
    keys = _keys(raw["keys"], check, problems) if "keys" in raw else ()
    manifest = _manifest(raw["manifest"], check, problems) if "manifest" in raw else None
    objects, size = _at_least(raw["at_least"], problems) if "at_least" in raw else (0, 0)
    quiet = 0
    if "quiet" in raw:
        quiet_duration = duration_field(raw["quiet"], "gate.quiet", problems, low=MIN_QUIET, high=MAX_QUIET)
        quiet = quiet_duration.seconds if quiet_duration is not None else 0
    timeout = DEFAULT_TIMEOUT
    if "timeout" in raw:
        timeout_duration = duration_field(raw["timeout"], "gate.timeout", problems, low=MIN_TIMEOUT, high=MAX_TIMEOUT)
        timeout = timeout_duration.seconds if timeout_duration is not None else DEFAULT_TIMEOUT
    if quiet and timeout <= quiet:
        problems.append(
            f"gate.timeout: must be longer than gate.quiet ({say(quiet)}), or no partition could complete"
            f" (got {raw.get('timeout')!r})"
        )
    if glob is not None and names:
        for field, template in (("gate.marker", marker), ("gate.manifest.key", manifest.key if manifest else "")):
            if template and len(problems) == before:
                _reaches(template, glob, field, key, problems)
    if len(problems) > before:
        return None
    return Gate(
        marker=marker or "",
        keys=keys,
        manifest=manifest,
        objects=objects,
        bytes=size,
        quiet=quiet,
        timeout=timeout,
    )


class _Templates:
    """Checks key templates against the glob's placeholders (`names`; None: the glob was refused)."""

    def __init__(self, names: Sequence[str] | None, key: str, problems: list[str]) -> None:
        self.names, self.key, self.problems = names, key, problems

    def template(self, value: Any, field: str) -> str:
        """`value` as a key template of `field`, or "" with one problem."""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(
                f"{field}: must be a key template such as exports/dt={{date}}/_SUCCESS (got {value!r})"
            )
            return ""
        if value.startswith("/"):
            self.problems.append(f"{field}: S3 keys never start with '/'; drop the leading / (got {value!r})")
            return ""
        if value.startswith(S3_URL):
            self.problems.append(f"{field}: must be a key in the route's bucket, not an s3:// URL (got {value!r})")
            return ""
        try:
            pieces = split_template(value)
        except ValueError as error:
            self.problems.append(f"{field}: {error} (got {value!r})")
            return ""
        if self.names is None:
            return value
        for piece in pieces:
            if isinstance(piece, tuple) and piece[0] not in self.names:
                meant = close_to(piece[0], self.names)
                hint = f"; did you mean {{{meant}}}?" if meant else ""
                defined = ", ".join(f"{{{name}}}" for name in self.names) or "none"
                self.problems.append(
                    f"{field}: placeholder {{{piece[0]}}} is not in s3.key {self.key!r} (its placeholders: {defined})"
                    f"{hint} (got {value!r})"
                )
                return ""
        return value


def _keys(raw: Any, check: _Templates, problems: list[str]) -> tuple[KeyTemplate, ...]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_KEYS:
        problems.append(
            f"gate.keys: must be a list of 1 to {MAX_KEYS} key templates (a longer list belongs in a manifest)"
            f" (got {raw!r})"[:300]
        )
        return ()
    keys: list[KeyTemplate] = []
    for index, item in enumerate(raw):
        field = f"gate.keys[{index}]"
        bucket, written = "", item
        if isinstance(item, str) and item.startswith(S3_URL):
            bucket, _, written = item[len(S3_URL) :].partition("/")
            if not is_bucket_name(bucket):
                problems.append(f"{field}: s3://BUCKET/KEY needs an S3 bucket name (got {item!r})")
                continue
        template = check.template(written, field)
        if not template:
            continue
        unnamed = [name for name in check.names or () if name not in placeholders(template)]
        if unnamed:
            problems.append(
                f"{field}: names no {', '.join(f'{{{name}}}' for name in unnamed)}, so a key landing there could"
                f" belong to any partition; use every placeholder of s3.key (got {item!r})"
            )
            continue
        found = KeyTemplate(template, bucket)
        if found in keys:
            problems.append(f"{field}: {template!r} is listed twice")
            continue
        keys.append(found)
    return tuple(keys)


def _manifest(raw: Any, check: _Templates, problems: list[str]) -> Manifest | None:
    if not isinstance(raw, Mapping) or "key" not in raw:
        problems.append(
            f"gate.manifest: must be a mapping {{key: TEMPLATE, format: {' | '.join(MANIFEST_FORMATS)},"
            f" check: [size, etag]}} (got {raw!r})"
        )
        return None
    for field in sorted(set(map(str, raw)) - {"key", "format", "check"}):
        meant = close_to(field, ["key", "format", "check"])
        problems.append(f"gate.manifest.{field}: unknown field" + (f"; did you mean {meant}?" if meant else ""))
    key = check.template(raw["key"], "gate.manifest.key")
    form = raw.get("format", "json")
    if form not in MANIFEST_FORMATS:
        meant = close_to(form, MANIFEST_FORMATS, {"jsonl": "lines", "ndjson": "lines", "txt": "lines", "text": "lines"})
        hint = f"; did you mean {meant}?" if meant else ""
        problems.append(f"gate.manifest.format: must be one of {', '.join(MANIFEST_FORMATS)} (got {form!r}){hint}")
    checks = raw.get("check", [])
    checks = [checks] if isinstance(checks, str) else checks
    if (
        not isinstance(checks, list)
        or any(item not in MANIFEST_CHECKS for item in checks)
        or len(set(checks)) != len(checks)
    ):
        problems.append(f"gate.manifest.check: must be a list of size and/or etag (got {raw.get('check')!r})")
        checks = []
    if not key:
        return None
    return Manifest(
        key=key, format=cast(ManifestFormat, form), check=tuple(item for item in MANIFEST_CHECKS if item in checks)
    )


def _at_least(raw: Any, problems: list[str]) -> tuple[int, int]:
    if not isinstance(raw, Mapping) or not raw or set(map(str, raw)) - {"objects", "bytes"}:
        problems.append(
            f"gate.at_least: must be a mapping of objects and/or bytes, such as {{objects: 40, bytes: 1GB}} (got {raw!r})"
        )
        return 0, 0
    objects = raw.get("objects", 0)
    if "objects" in raw and (isinstance(objects, bool) or not isinstance(objects, int) or objects < 1):
        problems.append(f"gate.at_least.objects: must be a whole number of at least 1 (got {objects!r})")
        objects = 0
    size = read_bytes(raw["bytes"]) if "bytes" in raw else 0
    if size is None or ("bytes" in raw and size < 1):
        problems.append(
            "gate.at_least.bytes: must be a size of at least 1 byte, such as 500MB, 1GB, 2GiB or a number of bytes"
            f" (got {raw['bytes']!r})"
        )
        size = 0
    return objects, size or 0


def read_bytes(value: Any) -> int | None:
    """`1GB` → 10**9, `2GiB` → 2 * 2**30, `1024` → 1024; None when it is no size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or (match := _BYTES.fullmatch(value)) is None:
        return None
    unit = BYTE_UNITS.get((match.group(2) or "b").lower())
    return int(match.group(1)) * unit if unit is not None else None


def _reaches(template: str, glob: Glob, field: str, key: str, problems: list[str]) -> None:
    """A marker or manifest is seen when it lands, as an event of this route: its key must match the route's
    glob, in the same partition. Checked with a sample partition (each placeholder a distinct short value)."""
    sample = tuple((name, f"v{index}") for index, name in enumerate(glob.names))
    filled = fill(template, sample)
    found = glob.partition(filled)
    if found is None:
        problems.append(
            f"{field}: its key does not match s3.key {key!r}, so its landing would never reach this route;"
            f" widen s3.key (such as a trailing /**) (got {template!r})"
        )
    elif found != sample:
        problems.append(
            f"{field}: its key matches s3.key {key!r} in another partition than its own; use each placeholder"
            f" where s3.key has it (got {template!r})"
        )
