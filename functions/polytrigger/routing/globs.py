"""S3 key globs: `*` and `?` stay within one path segment, `**` spans segments.

fnmatch lets `*` cross `/`, which would make `orders/*.csv` match `orders/2026/x.csv`; users of
path globs (gitignore, Ant, S3 console filters) expect segments to be respected, so globs are
compiled to anchored regular expressions once, at load.
"""

from __future__ import annotations

import re

_SPECIAL = set("*?[]")


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a key glob; raise ValueError naming what is wrong."""
    if not pattern:
        raise ValueError("the key glob is empty")
    if any(ch in pattern for ch in "[]"):
        raise ValueError("character classes ([...]) are not supported; use * ? or **")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                if pattern.startswith("***", i):
                    raise ValueError("'***' is not a valid glob; use ** to span folders")
                at_start = i == 0 or pattern[i - 1] == "/"
                at_end = i + 2 == n or pattern[i + 2] == "/"
                if not (at_start and at_end):
                    raise ValueError("** must stand alone between slashes (e.g. orders/**/*.csv)")
                if i + 2 == n:
                    out.append(".*")  # trailing **: anything below, including nothing
                    i += 2
                else:
                    out.append("(?:.*/)?")  # **/ : zero or more whole folders
                    i += 3
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def literal_prefix(pattern: str) -> str:
    """The part of the glob before its first wildcard: a cheap pre-filter and an index key."""
    for i, ch in enumerate(pattern):
        if ch in _SPECIAL:
            return pattern[:i]
    return pattern


def literal_suffix(pattern: str) -> str:
    """The part of the glob after its last wildcard: every key the glob matches ends with it.

    `**/` may stand for no folder at all (`**/_SUCCESS` matches `_SUCCESS`), so its slash is not part
    of the suffix. A cheap pre-filter before the compiled glob, like `literal_prefix`.
    """
    for i in range(len(pattern) - 1, -1, -1):
        if pattern[i] in _SPECIAL:
            suffix = pattern[i + 1 :]
            if i > 0 and pattern[i - 1] == "*" and suffix.startswith("/"):
                suffix = suffix[1:]
            return suffix
    return pattern
