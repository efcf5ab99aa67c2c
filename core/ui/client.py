"""How `connectord top` and `connectord tap` reach the running daemon.

They read the daemon's own HTTP endpoints (``/ui/api/status``, ``/ui/api/tap/NAME``)
at the address ``[daemon] listen`` names, so they see exactly what the status page
shows. A wildcard listener (``0.0.0.0``, ``::``) is reached through loopback. When
``[daemon] admin_token`` is set it is sent as a Bearer token (required off loopback).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import orjson

from ..config import Config

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104


class DaemonUnreachable(Exception):
    """The daemon did not answer, or refused us; the message says what to do."""


def base_url(config: Config) -> str:
    host, _, port = config.daemon.listen.rpartition(":")
    host = host.strip("[]")
    host = WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def open_url(config: Config, path: str, timeout: float = 10.0) -> Any:
    """GET ``path`` on the daemon; the open response (a file-like object)."""
    url = base_url(config) + path
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    token = config.daemon.admin_token
    if token is not None:
        request.add_header("Authorization", f"Bearer {token.get_secret_value()}")
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as err:
        detail = _message(err.read())
        raise DaemonUnreachable(f"the daemon at {url} answered HTTP {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DaemonUnreachable(
            f"cannot reach the daemon at {base_url(config)} ({reason}); is `connectord run` "
            f"running with this config ({config.path})?"
        ) from None


def get_json(config: Config, path: str) -> dict[str, Any]:
    with open_url(config, path) as response:
        return orjson.loads(response.read())


def tap_path(name: str, mapped: bool) -> str:
    return f"/ui/api/tap/{quote(name, safe='')}" + ("?mapped=1" if mapped else "")


def _message(body: bytes) -> str:
    try:
        return str(orjson.loads(body).get("message") or body[:200].decode(errors="replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")
