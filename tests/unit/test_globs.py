"""Key globs: `*` and `?` stay within a segment, `**` spans segments, everything else is literal."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
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


@given(st.text(min_size=1, max_size=60).filter(lambda s: not any(ch in s for ch in "*?[]{}")))
def test_literal_prefix_of_a_glob_without_wildcards_is_the_whole_glob(key: str) -> None:
    assert literal_prefix(key) == key


# Braces are left out: `{name}` is a placeholder and `{{` a literal `{` (test_glob_placeholders.py).
_LITERAL_KEYS = st.text(min_size=1, max_size=80).filter(lambda s: not any(ch in s for ch in "*?[]{}"))


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


# -- matching does bounded work, whatever the glob and the key ------------------------------------
# Python's `re` backtracks: as a regex, `**/**/**/**/x` took 11 s on a 682-character key and
# `*a*a*a*a*a*a*b` grows like the key's length to the sixth power. A glob is matched segment by
# segment instead, each wildcard committing to the earliest place that works; `steps` counts the
# comparisons made (each one a scan of one key segment, never a backtracking search), so these
# tests bound the work without timing anything.

ADVERSARIAL: list[tuple[str, Callable[[int], str]]] = [
    ("**/**/**/**/x", lambda n: "a/" * n),  # as a regex, 11 s for n = 341 (682 characters)
    ("**/**/**/**/x", lambda n: "a/" * n + "y"),
    ("**/a/**/a/**/a/**/b", lambda n: "a/" * n + "c"),
    ("*a*a*a*a*a*a*b", lambda n: "a" * (2 * n)),
    ("*a*a*a*a*a*a*b", lambda n: "a" * (2 * n) + "c"),
    ("*a*a*a*a*a*a*b*", lambda n: "a" * (2 * n)),
    ("?*?*?*?*?*?*b", lambda n: "a" * (2 * n) + "c"),
    ("**/*a*a*a*b/**/*a*a*b/c", lambda n: ("a" * 20 + "/") * n),
    ("**/x/**", lambda n: "a/" * n),
]


def _pattern_size(glob: str) -> int:
    """Segments plus wildcards: what one key segment may be compared against at most."""
    return glob.count("/") + glob.count("*") + glob.count("?") + 1


@pytest.mark.parametrize(("glob", "key_of"), ADVERSARIAL)
def test_matching_work_is_bounded_by_key_segments_times_pattern_size(glob: str, key_of: Callable[[int], str]) -> None:
    compiled = compile_glob(glob)
    for n in (10, 341, 5000):
        key = key_of(n)
        steps = compiled.steps(key)
        assert steps <= (key.count("/") + 1) * _pattern_size(glob), (glob, n, steps)


@pytest.mark.parametrize(("glob", "key_of"), ADVERSARIAL)
def test_matching_work_grows_linearly_with_the_key(glob: str, key_of: Callable[[int], str]) -> None:
    compiled = compile_glob(glob)
    small, large = compiled.steps(key_of(500)), compiled.steps(key_of(1000))
    assert large <= 2 * small + _pattern_size(glob), (glob, small, large)


@pytest.mark.parametrize(
    ("glob", "key", "expected"),
    [
        ("**/**/**/**/x", "a/" * 5000, False),
        ("**/**/**/**/x", "a/" * 5000 + "x", True),
        ("*a*a*a*a*a*a*b", "a" * 10000, False),
        ("*a*a*a*a*a*a*b", "a" * 10000 + "b", True),
        ("*a*a*a*a*a*a*b", "xaxaxaxaxaxab", True),
        ("*a*a*a*a*a*a*b", "xaxaxaxaxab", False),
    ],
)
def test_an_adversarial_key_still_gets_the_right_answer(glob: str, key: str, expected: bool) -> None:
    compiled = compile_glob(glob)
    assert compiled.steps(key) <= (key.count("/") + 1) * _pattern_size(glob)  # first: a backtracking regex would hang
    assert (compiled.fullmatch(key) is not None) is expected


@pytest.mark.parametrize(
    ("stacked", "single"),
    [("**/**/x", "**/x"), ("**/**/**/**/x", "**/x"), ("a/**/**/b", "a/**/b"), ("a/**/**", "a/**"), ("**/**", "**")],
)
@pytest.mark.parametrize("key", ["x", "a/x", "a/b/x", "a/b", "a", "a/", "b", "", "a/c/b", "x/"])
def test_stacked_double_stars_mean_one(stacked: str, single: str, key: str) -> None:
    assert matches(stacked, key) is matches(single, key)


def test_a_compiled_glob_keeps_its_text_and_compares_by_it() -> None:
    compiled = compile_glob("orders/**/*.csv")
    assert compiled.pattern == "orders/**/*.csv"
    assert compiled == compile_glob("orders/**/*.csv")
    assert hash(compiled) == hash(compile_glob("orders/**/*.csv"))
    assert compiled != compile_glob("orders/*.csv")
    assert compiled.fullmatch("orders/a.csv")
    assert compiled.fullmatch("orders/a.txt") is None


# -- the same answers as the regular expressions globs used to be compiled to ---------------------


def _regex(pattern: str) -> re.Pattern[str]:
    """The former translation (correct, but it backtracks): the reference for small keys."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*" if i + 2 == len(pattern) else "(?:.*/)?")
            i += 2 if i + 2 == len(pattern) else 3
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
        i += 1
    return re.compile("".join(out), re.DOTALL)


_GLOB_SEGMENTS = st.just("**") | st.text(alphabet="ab*?.é", max_size=5).filter(lambda s: "**" not in s)
_GLOBS = st.lists(_GLOB_SEGMENTS, min_size=1, max_size=5).map("/".join).filter(bool)
_KEYS = st.text(alphabet="ab/.é\n", max_size=14)


@st.composite
def _filled(draw: st.DrawFn, glob: str) -> str:
    """A key made from the glob by filling its wildcards: it matches far more often than random text."""
    parts = []
    for part in glob.split("/"):
        if part == "**":
            parts.append("/".join(draw(st.lists(st.sampled_from(("a", "b", "ab", "")), min_size=1, max_size=3))))
        else:
            parts.append(part.replace("*", draw(st.sampled_from(("", "a", "ba", "é.")))).replace("?", "b"))
    return "/".join(parts)


@settings(max_examples=1000, deadline=None)
@given(glob=_GLOBS, keys=st.lists(_KEYS, min_size=1, max_size=8), data=st.data())
def test_matching_agrees_with_the_former_regular_expressions(glob: str, keys: list[str], data: st.DataObject) -> None:
    compiled, reference = compile_glob(glob), _regex(glob)
    filled = data.draw(_filled(glob))
    for key in [*keys, filled, filled + "a", filled + "/", "x" + filled, filled[:-1]]:
        expected = reference.fullmatch(key) is not None
        assert (compiled.fullmatch(key) is not None) == expected, (glob, key)
        # the segment-wise matcher too, also where a bounded regex answers in its place
        assert compiled._match(key, None) == expected, (glob, key)


@pytest.mark.parametrize(
    ("glob", "bounded"),
    [
        ("orders/*.csv", True),
        ("**/_SUCCESS", True),
        ("exports/**/*.parquet", True),
        ("a/**/b/**/c", False),  # two `**`: each would try every folder boundary of the other
        ("**/**/**/**/x", True),  # merged into one `**`
        ("*a*a*b", False),  # two `*` in one segment
    ],
)
def test_only_globs_whose_regex_cannot_backtrack_far_are_matched_by_a_regex(glob: str, bounded: bool) -> None:
    assert (compile_glob(glob)._regex is not None) == bounded
