"""Named placeholders in key globs: `{name}` is one or more characters within one segment, and a match
returns the key's partition (each placeholder's value, in glob order)."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from polytrigger.routing.globs import compile_glob, literal_prefix, literal_suffix, placeholders


@pytest.mark.parametrize(
    ("pattern", "key", "partition"),
    [
        ("exports/orders/dt={date}/**", "exports/orders/dt=2026-12-06/part-1.parquet", (("date", "2026-12-06"),)),
        ("exports/orders/dt={date}/**", "exports/orders/dt=2026-12-06/a/b.parquet", (("date", "2026-12-06"),)),
        (
            "vendor/{vendor}/{date}/manifest.json",
            "vendor/acme/2026-12-06/manifest.json",
            (("vendor", "acme"), ("date", "2026-12-06")),
        ),
        ("x/part-{n}.parquet", "x/part-007.parquet", (("n", "007"),)),
        ("**/dt={date}/_SUCCESS", "a/b/dt=1/_SUCCESS", (("date", "1"),)),
        ("{a}-{b}", "x-y-z", (("a", "x-y"), ("b", "z"))),  # the earlier placeholder takes the longest value
        ("orders/*.csv", "orders/a.csv", ()),  # no placeholder: an empty partition
    ],
)
def test_a_match_returns_the_partition(pattern: str, key: str, partition: tuple[tuple[str, str], ...]) -> None:
    glob = compile_glob(pattern)
    assert glob.fullmatch(key)
    assert glob.partition(key) == partition


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("exports/dt={date}/x", "exports/dt=2026/12/x"),  # never across `/`
        ("exports/dt={date}/x", "exports/dt=/x"),  # at least one character
        ("vendor/{vendor}/{date}/manifest.json", "vendor/acme/manifest.json"),
        ("x/part-{n}.parquet", "x/part-.parquet"),
        ("x/part-{n}.parquet", "y/part-1.parquet"),
    ],
)
def test_a_placeholder_matches_one_or_more_characters_within_one_segment(pattern: str, key: str) -> None:
    glob = compile_glob(pattern)
    assert glob.fullmatch(key) is None
    assert glob.partition(key) is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a/{date}/{date}.csv", "placeholder {date} appears twice"),
        ("a/{Date}/x", "placeholder {Date}: a name is a lower-case letter"),
        ("a/{vendor-id}/x", "placeholder {vendor-id}"),
        ("a/{csv,json}", "brace alternatives are not supported"),
        ("{a}/**/{b}/**", "at most one **"),
        ("a/{x}**/b", "** must stand alone"),
    ],
)
def test_malformed_placeholders_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_glob(pattern)


def test_braces_that_are_no_placeholder_stay_literal_and_doubled_braces_are_one() -> None:
    assert compile_glob("a/c{1}.csv").fullmatch("a/c{1}.csv")
    assert compile_glob("a/{{date}}.csv").fullmatch("a/{date}.csv")
    assert compile_glob("a/{{date}}.csv").partition("a/{date}.csv") == ()
    assert compile_glob("a/{{{date}}}.csv").partition("a/{x}.csv") == (("date", "x"),)
    assert placeholders("v/{vendor}/{{x}}/{date}") == ["vendor", "date"]


def test_the_literal_prefix_and_suffix_stop_at_a_placeholder() -> None:
    assert literal_prefix("exports/orders/dt={date}/**") == "exports/orders/dt="
    assert literal_suffix("vendor/{vendor}/{date}/manifest.json") == "/manifest.json"
    assert literal_prefix("a/{{b}}/c") == "a/{b}/c"


def test_matching_with_placeholders_does_the_work_of_the_same_glob_with_stars() -> None:
    """`{name}` is matched as `?*` by the linear matcher: no more comparisons than the starred glob."""
    key = "a/" + "x" * 500 + "/" + "/".join("s" * 20 for _ in range(40)) + "/_SUCCESS"
    for pattern, starred in [
        ("a/{date}/**/_SUCCESS", "a/?*/**/_SUCCESS"),
        ("a/{x}-{y}-{z}/**/s{n}s/_SUCCESS", "a/?*-?*-?*/**/s?*s/_SUCCESS"),
    ]:
        assert compile_glob(pattern).steps(key) == compile_glob(starred).steps(key)


def test_the_partition_is_read_segment_by_segment_never_across_folders() -> None:
    """Each placeholder segment faces one known key segment (after a `**`: counted from the end), so a long
    key with many folders is not searched for where the placeholders sit."""
    glob = compile_glob("**/{a}{b}{c}{d}.x/{e}-{f}.x")
    key = "/".join(["q"] * 400) + "/" + "A" * 300 + ".x/" + "B-" * 100 + "C.x"
    partition = glob.partition(key)
    assert partition is not None
    assert [name for name, _ in partition] == ["a", "b", "c", "d", "e", "f"]
    assert "".join(value for _, value in partition[:4]) == "A" * 300
    assert dict(partition)["f"] == "C"


# -- against a reference regex ----------------------------------------------------------------------

_SEGMENT_TEXT = st.text(alphabet="ab-=.", min_size=0, max_size=4)
_SEGMENT = st.lists(st.one_of(_SEGMENT_TEXT, st.just("{}")), min_size=1, max_size=4).map("".join)


def _numbered(pattern: str) -> str:
    """Each `{}` of a generated glob becomes a distinct placeholder name `{p0}`, `{p1}`, ..."""
    count = iter(range(100))
    return re.sub(r"\{\}", lambda _: f"{{p{next(count)}}}", pattern)


def _reference(pattern: str) -> re.Pattern[str]:
    out = []
    texts = pattern.split("/")
    for index, text in enumerate(texts):
        last = index == len(texts) - 1
        if text == "**":
            out.append(".*" if last else "(?:.*/)?")
            continue
        out.append(re.sub(r"\\\{p\d+\\\}", "([^/]+)", re.escape(text)))
        if not last:
            out.append("/")
    return re.compile("".join(out), re.DOTALL)


@given(
    st.lists(_SEGMENT, min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    st.lists(st.text(alphabet="ab-=./", max_size=6), min_size=1, max_size=5),
)
def test_placeholders_match_like_a_reference_regex(
    segments: list[str], spans: int | None, key_parts: list[str]
) -> None:
    texts = list(segments)
    if spans is not None:
        texts.insert(min(spans, len(texts)), "**")
    pattern = _numbered("/".join(texts))
    assume(pattern)
    key = "".join(key_parts)
    glob = compile_glob(pattern)
    expected = _reference(pattern).fullmatch(key)
    assert (glob.fullmatch(key) is not None) == (expected is not None), (pattern, key)
    if expected is not None:
        assert glob.partition(key) == tuple(zip(glob.names, expected.groups(), strict=True))
