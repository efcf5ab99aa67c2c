"""JMESPath with a few string and time functions, compiled once at config time.

Public for plugins: any option that lets a user pick a value out of a record (a user id
path, a template placeholder, a filter) should take one of these expressions, so every
plugin speaks the same expression language as the ``fields`` and ``filter`` mappings.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jmespath
import jmespath.exceptions
from jmespath import functions

from .records import epoch_ms, iso, parse_time


class _Functions(functions.Functions):
    """Extra functions: ``lower``, ``upper``, ``trim``, ``replace``, ``split``,
    ``epoch_ms`` and ``iso_time``."""

    @functions.signature({"types": ["string", "null"]})
    def _func_lower(self, value: str | None) -> str | None:
        return None if value is None else value.lower()

    @functions.signature({"types": ["string", "null"]})
    def _func_upper(self, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @functions.signature({"types": ["string", "null"]})
    def _func_trim(self, value: str | None) -> str | None:
        return None if value is None else value.strip()

    @functions.signature(
        {"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]}
    )
    def _func_replace(self, value: str | None, old: str, new: str) -> str | None:
        return None if value is None else value.replace(old, new)

    @functions.signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_split(self, value: str | None, sep: str) -> list[str] | None:
        return None if value is None else value.split(sep)

    @functions.signature({"types": ["string", "number", "null"]})
    def _func_epoch_ms(self, value: Any) -> int | None:
        return epoch_ms(value)

    @functions.signature({"types": ["string", "number", "null"]})
    def _func_iso_time(self, value: Any) -> str | None:
        moment = parse_time(value)
        return None if moment is None else iso(moment)


OPTIONS = jmespath.Options(custom_functions=_Functions())


class Expression:
    """A compiled JMESPath expression; `search` never raises on missing data."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed = compile_expression(text)

    def search(self, data: Any) -> Any:
        try:
            return self._parsed.search(data, options=OPTIONS)
        except jmespath.exceptions.JMESPathTypeError:
            return None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> Any:
    """Compile or raise ``ValueError`` with JMESPath's explanation."""
    try:
        return jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as err:
        message = re.sub(r"\s+", " ", str(err)).strip()
        raise ValueError(f"invalid JMESPath expression {text!r}: {message}") from None


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, empty string/list/object are false."""
    return value not in (None, False, "", [], {})
