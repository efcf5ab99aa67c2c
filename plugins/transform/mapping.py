"""The ``fields`` and ``filter`` mappings: declarative, pure, written in connectors.toml.

Example::

    mapping = [
      { type = "filter", when = "type == 'track'" },
      { type = "fields", set = { "properties.plan" = "traits.plan || 'free'",
                                 "event" = "lower(event)" },
        drop = ["context.ip"] },
    ]
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from connectord import Mapping, Options, Record
from connectord.expressions import Expression, compile_expression, truthy


def _check_expression(value: str | None) -> str | None:
    if value is not None:
        compile_expression(value)
    return value


JMESPathCondition = Annotated[str, AfterValidator(_check_expression)]


def _check_path(path: str) -> str:
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise ValueError(f"invalid field path {path!r}: use dotted names like properties.plan")
    return path


class FieldsMapping(Mapping):
    """Set fields from JMESPath expressions and drop fields, optionally only `when` a
    condition holds."""

    type = "fields"

    class Options(Options):
        when: JMESPathCondition | None = Field(
            None, description="JMESPath condition; records where it is false pass unchanged."
        )
        set: dict[str, str] = Field(
            default_factory=dict,
            description="Target dotted path → JMESPath expression on the incoming record, e.g. "
            '{ "properties.plan" = "traits.plan" }. Literals: `\'text\'` or `` `42` ``. '
            "A null result leaves the target untouched.",
        )
        drop: list[str] = Field(default_factory=list, description="Dotted paths to remove.")

        @field_validator("set")
        @classmethod
        def _set(cls, value: dict[str, str]) -> dict[str, str]:
            for target, expression in value.items():
                _check_path(target)
                compile_expression(expression)
            return value

        @field_validator("drop")
        @classmethod
        def _drop(cls, value: list[str]) -> list[str]:
            return [_check_path(p) for p in value]

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.when = Expression(options.when) if options.when else None
        self.assignments = [(t.split("."), Expression(e)) for t, e in options.set.items()]
        self.drops = [p.split(".") for p in options.drop]

    def map(self, record: Record) -> Record:
        if self.when is not None and not truthy(self.when.search(record)):
            return record
        return apply_fields(record, self.assignments, self.drops)


def apply_fields(
    record: Record, assignments: list[tuple[list[str], Expression]], drops: list[list[str]]
) -> Record:
    """Evaluate every expression against the original record, then write and drop."""
    values = [(path, expression.search(record)) for path, expression in assignments]
    out = copy.deepcopy(record)
    for path, value in values:
        if value is not None:
            set_path(out, path, value)
    for path in drops:
        drop_path(out, path)
    return out


def set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def drop_path(target: dict[str, Any], path: list[str]) -> None:
    node: Any = target
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


class FilterMapping(Mapping):
    """Keep only records for which a JMESPath condition is true; drop the rest."""

    type = "filter"

    class Options(Options):
        when: JMESPathCondition = Field(
            description="JMESPath condition, e.g. \"type == 'track' && "
            "event == 'Order Completed'\"."
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.when = Expression(options.when)

    def map(self, record: Record) -> Record | None:
        return record if truthy(self.when.search(record)) else None
