"""Pushwoosh's segmentation language, as the emulator evaluates it (filters on tags).

From https://docs.pushwoosh.com/developer/api-reference/segmentation-filters-api/segmentation-language:
``T("Tag", op, value)`` conditions combined with ``*`` (and), ``+`` (or) and ``\\``
(difference); ``A("APP-CODE")`` (app installed) is taken as true.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# --- segmentation language ------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[()\[\],*+\\])
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"unexpected input at {position}: {text[position : position + 10]!r}")
        position = match.end()
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "string" or kind == "number":
            out.append(("value", orjson.loads(raw)))
        else:
            out.append((kind, raw))
    return out


class _Parser:
    """expr := term (('+' | '\\') term)* ; term := factor ('*' factor)* ;
    factor := T(tag, op, value) | A(app) | '(' expr ')'."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str, raw: Any = None) -> Any:
        token = self.peek()
        if token is None or token[0] != kind or (raw is not None and token[1] != raw):
            raise ValueError(f"expected {raw or kind} at token {self.position}, found {token}")
        self.position += 1
        return token[1]

    def parse(self) -> Any:
        expression = self.expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()} after the expression")
        return expression

    def expr(self) -> Any:
        left = self.term()
        while (token := self.peek()) in (("punct", "+"), ("punct", "\\")):
            assert token is not None
            self.position += 1
            right = self.term()
            if token[1] == "+":
                left = (lambda a, b: lambda tags: a(tags) or b(tags))(left, right)
            else:
                left = (lambda a, b: lambda tags: a(tags) and not b(tags))(left, right)
        return left

    def term(self) -> Any:
        left = self.factor()
        while self.peek() == ("punct", "*"):
            self.position += 1
            right = self.factor()
            left = (lambda a, b: lambda tags: a(tags) and b(tags))(left, right)
        return left

    def factor(self) -> Any:
        token = self.peek()
        if token == ("punct", "("):
            self.position += 1
            inner = self.expr()
            self.take("punct", ")")
            return inner
        name = self.take("name")
        self.take("punct", "(")
        if name == "A":
            self.take("value")
            self.take("punct", ")")
            return lambda tags: True
        if name != "T":
            raise ValueError(f"unsupported condition {name}()")
        tag = self.take("value")
        self.take("punct", ",")
        operator = self.take("name").lower()
        self.take("punct", ",")
        value = self.value()
        self.take("punct", ")")
        return condition(str(tag), operator, value)

    def value(self) -> Any:
        if self.peek() == ("punct", "["):
            self.position += 1
            items = []
            while self.peek() != ("punct", "]"):
                items.append(self.take("value"))
                if self.peek() == ("punct", ","):
                    self.position += 1
            self.take("punct", "]")
            return items
        return self.take("value")


def condition(tag: str, operator: str, value: Any) -> Any:
    values = value if isinstance(value, list) else [value]

    def matches(tags: dict[str, Any]) -> bool:
        current = tags.get(tag)
        if operator == "any":
            return current not in (None, [], "")
        if current is None:
            return operator in ("noteq", "notin")
        held = current if isinstance(current, list) else [current]
        if operator in ("eq", "e"):
            return any(v in held for v in values)
        if operator == "noteq":
            return not any(v in held for v in values)
        if operator == "in":
            return any(v in held for v in values)
        if operator == "notin":
            return not any(v in held for v in values)
        try:
            if operator == "gte":
                return current >= values[0]
            if operator == "lte":
                return current <= values[0]
            if operator == "between":
                return values[0] <= current <= values[1]
        except TypeError:
            return False
        raise ValueError(f"unsupported operator {operator}")

    if operator not in ("any", "eq", "e", "noteq", "in", "notin", "gte", "lte", "between"):
        raise ValueError(f"unsupported operator {operator}")
    return matches


def parse_segment(text: str) -> Any:
    """Compile a segmentation-language expression to ``tags -> bool``."""
    return _Parser(text).parse()
