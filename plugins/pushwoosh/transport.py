"""Pushwoosh HTTP transport: one request, its envelope, the tokens it carries.

`PushwooshTransport` is the base the API groups (`user_calls`, `audience_calls`,
`report_calls`) build on, so that each group sees the same session, tokens and
answer checks and none of them handles a token on its own. Nothing here logs or
repeats a token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import aiohttp
import orjson

from connectord import PermanentError, RetryableError
from connectord.http import raise_for_status

from .answers import Answer, DeviceTokenMissing, check_envelope
from .const import DEFAULT_BASE_URL, DEFAULT_EVENTS_URL, DEVICE_API_METHODS, LEGACY_PATH, VENDOR


class PushwooshTransport:
    """Sends requests to Pushwoosh for one application and checks their answers.

    :param http: returns the aiohttp session to use (the connector's).
    :param api_token: the server token (``auth`` in bodies, statistics header).
    :param device_token: the Device API token. Without it Device API methods raise
        `DeviceTokenMissing`: the server token is never sent in its place.
    :param poll_interval: seconds between polls of asynchronous requests.
    :param max_wait: seconds to wait for an asynchronous request before giving up.
    """

    def __init__(
        self,
        http: Callable[[], aiohttp.ClientSession],
        *,
        application: str,
        api_token: str,
        device_token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        events_url: str = DEFAULT_EVENTS_URL,
        poll_interval: float = 5.0,
        max_wait: float = 600.0,
    ) -> None:
        self.http = http
        self.application = application
        self._api_token = api_token
        self._device_token = device_token or None
        self.base_url = base_url.rstrip("/")
        self.events_url = events_url.rstrip("/")
        self.poll_interval = poll_interval
        self.max_wait = max_wait

    # --- transport ---------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        sent = {"Content-Type": "application/json", **(headers or {})} if data else headers
        try:
            async with self.http().request(
                method, url, data=data, headers=sent, params=params
            ) as response:
                content = await response.read()
                status, answer_headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryableError(f"{VENDOR} unreachable: {err!r}") from err
        try:
            payload = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            payload = None
        return Answer(status, answer_headers, content, payload)

    def _auth_header(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Token {token}"}

    async def call(self, method: str, fields: dict[str, Any]) -> Any:
        """Call a legacy ``/json/1.3`` method; return the envelope's ``response``.

        Device API methods are sent with the Device token header, the others with the
        server token in ``request.auth``.
        """
        request = dict(fields)
        headers: dict[str, str] = {}
        if method in DEVICE_API_METHODS:
            if not self._device_token:
                raise DeviceTokenMissing(method)
            headers = self._auth_header(self._device_token)
        else:
            request["auth"] = self._api_token
        answer = await self._request(
            "POST",
            f"{self.base_url}{LEGACY_PATH}{method}",
            body={"request": request},
            headers=headers,
        )
        return check_envelope(method, answer)

    async def download(self, url: str, target: IO[bytes], *, max_bytes: int) -> int:
        """Stream a result file (no credentials are sent) into ``target``; return its size."""
        size = 0
        try:
            async with self.http().get(url) as response:
                if response.status >= 400:
                    text = await response.text(errors="replace")
                    raise_for_status(response.status, response.headers, text, vendor=VENDOR)
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PermanentError(
                            f"{VENDOR} result file exceeds the limit of {max_bytes} bytes"
                        )
                    target.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryableError(f"{VENDOR} result download failed: {err!r}") from err
        return size

    # --- relay -----------------------------------------------------------------------

    async def forward(self, method: str, body: bytes, headers: dict[str, str]) -> Answer:
        """Send a caller's legacy request as it came; return Pushwoosh's answer as is."""
        return await self._request(
            "POST", f"{self.base_url}{LEGACY_PATH}{method}", raw=body, headers=headers
        )
