"""Pendo's HTTP APIs: Track Events (``/data/track``) and the metadata REST API.

Only transport lives here: which key goes in which header, request and response
envelopes, and vendor answers mapped to connectord's delivery errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from connectord import PermanentError, RetryableError
from connectord.http import raise_for_status

from . import const

JSON = {"Content-Type": "application/json"}


@dataclass
class MetadataOutcome:
    """What Pendo said about one bulk metadata call, by entity id.

    :param missing: ids Pendo does not know (and did not create).
    :param errors: id → Pendo's message, for entries it refused.
    :param unexplained: failures Pendo counted but did not attribute to an id.
    """

    missing: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    unexplained: int = 0


class PendoClient:
    """Calls Pendo with the right credential for each API."""

    def __init__(
        self,
        http: Callable[[], aiohttp.ClientSession],
        *,
        base_url: str,
        track_base_url: str,
        track_secret: str | None,
        integration_key: str | None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.track_url = track_base_url.rstrip("/") + const.TRACK_PATH
        self.track_secret = track_secret
        self.integration_key = integration_key

    async def track(self, payload: dict[str, Any]) -> None:
        """Send one track event (Pendo's Track Events API takes one per call)."""
        assert self.track_secret is not None
        await self._call("POST", self.track_url, self.track_secret, orjson.dumps(payload))

    async def set_metadata(
        self, kind: str, group: str, entries: list[dict[str, Any]], *, create: bool
    ) -> MetadataOutcome:
        """Bulk-set metadata values: ``[{"visitorId"|"accountId": id, "values": {...}}]``."""
        assert self.integration_key is not None
        url = self.base_url + const.METADATA_PATH.format(kind=kind, group=group)
        params = {"create": "true"} if create else None
        text = await self._call(
            "POST", url, self.integration_key, orjson.dumps(entries), params=params
        )
        ids = [str(entry[const.ID_FIELDS[kind]]) for entry in entries]
        return parse_metadata_response(text, ids, kind)

    async def verify(self) -> Any:
        """``GET /api/v1/token/verify``: raises `AuthError` when the key is refused."""
        assert self.integration_key is not None
        text = await self._call("GET", self.base_url + const.VERIFY_PATH, self.integration_key)
        try:
            return orjson.loads(text) if text.strip() else None
        except orjson.JSONDecodeError:
            return text

    async def _call(
        self,
        method: str,
        url: str,
        key: str,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> str:
        headers = {const.KEY_HEADER: key, **(JSON if body is not None else {})}
        try:
            async with self.http().request(
                method, url, data=body, headers=headers, params=params
            ) as response:
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryableError(f"pendo: network error: {type(err).__name__}: {err}") from err
        text = data.decode("utf-8", errors="replace")
        raise_for_status(response.status, response.headers, text, vendor="pendo")
        return text


def parse_metadata_response(text: str, ids: Iterable[str], kind: str) -> MetadataOutcome:
    """Read ``{"total", "updated", "failed", "missing", "errors"}`` defensively.

    ``missing`` lists ids; ``errors`` holds strings (``"<id>: <message>"``) or objects
    with the id under ``visitorId``/``accountId``/``id``; ``failed`` is a count (or a list
    like ``errors``). Failures that name no id are counted as unexplained.
    """
    try:
        data = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError as err:
        raise PermanentError(f"pendo: metadata answer is not JSON: {text[:200]!r}") from err
    if not isinstance(data, dict):
        return MetadataOutcome()
    known = set(ids)
    outcome = MetadataOutcome()
    for item in data.get("missing") or []:
        entity = _entity_id(item, kind)
        if entity in known:
            outcome.missing.add(entity)
    unattributed = 0
    failed = data.get("failed")
    items = list(data.get("errors") or [])
    if isinstance(failed, list):
        items += failed
    for item in items:
        entity, message = _error(item, kind, known)
        if entity is None:
            unattributed += 1
        else:
            outcome.errors[entity] = message
    explained = len(outcome.missing | set(outcome.errors))
    if isinstance(failed, int) and not isinstance(failed, bool):
        outcome.unexplained = max(0, failed - explained)
    else:
        outcome.unexplained = unattributed
    return outcome


def _entity_id(item: Any, kind: str) -> str | None:
    if isinstance(item, (str, int)) and not isinstance(item, bool):
        return str(item)
    if isinstance(item, dict):
        for key in (const.ID_FIELDS[kind], "id"):
            if item.get(key) not in (None, ""):
                return str(item[key])
    return None


def _error(item: Any, kind: str, known: set[str]) -> tuple[str | None, str]:
    if isinstance(item, dict):
        entity = _entity_id(item, kind)
        message = item.get("error") or item.get("message") or item.get("reason")
        text = str(message) if message else orjson.dumps(item).decode()
        return (entity if entity in known else None), text
    text = str(item)
    head, sep, rest = text.partition(": ")
    if sep and head in known:
        return head, rest
    return None, text
