"""Plain-text helpers for CLI output: plurals, docstring markup removed, wrapped columns.

Docstrings are written for the API docs (reStructuredText-style ````literal```` and
```ref``` markup); a terminal shows them without it.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

_ROLE = re.compile(r":[a-z]+:`([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 connector``, ``2 connectors``; ``many`` for irregular plurals."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def plain(text: str) -> str:
    """A docstring fragment without markup: ```x```, ````x```` and ``:role:`x``` become x."""
    text = _ROLE.sub(r"\1", text)
    return _LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)


def option_names(options: list[dict[str, Any]]) -> str:
    """Option names in declaration order, required ones marked with ``*``."""
    return ", ".join(o["name"] + ("*" if o.get("required") else "") for o in options) or "none"


def plugin_rows(described: list[dict[str, Any]], kind: str, width: int = 100) -> list[str]:
    """The lines `connectord plugins` prints for one kind: type and mode in aligned
    columns, then the summary, options and providing plugin wrapped under them."""
    rows = [d for d in described if d["kind"] == kind]
    name_width = max((len(d["type"]) for d in described), default=0)
    indent = " " * (2 + name_width + 2 + 4 + 2)
    lines: list[str] = []
    for d in rows:
        provider = d["provider"]
        if d.get("package") and d["package"] != "connectord":
            provider += f" ({d['package']} {d['version']})"
        head = f"  {d['type']:<{name_width}}  {(d['mode'] or ''):<4}  "
        summary = plain(d["summary"]) or "(no description)"
        lines += textwrap.wrap(summary, width, initial_indent=head, subsequent_indent=indent) or [
            head.rstrip()
        ]
        lines += textwrap.wrap(
            f"options: {option_names(d['options'])}",
            width,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
        )
        lines.append(f"{indent}plugin: {provider}")
    return lines
