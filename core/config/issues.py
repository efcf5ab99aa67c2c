"""Problems found in ``connectors.toml`` and how they are shown.

Each problem says where it is (file, line when it can be found, dotted key), what was
expected and what was found; `ConfigError` holds them all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConnectordError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the config file."""

    path: Path_
    message: str
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    line: int | None = None

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        key = dotted(self.path) or "(file)"
        text = f"{where}: {key}: {self.message}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.found is not None:
            text += f", found {self.found}"
        if self.hint:
            text += f". Hint: {self.hint}"
        return text


class ConfigError(ConnectordError):
    """The configuration is invalid."""

    def __init__(self, path: Path, issues: list[ConfigIssue]) -> None:
        self.path = path
        self.issues = issues
        lines = [issue.render(str(path)) for issue in issues]
        count = f"{len(issues)} error{'s' if len(issues) != 1 else ''}"
        super().__init__(f"{count} in {path}:\n  " + "\n  ".join(lines))


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_value(value: Any) -> str:
    """How a found value is shown in an error: its repr (shortened) and TOML type."""
    kind = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


def did_you_mean(word: str, choices: list[str]) -> str | None:
    """A hint naming the closest known word, if one is close enough."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def pydantic_message(error: Any) -> str:
    """A pydantic error message reworded to read like the rest of our messages."""
    message = str(error["msg"])
    message = message.replace("Input should be", "expected").replace("Value error, ", "")
    return message[0].lower() + message[1:] if message else message
