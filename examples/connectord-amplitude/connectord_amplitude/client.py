"""Amplitude's HTTP APIs: event upload (HTTP V2 / Batch) and the Export API.

Only vendor I/O lives here. Answers are classified the way the framework expects:

- 200: everything was ingested.
- 400 that names events (invalid fields, missing fields, short IDs, silenced devices):
  those events are refused for good and nothing else was ingested; the caller resends
  the rest (`UploadOutcome`). A 400 that names no event is a `PermanentError`, except
  "Invalid API key", which is an `AuthError` (fixable by the operator).
- 413: `PermanentError`; the framework splits the batch and tries the halves.
- 429: the events of throttled users/devices are named (`throttled_events`); nothing
  was ingested; the others can be resent at once, the throttled ones after a pause.
- 5xx, timeouts, dropped connections: `RetryableError` (``Retry-After`` honoured).
"""

from __future__ import annotations

import base64
import gzip
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import aiohttp
import orjson
from connectord import AuthError, PermanentError, RetryableError
from connectord.http import raise_for_status, retry_after_seconds

from .const import ENDPOINT_PATHS, EXPORT_PATH, THROTTLE_PAUSE_SECONDS, VENDOR

_PER_EVENT_FIELDS = (
    ("events_with_invalid_fields", "invalid {field}"),
    ("events_with_missing_fields", "missing {field}"),
    ("events_with_invalid_id_lengths", "{field} is shorter than the minimum ID length"),
)
_DOWNLOAD_CHUNK = 256 * 1024
_SPOOL_BYTES = 16 * 1024 * 1024


@dataclass
class UploadOutcome:
    """What Amplitude did with one upload request, by index into its ``events``."""

    ingested: bool
    refused: dict[int, str] = field(default_factory=dict)
    """Events Amplitude will never take (a 400 names them)."""
    throttled: set[int] = field(default_factory=set)
    """Events whose user or device is rate-limited (a 429 names them)."""
    retry_after: float | None = None


class AmplitudeClient:
    """Calls Amplitude with the connector's shared HTTP session."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")

    # --- event upload --------------------------------------------------------------------

    async def upload(
        self,
        api_key: str,
        events: list[dict[str, Any]],
        *,
        endpoint: str = "httpapi",
        min_id_length: int | None = None,
        throttle_pause: float = THROTTLE_PAUSE_SECONDS,
    ) -> UploadOutcome:
        """POST events to ``/2/httpapi`` or ``/batch``; classify the answer."""
        payload: dict[str, Any] = {"api_key": api_key, "events": events}
        if min_id_length is not None:
            payload["options"] = {"min_id_length": min_id_length}
        url = self.base_url + ENDPOINT_PATHS[endpoint]
        try:
            async with self.session().post(
                url,
                data=orjson.dumps(payload),
                headers={"Content-Type": "application/json", "Accept": "*/*"},
            ) as response:
                status, headers, text = response.status, response.headers, await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryableError(f"{VENDOR} unreachable: {err!r}") from err
        if status == 200:
            return UploadOutcome(ingested=True)
        body = _json_object(text)
        if status == 400:
            return _bad_request(body, text, len(events), throttle_pause)
        if status == 429:
            return _throttled(body, headers, text, len(events), throttle_pause)
        if status == 413:
            raise PermanentError(
                f"{VENDOR} answered HTTP 413: {body.get('error') or 'payload too large'}"
                f" ({len(events)} events)"
            )
        raise_for_status(status, headers, text, vendor=VENDOR)
        raise RetryableError(f"{VENDOR} answered HTTP {status}: {text[:200]}")

    # --- export --------------------------------------------------------------------------

    async def export(
        self, api_key: str, secret_key: str, start: str, end: str
    ) -> Iterator[dict[str, Any]] | None:
        """Events uploaded in hours ``start``..``end`` (``YYYYMMDDTHH``, both included),
        or ``None`` when Amplitude has none (its 404). The zip is spooled to disk, not
        held in memory, and read file by file."""
        url = self.base_url + EXPORT_PATH
        credentials = base64.b64encode(f"{api_key}:{secret_key}".encode()).decode()
        auth = {"Authorization": f"Basic {credentials}"}
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned
        try:
            async with self.session().get(
                url, params={"start": start, "end": end}, headers=auth
            ) as response:
                if response.status == 404:
                    spool.close()
                    return None
                if response.status != 200:
                    text = await response.text(errors="replace")
                    if response.status == 400:
                        raise PermanentError(
                            f"{VENDOR} export {start}..{end} refused (HTTP 400): {text[:200]}"
                            " — more than 4 GB: lower hours_per_request"
                        )
                    raise_for_status(response.status, response.headers, text, vendor=VENDOR)
                async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK):
                    spool.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as err:
            spool.close()
            raise RetryableError(f"{VENDOR} export unreachable: {err!r}") from err
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return _events_in_zip(spool)


def _events_in_zip(spool: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Every event of every file in the archive; blocking: iterate it off the loop."""
    try:
        try:
            archive = zipfile.ZipFile(spool)
        except zipfile.BadZipFile as err:
            raise RetryableError(f"{VENDOR} export is not a zip archive: {err}") from err
        with archive:
            for name in sorted(archive.namelist()):
                if name.endswith("/"):
                    continue
                with archive.open(name) as member:
                    if name.endswith(".gz"):
                        with gzip.open(member) as unzipped:
                            yield from _json_lines(unzipped)
                    else:
                        yield from _json_lines(member)
    finally:
        spool.close()


def _json_lines(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    for line in stream:
        if line.strip():
            yield orjson.loads(line)


def _json_object(text: str) -> dict[str, Any]:
    try:
        body = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _bad_request(body: dict[str, Any], text: str, count: int, pause: float) -> UploadOutcome:
    refused: dict[int, str] = {}
    for key, template in _PER_EVENT_FIELDS:
        for field_name, indices in (body.get(key) or {}).items():
            for index in indices or []:
                _add_reason(refused, index, count, template.format(field=field_name))
    for index in body.get("silenced_events") or []:
        _add_reason(refused, index, count, "device_id silenced by Amplitude")
    throttled = {i for i in body.get("throttled_events") or [] if 0 <= i < count}
    if refused or throttled:
        reasons = {i: f"{VENDOR} refused the event: {why}" for i, why in refused.items()}
        return UploadOutcome(
            ingested=False,
            refused=reasons,
            throttled=throttled - set(reasons),
            retry_after=pause if throttled else None,
        )
    error = body.get("error") or text[:200] or "bad request"
    if error == "Invalid API key":
        raise AuthError(f"{VENDOR} answered HTTP 400: Invalid API key")
    missing = f" (missing {body['missing_field']})" if body.get("missing_field") else ""
    raise PermanentError(f"{VENDOR} answered HTTP 400: {error}{missing}")


def _add_reason(refused: dict[int, str], index: Any, count: int, reason: str) -> None:
    if isinstance(index, int) and 0 <= index < count:
        refused[index] = f"{refused[index]}; {reason}" if index in refused else reason


def _throttled(
    body: dict[str, Any], headers: Any, text: str, count: int, pause: float
) -> UploadOutcome:
    pause = retry_after_seconds(headers.get("Retry-After")) or pause
    throttled = {
        i for i in body.get("throttled_events") or [] if isinstance(i, int) and 0 <= i < count
    }
    if not throttled:
        raise RetryableError(f"{VENDOR} answered HTTP 429: {text[:200]}", retry_after=pause)
    return UploadOutcome(ingested=False, throttled=throttled, retry_after=pause)
