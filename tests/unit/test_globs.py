"""Key globs: `*` and `?` stay within a segment, `**` spans segments, everything else is literal."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.routing.globs import compile_glob, literal_prefix


def matches(pattern: str, key: str) -> bool:
    return compile_glob(pattern).fullmatch(key) is not None


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("orders/*.csv", "orders/a.csv", True),
        ("orders/*.csv", "orders/.csv", True),
        ("orders/*.csv", "orders/2026/a.csv", False),
        ("orders/*.csv", "orders/a.csv.bak", False),
        ("orders/*", "orders/", True),
        ("orders/*", "orders/x/y", False),
        ("*", "a", True),
        ("*", "a/b", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "abbc", False),
        ("a?c", "a/c", False),
        ("file-??.txt", "file-01.txt", True),
        ("file-??.txt", "file-1.txt", False),
    ],
)
def test_single_star_and_question_mark_stay_within_one_segment(pattern: str, key: str, expected: bool) -> None:
    assert matches(pattern, key) is expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("orders/a.csv", True),
        ("orders/2026/a.csv", True),
        ("orders/2026/11/a.csv", True),
        ("orders/2026/11/23/deep/a.csv", True),
        ("orders2/a.csv", False),
        ("orders/a.csv.bak", False),
        ("orders/2026/a.csv.bak", False),
        ("archive/orders/a.csv", False),
        ("orders/a.CSV", False),
        ("orders/2026/11/", False),
        ("orders.csv", False),
    ],
)
def test_double_star_spans_segments(key: str, expected: bool) -> None:
    assert matches("orders/**/*.csv", key) is expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("orders/a.csv", True),
        ("orders/2026/11/a.csv", True),
        ("orders/", True),
        ("orders", False),
        ("orders2/a.csv", False),
    ],
)
def test_trailing_double_star_matches_everything_below(key: str, expected: bool) -> None:
    assert matches("orders/**", key) is expected


@pytest.mark.parametrize("key", ["a", "a/b", "a/b/c.csv", "", "x y/ü/😀"])
def test_lone_double_star_matches_any_key(key: str) -> None:
    assert matches("**", key)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("x.csv", True), ("a/x.csv", True), ("a/b/c/x.csv", True), ("a/bx.csv", False), ("x.csvz", False)],
)
def test_leading_double_star(key: str, expected: bool) -> None:
    assert matches("**/x.csv", key) is expected


@pytest.mark.parametrize(
    ("pattern", "key", "near_miss"),
    [
        ("exports/(draft)/a.csv", "exports/(draft)/a.csv", "exports/draft/a.csv"),
        ("a+b.csv", "a+b.csv", "aab.csv"),
        ("a+b.csv", "a+b.csv", "a+bxcsv"),
        ("price$.csv", "price$.csv", "price.csv"),
        ("100%/report.csv", "100%/report.csv", "100/report.csv"),
        ("my file.csv", "my file.csv", "my%20file.csv"),
        ("my file.csv", "my file.csv", "my+file.csv"),
        ("données/été.csv", "données/été.csv", "donnees/ete.csv"),
        ("日本/😀.csv", "日本/😀.csv", "日本/x.csv"),
        ("a^b|c{1}\\d.csv", "a^b|c{1}\\d.csv", "ac.csv"),
        ("dot.csv", "dot.csv", "dotxcsv"),
    ],
)
def test_regex_metacharacters_in_keys_are_literal(pattern: str, key: str, near_miss: str) -> None:
    assert matches(pattern, key)
    assert not matches(pattern, near_miss)


def test_metacharacters_combine_with_wildcards() -> None:
    assert matches("exports/customers/*", "exports/customers/Jan 2026 (final) é+1.csv")
    assert not matches("exports/customers/*", "exports/customers/sub/Jan.csv")
    assert matches("a.b/**/(x)*.csv", "a.b/1/2/(x)y.csv")
    assert not matches("a.b/**/(x)*.csv", "axb/1/(x)y.csv")


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("[abc]", "character classes"),
        ("orders/[0-9]*.csv", "character classes"),
        ("a]b", "character classes"),
        ("***", "'***' is not a valid glob"),
        ("orders/***/x", "'***' is not a valid glob"),
        ("a**b", "** must stand alone between slashes"),
        ("orders/**x", "** must stand alone between slashes"),
        ("x**/y", "** must stand alone between slashes"),
        ("", "empty"),
    ],
)
def test_invalid_globs_raise_a_clear_value_error(pattern: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        compile_glob(pattern)


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("orders/**/*.csv", "orders/"),
        ("orders/a.csv", "orders/a.csv"),
        ("exports/customers/*", "exports/customers/"),
        ("file-??.txt", "file-"),
        ("**", ""),
        ("*.csv", ""),
        ("a+b(c)/x?", "a+b(c)/x"),
    ],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


@given(st.text(min_size=1, max_size=60).filter(lambda s: not any(ch in s for ch in "*?[]")))
def test_literal_prefix_of_a_glob_without_wildcards_is_the_whole_glob(key: str) -> None:
    assert literal_prefix(key) == key


_LITERAL_KEYS = st.text(min_size=1, max_size=80).filter(lambda s: not any(ch in s for ch in "*?[]"))


@given(_LITERAL_KEYS, st.text(min_size=1, max_size=5))
def test_a_glob_without_wildcards_matches_exactly_its_own_text(key: str, extra: str) -> None:
    pattern = compile_glob(key)
    assert pattern.fullmatch(key) is not None
    assert pattern.fullmatch(key + extra) is None
    assert pattern.fullmatch(extra + key) is None
    assert pattern.fullmatch(key[:-1]) is None


@given(_LITERAL_KEYS, st.integers(min_value=0), st.characters())
def test_a_glob_without_wildcards_rejects_any_one_character_change(key: str, where: int, other: str) -> None:
    index = where % len(key)
    if key[index] == other:
        return
    changed = key[:index] + other + key[index + 1 :]
    assert compile_glob(key).fullmatch(changed) is None
