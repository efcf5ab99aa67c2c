"""Where validation collects its findings: issues, secret values, notes.

The validator is split by concern (values, plugin tables, connectors); they all report
into one `Collector`, so every problem in the file is gathered before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from ..registry import Registry
from .issues import ConfigIssue, Path_, describe_value, did_you_mean, pydantic_message
from .locations import locate


class Collector:
    """Shared state of one validation run, and the ways of recording a problem."""

    def __init__(self, path: Path, text: str, registry: Registry, env: dict[str, str]) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.registry = registry
        self.env = env
        self.issues: list[ConfigIssue] = []
        self.secrets: set[str] = set()
        self.notes: list[str] = []
        self.unset: dict[str, set[str]] = {}
        """Disabled connector → environment variables it uses that are not set."""

    def issue(self, path: Path_, message: str, **kw: Any) -> None:
        self.issues.append(ConfigIssue(path, message, line=locate(self.lines, path), **kw))

    def pydantic_issues(
        self, where: Path_, err: ValidationError, model: type[BaseModel], noun: str = "option"
    ) -> None:
        fields = list(model.model_fields)
        for error in err.errors(include_url=False):
            loc = tuple(error["loc"])
            path = (*where, *loc)
            kind = error["type"]
            found = describe_value(error["input"]) if "input" in error and loc else None
            if kind == "extra_forbidden":
                self.issue(
                    path,
                    f"unknown {noun}",
                    expected=f"one of {', '.join(fields)}",
                    found=repr(loc[-1]),
                    hint=did_you_mean(str(loc[-1]), fields),
                )
            elif kind == "missing":
                info = model.model_fields.get(str(loc[0])) if len(loc) == 1 else None
                desc = f" ({info.description})" if info and info.description else ""
                self.issue(path, f"required {noun} is missing{desc}", found="nothing")
            else:
                self.issue(path, pydantic_message(error), found=mask_secret(path, found, model))


def secret_values(value: Any) -> set[str]:
    """Every `Secret` value inside validated options: fields, lists, tables, nested models."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return {secret} if secret else set()
    if isinstance(value, BaseModel):
        return set().union(*(secret_values(getattr(value, n)) for n in type(value).model_fields))
    if isinstance(value, dict):
        return set().union(*(secret_values(v) for v in value.values()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return set().union(*(secret_values(v) for v in value))
    return set()


def mask_secret(path: Path_, found: str | None, model: type[BaseModel]) -> str | None:
    """Never echo a value given for a secret option."""
    name = next((p for p in path if isinstance(p, str) and p in model.model_fields), None)
    if name is not None:
        from ..schema import is_secret

        if is_secret(model.model_fields[name]):
            return "a value (hidden: it is a secret)"
    return found
