"""Properties of the routes file under hostile input: valid Routes or one `RoutesError`, never anything else.

A routes document is mutated at random (unknown fields at every level, duplicate routes and syncs, bad
globs, wrong types, non-UUID ids such as `../../api/webhooks`, trailing newlines, unicode) and YAML text is
fuzzed (random bytes, truncated files, values PyYAML itself chokes on). Whatever is accepted is safe to use:
every sync id is a canonical lower-case UUID (so no URL built from it leaves `/api/syncs/{id}`), and
matching any key against any accepted glob never raises.
"""

from __future__ import annotations

import copy
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polytrigger.core.triggers import Trigger
from polytrigger.routing import Route, Routes, RoutesError, load_routes, parse_routes
from polytrigger.routing.globs import compile_glob
from polytrigger.settings import BUNDLED_ROUTES
from tests.strategies import paths

VALID_TEXT = BUNDLED_ROUTES.read_text(encoding="utf-8")
VALID: dict[str, Any] = yaml.safe_load(VALID_TEXT)
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
WHEN = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
UUID_TEXT = "248df4b7-aa70-47b8-a036-33ac447e668d"

# Ids that must never reach a URL: traversal, query strings, near-UUIDs, look-alike digits and letters.
HOSTILE_IDS = [
    "../../api/webhooks",
    f"{UUID_TEXT}/../x",
    f"{UUID_TEXT}/../../webhooks",
    f"{UUID_TEXT}?x=1",
    f"{UUID_TEXT}#frag",
    f"{UUID_TEXT}\n",
    f"{UUID_TEXT}\r\n",
    f"\n{UUID_TEXT}",
    f" {UUID_TEXT}",
    f"{UUID_TEXT}%2F..",
    f"{{{UUID_TEXT}}}",
    f"urn:uuid:{UUID_TEXT}",
    UUID_TEXT.replace("-", ""),
    UUID_TEXT.replace("-", "/"),
    UUID_TEXT.replace("4", "\u0664"),  # ARABIC-INDIC DIGIT FOUR: a digit to \d, not to [0-9]
    UUID_TEXT.replace("a", "\uff41"),  # FULLWIDTH LATIN SMALL LETTER A
    UUID_TEXT[:-1],
    UUID_TEXT + "0",
    "",
    "%2e%2e%2fapi%2fwebhooks",
    "..",
]
# Globs that are rejected, or legal but awkward (regex metacharacters must stay literal).
GLOBS = [
    "**", "*", "?", "orders/**/*.csv", "orders/*.csv", "a**", "**b", "a/***/b", "[abc]", "a]", "",
    "orders/**", "**/x", "(a|b)", "a.b+c$^", "\\", "%2F", "a+b", "../**", "\x00", "*\n*", "ü/😀/*",
]  # fmt: skip

unicode_text = st.text(max_size=40)
hostile_text = (
    unicode_text
    | st.sampled_from(HOSTILE_IDS)
    | st.sampled_from(GLOBS)
    | st.text(alphabet="%+./*?[]\\\x00\n\t\r \u202eü😀-_", max_size=30)
    | st.builds(lambda s: s + "\n", st.sampled_from(["nightly", "orders-landing", "acme-landing", UUID_TEXT]))
    | st.builds(lambda u: str(u).upper(), st.uuids())
    | st.builds(str, st.uuids())
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | hostile_text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=10,
)
FIELD_NAMES = [
    "name", "s3", "schedule", "action", "syncs", "bucket", "key", "events", "id", "type", "resync", "test",
    "identities", "fetch_mode", "resync_mode", "schemas", "activate_first", "routes", "extra", "Name", "id ",
]  # fmt: skip
field_names = st.sampled_from(FIELD_NAMES) | unicode_text


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """The bundled routes with 1-4 hostile edits, each anywhere in the document."""
    document: Any = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths(document)))
        target = _at(document, path)
        how = draw(st.sampled_from(["replace", "delete", "unknown field", "duplicate", "newline", "rename", "copy"]))
        if how == "copy" and isinstance(document, dict) and isinstance(document.get("routes"), list):
            routes = document["routes"]  # a second route of the same name, perhaps changed by a later edit
            if routes:
                routes.append(copy.deepcopy(routes[draw(st.integers(min_value=0, max_value=len(routes) - 1))]))
        elif how == "replace" or (not path and how in ("delete", "newline", "rename")):
            replacement = draw(values)
            if not path:
                document = replacement
            else:
                _at(document, path[:-1])[path[-1]] = replacement
        elif how == "delete":
            del _at(document, path[:-1])[path[-1]]
        elif how == "unknown field" and isinstance(target, dict):
            target[draw(field_names)] = draw(values)
        elif how == "duplicate" and isinstance(target, list) and target:
            # a duplicate route (same name) or a duplicate sync in one route
            target.append(copy.deepcopy(target[draw(st.integers(min_value=0, max_value=len(target) - 1))]))
        elif how == "newline" and isinstance(target, str):
            _at(document, path[:-1])[path[-1]] = target + draw(st.sampled_from(["\n", "\r\n", " ", "\x00"]))
        elif how == "rename" and isinstance(_at(document, path[:-1]), dict):
            parent = _at(document, path[:-1])
            parent[draw(field_names)] = parent.pop(path[-1])
    return document


def assert_usable(routes: Routes) -> None:
    """Accepted routes are safe to act on: canonical ids, valid names, one trigger, a compiled glob."""
    assert isinstance(routes, Routes)
    names = [route.name for route in routes.routes]
    assert len(names) == len(set(names))
    for route in routes.routes:
        assert NAME.fullmatch(route.name)
        assert route.action in ("start", "activate", "deactivate")
        assert route.syncs
        assert [bool(route.schedule), bool(route.bucket), bool(route.upstream)].count(True) == 1  # one trigger
        if route.bucket:
            assert route.key_pattern is not None
            assert route.events
            assert route.events <= {"created", "deleted"}
        targets = [(sync.type, sync.id) for sync in route.syncs]
        assert len(targets) == len(set(targets))
        for sync in route.syncs:
            assert CANONICAL_UUID.fullmatch(sync.id), sync.id
            assert str(uuid.UUID(sync.id)) == sync.id
            assert sync.type in ("model", "bulk")


ITEM = re.compile(r"(route '|routes\[\d+\]: |unknown top-level field)")


def assert_clear(error: RoutesError) -> None:
    """One message that says which file is wrong and, for each problem, which route and field."""
    message = str(error)
    assert message.startswith("routes file ")
    header = message.split("\n", 1)[0]
    counted = re.fullmatch(r"routes file .* is invalid \((\d+) problems?\):", header)
    if counted is None:  # the whole document is unusable: the message says what the top must be
        assert "'routes'" in message
        return
    items = message.split("\n  - ")[1:]
    # every problem starts with its route (by name, or by position when it has no usable name) and a field
    assert sum(1 for item in items if ITEM.match(item) and ": " in item) == int(counted.group(1)), message


def parse(document: Any) -> None:
    try:
        routes = parse_routes(document, source="hostile.yaml")
    except RoutesError as error:
        assert_clear(error)
    else:
        assert_usable(routes)
        for route in routes.routes:
            for key in ("", "orders/x.csv", "../../api/webhooks", "a\x00b", "%2F+", "ü" * 2000):
                route.matches(s3(key, bucket=route.bucket or "acme-landing"))
            route.matches(Trigger.scheduled(schedule=route.schedule or "nightly", time=WHEN))


def s3(key: str, *, bucket: str = "acme-landing", event: str = "created") -> Trigger:
    return Trigger.s3(bucket=bucket, key=key, event=event, sequencer="0055AED6DCD90281E5", time=WHEN)  # type: ignore[arg-type]


# -- parse_routes --------------------------------------------------------------------------------


def test_the_unmutated_document_is_valid() -> None:
    routes = parse_routes(copy.deepcopy(VALID))
    assert_usable(routes)
    assert len(routes) == len(VALID["routes"])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=mutated_documents())
def test_mutated_documents_are_valid_routes_or_one_routes_error(document: Any) -> None:
    parse(document)


@settings(max_examples=200, deadline=None)
@given(document=values)
def test_random_documents_are_valid_routes_or_one_routes_error(document: Any) -> None:
    parse(document)
    parse({"routes": document})
    parse({"routes": [document]})


def route_with(**fields: Any) -> dict[str, Any]:
    route: dict[str, Any] = {"name": "good", "schedule": "nightly", "syncs": [{"id": UUID_TEXT}]}
    route.update(fields)
    return {"routes": [route]}


@pytest.mark.parametrize("sync_id", HOSTILE_IDS)
def test_a_non_uuid_sync_id_is_refused_naming_route_and_field(sync_id: str) -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes(route_with(syncs=[{"id": sync_id}]))
    assert f"route 'good': syncs[0].id: must be a sync UUID (got {sync_id!r})" in str(raised.value)


@settings(max_examples=300, deadline=None)
@given(
    sync_id=hostile_text | st.builds(lambda u, pre, post: pre + str(u) + post, st.uuids(), unicode_text, unicode_text)
)
@example(sync_id="../../api/webhooks")
@example(sync_id=f"{UUID_TEXT}/../x")
@example(sync_id=UUID_TEXT.upper())
def test_any_accepted_sync_id_is_a_canonical_lower_case_uuid(sync_id: str) -> None:
    for sync in ({"id": sync_id}, {"id": sync_id, "type": "bulk"}):
        try:
            routes = parse_routes(route_with(syncs=[sync]))
        except RoutesError as error:
            refused = str(error)
        else:
            refused = ""
        if refused:
            assert "route 'good': syncs[0].id: must be a sync UUID" in refused
            continue
        [route] = routes.routes
        [target] = route.syncs
        assert CANONICAL_UUID.fullmatch(target.id)
        assert target.id == str(uuid.UUID(sync_id))  # the same UUID, only its case normalised


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (route_with(colour="red"), "route 'good': unknown field(s): colour"),
        (route_with(syncs=[{"id": UUID_TEXT, "fast": True}]), "route 'good': syncs[0].fast: not an option"),
        (route_with(syncs=[{"id": UUID_TEXT}, {"id": UUID_TEXT.upper()}]), "route 'good': syncs[1].id: "),
        (route_with(schedule="nightly\n"), "route 'good': schedule: must be a schedule name"),
        (route_with(name="göod"), "route 'göod': name: required"),  # names are ASCII; the raw name is echoed
        (route_with(name=7), "routes[0]: name: required"),
        (route_with(action=["start"]), "route 'good': action: must be one of"),
        (route_with(syncs={"id": UUID_TEXT}), "route 'good': syncs: must be a non-empty list"),
    ],
)
def test_named_problems(route: dict[str, Any], expected: str) -> None:
    with pytest.raises(RoutesError) as raised:
        parse_routes(route)
    assert expected in str(raised.value)
    assert_clear(raised.value)


def test_a_duplicate_route_names_the_second_one() -> None:
    document = copy.deepcopy(VALID)
    document["routes"].append(copy.deepcopy(document["routes"][0]))
    with pytest.raises(RoutesError) as raised:
        parse_routes(document)
    assert "route 'orders-landing': name: 'orders-landing' is used by an earlier route" in str(raised.value)
    assert_clear(raised.value)


# -- globs ----------------------------------------------------------------------------------------

globs = st.sampled_from(GLOBS) | st.text(alphabet="ab/*?.%+\\()[]$^\x00\nü", max_size=20) | st.text(max_size=20)
key_text = (
    st.text(max_size=100)
    | st.text(alphabet="ab/.%+\x00\n\r\tü😀", max_size=60)
    | st.sampled_from(["", "..", "../../api/webhooks", "orders/../x.csv", "ü" * 2000, "a/" * 500 + "x.csv"])
)


@settings(max_examples=500, deadline=None)
@given(glob=globs, keys=st.lists(key_text, min_size=1, max_size=5))
def test_glob_matching_never_raises_for_any_key(glob: str, keys: list[str]) -> None:
    try:
        pattern = compile_glob(glob)
    except ValueError as error:
        refused = str(error)
    else:
        refused = ""
    if refused:  # refused with a reason, or compiled
        return
    for key in keys:
        matched = pattern.fullmatch(key) is not None
        if not any(ch in glob for ch in "*?"):
            assert matched == (key == glob)  # a literal glob is the key itself, metacharacters and all
        if "**" not in glob and matched:
            assert key.count("/") == glob.count("/")  # * and ? never cross a folder


literal_parts = st.text(alphabet="ab./%+\\()$^\x00\nü", min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(literal_parts, min_size=2, max_size=4), wildcard=st.sampled_from(["*", "?"]), data=st.data())
def test_star_and_question_mark_never_cross_a_folder(parts: list[str], wildcard: str, data: st.DataObject) -> None:
    """`a*b` (or `a?b`) with the wildcard filled in: a match exactly when no filling holds a '/'."""
    low, high = (1, 1) if wildcard == "?" else (0, 5)  # ? is exactly one character, * any number
    fills = [data.draw(st.text(alphabet="ab/.ü\n", min_size=low, max_size=high)) for _ in parts[1:]]
    glob = wildcard.join(parts)
    key = parts[0] + "".join(fill + part for fill, part in zip(fills, parts[1:], strict=True))
    matched = compile_glob(glob).fullmatch(key) is not None
    assert matched == all("/" not in fill for fill in fills), (glob, key)


@settings(max_examples=300, deadline=None)
@given(glob=globs, keys=st.lists(key_text, min_size=1, max_size=5), event=st.sampled_from(["created", "deleted"]))
def test_routes_with_any_glob_match_any_key_without_raising(glob: str, keys: list[str], event: str) -> None:
    document = {"routes": [{"name": "r", "s3": {"bucket": "acme-landing", "key": glob}, "syncs": [{"id": UUID_TEXT}]}]}
    try:
        routes = parse_routes(document)
    except RoutesError as error:
        refused = str(error)
    else:
        refused = ""
    if refused:
        assert "route 'r': s3.key: " in refused
        return
    [route] = routes.routes
    assert isinstance(route, Route)
    for key in keys:
        actions = routes.actions_for([s3(key, event=event)])
        assert all(action.sync.id == UUID_TEXT for action in actions)
        assert not routes.actions_for([s3(key, bucket="other-bucket", event=event)])


# -- load_routes: YAML text ------------------------------------------------------------------------

# Text PyYAML's SafeLoader fails on with something other than a YAMLError (it validates dates, !!int,
# !!bool, ... with plain Python calls) or that nests deeper than its recursive composer can go.
NASTY_YAML = [
    "routes:\n  - name: x\n    schedule: 2026-13-01\n",
    "routes: 2026-02-30 10:00:00\n",
    "routes: 2026-02-03 25:00:00\n",
    "routes: !!int abc\n",
    "routes: !!float nope\n",
    "routes: !!bool maybe\n",
    "routes: !!timestamp 2026-02-30\n",
    "routes: !!binary '!!'\n",
    "routes: !!python/object:os.system {}\n",
    "routes: &a [*a]\n",
    "routes: [" * 3000,
    "routes:\n" + "- " * 3000 + "x\n",
    "\ufeffroutes: []\n",
    "routes: []\n\x00",
    "routes: {a: b, a: c}\n",
    "? [a, b]\n: c\n",
    "routes:\n\t- name: x\n",
    "%YAML 9.9\n---\nroutes: []\n",
    "--- a\n--- b\n",
]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "routes.yaml"


def load(scratch: Path, content: bytes) -> None:
    scratch.write_bytes(content)
    try:
        routes = load_routes(scratch)
    except RoutesError as error:
        message = str(error)
        assert message.startswith(f"routes file {scratch}")
        assert "Traceback" not in message
    else:
        assert_usable(routes)


@pytest.mark.parametrize("text", NASTY_YAML)
def test_yaml_that_breaks_the_loader_is_a_routes_error(scratch: Path, text: str) -> None:
    load(scratch, text.encode("utf-8"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_random_bytes_are_a_routes_error(scratch: Path, content: bytes) -> None:
    load(scratch, content)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=len(VALID_TEXT)),
    insert=st.sampled_from(["", "\n", "\t", ":", "- ", "[", "{", "'", '"', "&a ", "*a", "!!int ", "2026-13-01", "\x00"])
    | st.text(max_size=5),
    at=st.integers(min_value=0, max_value=len(VALID_TEXT)),
)
def test_truncated_or_spliced_yaml_is_routes_or_a_routes_error(scratch: Path, cut: int, insert: str, at: int) -> None:
    truncated = VALID_TEXT[:cut]
    spliced = VALID_TEXT[:at] + insert + VALID_TEXT[at:]
    load(scratch, truncated.encode("utf-8"))
    load(scratch, spliced.encode("utf-8"))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(document=mutated_documents(), style=st.sampled_from(["block", "flow"]))
def test_mutated_documents_through_yaml_are_routes_or_a_routes_error(scratch: Path, document: Any, style: str) -> None:
    text = yaml.safe_dump(document, default_flow_style=style == "flow", allow_unicode=True)
    load(scratch, text.encode("utf-8"))
