"""Serve lists page by page from an emulator, the way vendor APIs do.

Vendors page in three ways; `paginate` answers all of them from one list:

- an opaque cursor (``?cursor=...``, ``next_cursor`` in the answer),
- an offset (``?offset=200&limit=100``),
- a page number (``?page=3&per_page=100``, numbered from 1).

Example, inside a `VendorEmulator` handler::

    page = paginate(self.events, cursor=request.query.get("cursor"), limit=100)
    return json_response({"data": page.items, "next": page.next_cursor})
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Page:
    """One page of a list, with what the next request needs."""

    items: list[Any]
    offset: int
    limit: int
    total: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total

    @property
    def next_offset(self) -> int | None:
        return self.offset + len(self.items) if self.has_more else None

    @property
    def number(self) -> int:
        """This page's number, counting from 1."""
        return self.offset // self.limit + 1

    @property
    def next_page(self) -> int | None:
        return self.number + 1 if self.has_more else None

    @property
    def next_cursor(self) -> str | None:
        """An opaque token for the next page, ``None`` on the last one."""
        offset = self.next_offset
        return None if offset is None else encode_cursor(offset)


def paginate(
    items: Sequence[Any],
    *,
    limit: int | str | None = None,
    cursor: str | None = None,
    offset: int | str | None = None,
    page: int | str | None = None,
    default_limit: int = 100,
    max_limit: int | None = None,
) -> Page:
    """Slice ``items`` at the position one of ``cursor``, ``offset`` or ``page`` names.

    Values may be given as the raw query strings. A malformed or out-of-range value
    raises ``HTTPBadRequest`` with a JSON body, as a vendor API would answer it.

    :param limit: items per page; ``None`` uses ``default_limit`` (at most ``max_limit``).
    :param max_limit: the vendor's largest page; a bigger ``limit`` is a 400.
    """
    if max_limit is not None:
        default_limit = min(default_limit, max_limit)
    size = _integer("limit", limit, default_limit, minimum=1)
    if max_limit is not None and size > max_limit:
        raise _bad_request(f"limit must be at most {max_limit}, got {size}")
    given = [
        name
        for name, value in (("cursor", cursor), ("offset", offset), ("page", page))
        if value not in (None, "")
    ]
    if len(given) > 1:
        raise _bad_request(f"pass only one of {', '.join(given)}")
    start = 0
    if cursor not in (None, ""):
        start = decode_cursor(str(cursor))
    elif offset not in (None, ""):
        start = _integer("offset", offset, 0, minimum=0)
    elif page not in (None, ""):
        start = (_integer("page", page, 1, minimum=1) - 1) * size
    return Page(list(items[start : start + size]), start, size, len(items))


def encode_cursor(offset: int) -> str:
    """An opaque cursor for a position (clients must not parse it)."""
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position an `encode_cursor` token names; a garbled token is a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise _bad_request(f"invalid cursor {cursor!r}") from None
    if not isinstance(value, int) or value < 0:
        raise _bad_request(f"invalid cursor {cursor!r}")
    return value


def _integer(name: str, value: int | str | None, default: int, *, minimum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _bad_request(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise _bad_request(f"{name} must be at least {minimum}, got {number}")
    return number


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=orjson.dumps({"error": "bad_request", "message": message}).decode(),
        content_type="application/json",
    )
