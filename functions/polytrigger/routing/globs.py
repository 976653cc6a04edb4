"""S3 key globs: `*` and `?` stay within one path segment, `**` spans segments.

fnmatch lets `*` cross `/`, which would make `orders/*.csv` match `orders/2026/x.csv`; users of
path globs (gitignore, Ant, S3 console filters) expect segments to be respected, so globs are
compiled once, at load, into segments that are matched one by one.

Not into one regular expression: Python's `re` backtracks, and a route file could then stall
the function on one key (as a regex, `**/**/**/**/x` took 11 s on a 682-character key, and each
more `*` in `*a*a*a*b` multiplies the work by the key's length). Here every wildcard commits to
the earliest place that lets the rest match, which is always safe for globs (see `_Segment` and
`Glob`), so no choice is revisited: the work is linear in the key for a given glob, and
`Glob.steps` counts it.

Named placeholders (`dt={date}`, `vendor/{vendor}/**`) match one or more characters within one
segment: for matching, `{name}` is `?*` and goes through the same linear matcher. The values they took
(the key's *partition*, for gates) are read afterwards, only from a key that matched: a glob with
placeholders holds at most one `**`, so each of its segments faces a known key segment (counted from
the key's start before the `**`, from its end after it), and each segment holding a placeholder is read
by its own regex on that one key segment (never across `/`, so no folder boundary is tried twice). `{{` and `}}` are literal braces; any other
brace is refused, so that `{a,b}` (brace expansion elsewhere) is not silently taken literally.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

_SPECIAL = set("*?[]")
DOUBLE_STAR = "**"
PLACEHOLDER_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_MISTAKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # meant as a placeholder name, of the wrong form
Partition = tuple[tuple[str, str], ...]


def split_template(text: str) -> list[str | tuple[str]]:
    """`dt={date}/x{{` → `["dt=", ("date",), "/x{"]`: literal text and (name,) placeholders, in order.

    `{name}` is a placeholder; `{{` and `}}` are literal braces; any other brace is literal text, as
    before placeholders existed (`c{1}.csv`), except what is surely a mistake, refused with a ValueError:
    a name of the wrong form (`{Date}`, `{vendor-id}`) or brace alternatives (`{a,b}`). Shared by key
    globs and the key templates of gates (`routing.gates`), so both read braces alike.
    """
    out: list[str | tuple[str]] = []
    literal: list[str] = []
    position = 0
    for token in _TEMPLATE_TOKEN.finditer(text):
        literal.append(text[position : token.start()])
        position = token.end()
        found, name = token.group(0), token.group(1)
        if found in ("{{", "}}"):
            literal.append(found[0])
        elif name is None or not (PLACEHOLDER_NAME.fullmatch(name) or _MISTAKEN.fullmatch(name) or "," in name):
            literal.append(found)
        elif "," in name:
            raise ValueError(f"{found}: brace alternatives are not supported; use * or one route each")
        elif not PLACEHOLDER_NAME.fullmatch(name):
            raise ValueError(
                f"placeholder {found}: a name is a lower-case letter or _ then lower-case letters, digits or _"
                " (such as {date}); write {{ and }} for literal braces"
            )
        else:
            if "".join(literal):
                out.append("".join(literal))
            literal = []
            out.append((name,))
    literal.append(text[position:])
    if "".join(literal):
        out.append("".join(literal))
    return out


def placeholders(text: str) -> list[str]:
    """The placeholder names of a glob or template, in order (ValueError when malformed)."""
    return [piece[0] for piece in split_template(text) if isinstance(piece, tuple)]


class _Piece:
    """Literal text between two `*` of a segment; `?` in it stands for any one character.

    Pure text is found with `str.find`; text with a `?` with a regex of fixed length (no
    quantifier, so it cannot backtrack either). A segment holds no `/`, so `?` is any character.
    """

    __slots__ = ("regex", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self.regex = re.compile(_translate(text), re.DOTALL) if "?" in text else None

    def at(self, segment: str, position: int) -> bool:
        if self.regex is None:
            return segment.startswith(self.text, position)
        return self.regex.match(segment, position) is not None

    def find(self, segment: str, start: int, end: int) -> int:
        """Where the piece first occurs wholly within segment[start:end], or -1."""
        if self.regex is None:
            return segment.find(self.text, start, end)
        found = self.regex.search(segment, start, end)
        return found.start() if found is not None else -1


class _Segment:
    """One segment of a glob (no `/`, not `**`), tested against one key segment by `test`.

    Literal text is compared with `==`, and a segment with at most one `*` by a regex with that one
    quantifier (one quantifier cannot backtrack into another: at most the segment's length times
    the text after it). With more `*`, the pieces between them are taken at their earliest
    occurrence, in order. That is always safe: a later occurrence leaves less room for the rest,
    and the `*` after the earliest one can stretch over whatever a later one would have skipped
    (it is all within one segment). So no choice is ever revisited.
    """

    __slots__ = ("cost", "head", "literal", "middle", "tail", "test")

    def __init__(self, text: str) -> None:
        pieces = text.split("*")
        self.literal = text if len(pieces) == 1 and "?" not in text else None
        self.head, self.tail = _Piece(pieces[0]), _Piece(pieces[-1])
        self.middle = tuple(_Piece(piece) for piece in pieces[1:-1] if piece)
        self.test: Callable[[str], object]
        if self.literal is not None:
            self.test = self.literal.__eq__
        elif len(pieces) <= 2:
            self.test = re.compile(".*".join(map(_translate, pieces)), re.DOTALL).fullmatch
        else:
            self.test = self._pieces
        self.cost = 1 + len(self.middle)  # comparisons (each one scan of the key segment), at most

    def _pieces(self, segment: str) -> bool:
        head, tail = self.head, self.tail
        end = len(segment) - tail.size
        if end < head.size or not head.at(segment, 0) or not tail.at(segment, end):
            return False
        position = head.size
        for piece in self.middle:
            found = piece.find(segment, position, end)
            if found < 0:
                return False
            position = found + piece.size
        return True


def _translate(text: str) -> str:
    """Literal text of a segment as a regex: `?` is any one character (a key segment holds no `/`)."""
    return "".join("." if ch == "?" else re.escape(ch) for ch in text)


class _Run:
    """Consecutive segments without `**`: they match as many consecutive key segments.

    Its leading literal segments (most often the folders of a route) are compared as one list.
    """

    __slots__ = ("cost", "fixed", "rest", "size")

    def __init__(self, segments: list[_Segment]) -> None:
        literal = 0
        while literal < len(segments) and segments[literal].literal is not None:
            literal += 1
        self.fixed = [segment.literal for segment in segments[:literal]]
        self.rest = tuple(segment.test for segment in segments[literal:])
        self.size = len(segments)
        self.cost = sum(segment.cost for segment in segments)

    def at(self, parts: list[str], start: int) -> bool:
        middle = start + len(self.fixed)
        if self.fixed and parts[start:middle] != self.fixed:
            return False
        return all(test(part) for test, part in zip(self.rest, parts[middle : start + self.size], strict=True))


@dataclass(frozen=True, slots=True, eq=True)
class Glob:
    """A compiled key glob: `fullmatch(key)` is True or None, like a regex's match (truthy or None).

    The glob is split at its `**` segments into runs of plain segments: the first run is anchored at
    the key's start and the last at its end; each run between is taken at the earliest key segment
    where it matches, which is safe because the `**` after it can skip any number of segments.
    Consecutive `**` mean one `**` and are merged. A trailing `**` stands for at least one segment
    (`orders/**` matches `orders/` and anything below, not `orders`); any other for zero or more.
    Equal (and hashed) by the glob text, like the regexes routes held before.
    """

    pattern: str
    _first: _Run = field(compare=False, repr=False)
    _between: tuple[_Run, ...] = field(compare=False, repr=False)
    _last: _Run = field(compare=False, repr=False)
    _spans: bool = field(compare=False, repr=False)  # holds a `**`
    _trailing: bool = field(compare=False, repr=False)  # ends with `**`
    _regex: Callable[[str], object] | None = field(default=None, compare=False, repr=False)
    names: tuple[str, ...] = field(default=(), compare=False)  # its placeholders, in order
    _parts: tuple[tuple[int, Callable[[str], re.Match[str] | None]], ...] = field(
        default=(), compare=False, repr=False
    )  # (key segment index, from the end if negative; its regex) of each segment holding a placeholder
    matching_text: str = field(default="", compare=False, repr=False)  # placeholders as `?*`, `{{` as `{`

    def partition(self, key: str) -> Partition | None:
        """The (name, value) of each placeholder, in glob order, when `key` matches; else None.

        `()` for a matching key of a glob without placeholders. Within one segment an earlier placeholder
        takes the longest value that lets the rest match (`{a}-{b}` on `x-y-z`: a=`x-y`, b=`z`).
        """
        if self.fullmatch(key) is None:
            return None
        if not self._parts:
            return ()
        parts = key.split("/")
        values: list[str] = []
        for index, regex in self._parts:
            found = regex(parts[index])
            if found is None:  # cannot happen: the segment matched, read by the same glob
                return None
            values.extend(found.groups())
        return tuple(zip(self.names, values, strict=True))

    def fullmatch(self, key: str) -> Literal[True] | None:
        if self._regex is not None:  # a glob whose regex cannot backtrack far: matched in C
            return True if self._regex(key) is not None else None
        return True if self._match(key, None) else None

    def steps(self, key: str) -> int:
        """An upper bound of the comparisons matching `key` makes (each reads one key segment at most).

        A comparison is `==`, a search for a piece of text, or a regex with a single `*`: none can
        backtrack into another, so the work of matching is at most `steps` times the longest segment
        times the glob's length. Tests assert on it instead of timing a match.
        """
        counter = [0]
        self._match(key, counter)
        return counter[0]

    def _match(self, key: str, counter: list[int] | None) -> bool:
        first, last = self._first, self._last
        if not self._spans and first.size == 1:  # a glob without `/`: most often a bare file name
            if counter is not None:
                counter[0] += first.cost
            return "/" not in key and first.at([key], 0)
        parts = key.split("/")
        if not self._spans:
            if counter is not None:
                counter[0] += first.cost
            return len(parts) == first.size and first.at(parts, 0)
        limit = len(parts) - last.size - self._trailing  # where the last run (or the trailing `**`'s segment) starts
        if counter is not None:
            counter[0] += first.cost + last.cost
        if limit < first.size or not first.at(parts, 0):
            return False
        position = first.size
        for run in self._between:
            position = _earliest(run, parts, position, limit, counter)
            if position < 0:
                return False
        return last.at(parts, len(parts) - last.size)


def _earliest(run: _Run, parts: list[str], start: int, limit: int, counter: list[int] | None) -> int:
    """The key segment just after the first place at or after `start` where `run` matches, before `limit`; -1."""
    for at in range(start, limit - run.size + 1):
        if counter is not None:
            counter[0] += run.cost
        if run.at(parts, at):
            return at + run.size
    return -1


def compile_glob(pattern: str) -> Glob:
    """Compile a key glob; raise ValueError naming what is wrong."""
    if not pattern:
        raise ValueError("the key glob is empty")
    if any(ch in pattern for ch in "[]"):
        raise ValueError("character classes ([...]) are not supported; use * ? or **")
    if "***" in pattern:
        raise ValueError("'***' is not a valid glob; use ** to span folders")
    raw = pattern.split("/")
    if any(DOUBLE_STAR in text and text != DOUBLE_STAR for text in raw):
        raise ValueError("** must stand alone between slashes (e.g. orders/**/*.csv)")
    if "{" not in pattern and "}" not in pattern:
        return _compile(pattern, raw, pattern, (), ())
    pieces = [split_template(text) for text in raw]
    names = [piece[0] for segment in pieces for piece in segment if isinstance(piece, tuple)]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"placeholder {{{twice[0]}}} appears twice; each name at most once per glob")
    if names and raw.count(DOUBLE_STAR) > 1:
        raise ValueError("a glob with placeholders may hold at most one **")
    texts = ["".join("?*" if isinstance(piece, tuple) else piece for piece in segment) for segment in pieces]
    parts = _partition_regex(raw, pieces) if names else ()
    return _compile(pattern, texts, "/".join(texts), tuple(names), parts)


def _partition_regex(
    raw: list[str], pieces: list[list[str | tuple[str]]]
) -> tuple[tuple[int, Callable[[str], re.Match[str] | None]], ...]:
    """For each glob segment holding a placeholder: the index of the key segment it faces (negative: from
    the end, after the glob's one `**`) and a regex of that one segment, a `(.+)` group per placeholder."""
    spans = DOUBLE_STAR in raw
    after = raw.index(DOUBLE_STAR) if spans else len(raw)
    found: list[tuple[int, Callable[[str], re.Match[str] | None]]] = []
    for index, segment in enumerate(pieces):
        if not any(isinstance(piece, tuple) for piece in segment):
            continue
        regex = "".join(
            "(.+)"
            if isinstance(piece, tuple)
            else "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in piece)
            for piece in segment
        )
        found.append((index if index < after else index - len(raw), re.compile(regex, re.DOTALL).fullmatch))
    return tuple(found)


def _compile(
    pattern: str,
    texts: list[str],
    matching_text: str,
    names: tuple[str, ...],
    parts: tuple[tuple[int, Callable[[str], re.Match[str] | None]], ...],
) -> Glob:
    """`texts`: the glob's segments with placeholders already as `?*` (and `{{` as `{`)."""
    merged = [text for i, text in enumerate(texts) if not (text == DOUBLE_STAR and texts[i - 1 : i] == [DOUBLE_STAR])]
    runs: list[list[_Segment]] = [[]]
    for text in merged:
        if text == DOUBLE_STAR:
            runs.append([])
        else:
            runs[-1].append(_Segment(text))
    spans = len(runs) > 1
    return Glob(
        pattern=pattern,
        _first=_Run(runs[0]),
        _between=tuple(_Run(run) for run in runs[1:-1]),
        _last=_Run(runs[-1] if spans else []),
        _spans=spans,
        _trailing=merged[-1] == DOUBLE_STAR,
        _regex=_bounded_regex(merged),
        names=names,
        _parts=parts,
        matching_text=matching_text,
    )


def _bounded_regex(texts: list[str]) -> Callable[[str], object] | None:
    """The glob as one regex, when that regex cannot backtrack far: at most one `**` and one `*` per
    segment (then a match tries each folder boundary once, each with one quantifier per segment).
    Most route globs are of this kind (`orders/*.csv`, `**/_SUCCESS`), and the regex runs in C."""
    if texts.count(DOUBLE_STAR) > 1 or any(text.count("*") > 1 for text in texts if text != DOUBLE_STAR):
        return None
    out: list[str] = []
    for index, text in enumerate(texts):
        last = index == len(texts) - 1
        if text == DOUBLE_STAR:
            out.append(".*" if last else "(?:.*/)?")  # trailing: anything below; else zero or more folders
            continue
        out.append("".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in text))
        if not last:
            out.append("/")
    return re.compile("".join(out), re.DOTALL).fullmatch


def _plain(pattern: str) -> str:
    """The glob as the matcher reads it: placeholders as `?*`, `{{` as `{` (unchanged when malformed)."""
    if "{" not in pattern and "}" not in pattern:
        return pattern
    try:
        return "".join("?*" if isinstance(piece, tuple) else piece for piece in split_template(pattern))
    except ValueError:
        return pattern


def literal_prefix(pattern: str) -> str:
    """The part of the glob before its first wildcard (or placeholder): a cheap pre-filter and an index key."""
    pattern = _plain(pattern)
    for i, ch in enumerate(pattern):
        if ch in _SPECIAL:
            return pattern[:i]
    return pattern


def literal_suffix(pattern: str) -> str:
    """The part of the glob after its last wildcard: every key the glob matches ends with it.

    `**/` may stand for no folder at all (`**/_SUCCESS` matches `_SUCCESS`), so its slash is not part
    of the suffix. A cheap pre-filter before the compiled glob, like `literal_prefix`.
    """
    pattern = _plain(pattern)
    for i in range(len(pattern) - 1, -1, -1):
        if pattern[i] in _SPECIAL:
            suffix = pattern[i + 1 :]
            if i > 0 and pattern[i - 1] == "*" and suffix.startswith("/"):
                suffix = suffix[1:]
            return suffix
    return pattern
