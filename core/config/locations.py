"""Finding the line of a dotted key in the TOML text, for error messages.

tomllib reports no positions, so this is a best-effort search of the raw lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .issues import Path_

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def locate(lines: list[str], path: Path_) -> int | None:
    """Best-effort 1-based line of a dotted key (tomllib reports no positions)."""
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return None
    for prefix_len in range(len(names), 0, -1):
        header = ".".join(_quote_key(n) for n in names[:prefix_len])
        start = _find_header(lines, header)
        if start is None:
            continue
        rest = names[prefix_len:]
        if not rest:
            return start + 1
        found = _find_keys(lines, start + 1, rest)
        return found if found is not None else start + 1
    return _find_keys(lines, 0, names)  # a key before the first table header


def _quote_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _find_header(lines: list[str], header: str) -> int | None:
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match and re.sub(r"\s+", "", match.group(1)) == header:
            return i
    return None


def _section(lines: list[str], start: int) -> Iterator[tuple[int, str]]:
    for i in range(start, len(lines)):
        if _HEADER.match(lines[i]):
            return
        yield i, lines[i]


def _find_keys(lines: list[str], start: int, keys: list[str]) -> int | None:
    """Line of ``keys[-1]`` inside the value of ``keys[0]`` (inline tables, dotted keys)."""
    first = re.compile(rf"^\s*{re.escape(keys[0])}\s*[=.]")
    last = re.compile(rf"(^|[\s{{,.]){re.escape(keys[-1])}\s*=")
    next_key = re.compile(r"^\s*[A-Za-z0-9_\"-]+\s*=")
    for i, line in _section(lines, start):
        match = first.search(line)
        if match is None:
            continue
        if len(keys) == 1:
            return i + 1
        for j, candidate in _section(lines, i):
            if j > i and next_key.match(candidate):
                break
            if last.search(candidate if j > i else line[match.end() - 1 :]):
                return j + 1
        return i + 1
    return None
