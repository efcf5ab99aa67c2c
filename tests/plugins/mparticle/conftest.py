"""Fixtures for the mParticle plugin: sample payloads in each of mParticle's formats and
the ``mparticle.http`` source served over real HTTP on 127.0.0.1 by the daemon's own
HTTP app (routing and error rendering included), with the queue replaced by a list."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import structlog
from aiohttp import web

from connectord import QueueFull
from connectord.metrics import Metrics
from connectord.plugins.mparticle.source import MparticleSource
from connectord.server import create_app
from connectord.state import MemoryKeyValue
from connectord.testing import EmulatorServer

API_KEY = "us1-test-key"
API_SECRET = "s3cr3t-for-tests"
FIREHOSE_SECRET = "firehose-shared-secret"
WEBHOOK_AUTH = "Bearer webhook-token-123"

OPTIONS = {
    "api_key": API_KEY,
    "api_secret": API_SECRET,
    "firehose_secret": FIREHOSE_SECRET,
    "webhook_authorization": WEBHOOK_AUTH,
}


def basic(key: str = API_KEY, secret: str = API_SECRET) -> dict[str, str]:
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- payloads -------------------------------------------------------------------------


def custom_event(name: str = "click", **data: Any) -> dict[str, Any]:
    return {
        "event_type": "custom_event",
        "data": {"event_name": name, "custom_event_type": "navigation", **data},
    }


def events_batch(**fields: Any) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "environment": "production",
        "source_request_id": "7fa67be4-f83a-429f-9d73-38b660c50825",
        "mpid": 7346244611012968789,
        "ip": "172.217.12.142",
        "user_identities": {"customer_id": "u-1234", "email": "jane@example.com"},
        "device_info": {
            "platform": "iOS",
            "ios_idfv": "6b1cd5d6-0a3c-4b41-9e6c-0d2bf7c3a1f1",
            "ios_advertising_id": "613ff528-afd1-4c1b-9628-e6ac02ccbfff",
            "push_token": "abcdef0123",
            "os_version": "17.2",
            "device_model": "iPhone15,2",
            "locale_language": "en",
            "locale_country": "US",
        },
        "application_info": {"application_name": "Shop", "application_version": "1.0.1"},
        "user_attributes": {"$firstname": "Jane", "$age": "31", "plan": "gold"},
        "events": [
            custom_event(
                "click",
                timestamp_unixtime_ms=1700000000000,
                source_message_id="e8335d31-2031-4bff-afec-17ffc1784697",
                custom_attributes={"button_name": "home"},
            ),
            {
                "event_type": "screen_view",
                "data": {"screen_name": "Checkout", "timestamp_unixtime_ms": 1700000001000},
            },
        ],
    }
    batch.update(fields)
    return batch


def firehose_events(**fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "event_processing_request",
        "id": "549c81be-ada5-468e-9f14-a5ace3919bab",
        "timestamp_ms": 1700000000000,
        "firehose_version": "3.2.0",
        "source_id": "2a218e90-821e-41e4-95c4-ab7fa2f9340b",
        "account": {
            "account_id": 123456,
            "account_settings": {"connectord_secret": FIREHOSE_SECRET},
        },
        "mpid": "-8190395463409384821",
        "user_identities": [
            {"type": "email", "encoding": "md5", "value": "e179e95c00e7718ab4a23840f992ea63"},
            {"type": "customer", "encoding": "raw", "value": "u-77"},
        ],
        "user_attributes": {"$FirstName": "Brian", "$City": "Boca Raton", "visits": "12"},
        "runtime_environment": {
            "type": "android",
            "client_ip_address": "192.168.1.15",
            "identities": [
                {"type": "android_id", "encoding": "raw", "value": "a0504a8cfa15ce2c"},
                {"type": "google_cloud_messaging_token", "encoding": "raw", "value": "fcm-1"},
            ],
            "os_version": "14",
            "application_name": "Shop",
        },
        "events": [
            {
                "type": "custom_event",
                "id": "687efc6c-f4bc-4016-bf10-1419308d4797",
                "timestamp_ms": 1700000000500,
                "name": "Level_Achieved",
                "custom_event_type": "other",
                "attributes": {"level": "7"},
            }
        ],
    }
    message.update(fields)
    return message


def membership_change(
    profiles: list[dict[str, Any]], *, message_id: str = "1317071d-3342-4e1e-a691-84bd7e762bda"
) -> dict[str, Any]:
    return {
        "type": "audience_membership_change_request",
        "id": message_id,
        "timestamp_ms": 1700000100000,
        "firehose_version": "3.2.0",
        "account": {
            "account_id": 123456,
            "account_settings": {"connectord_secret": FIREHOSE_SECRET},
        },
        "user_profiles": profiles,
    }


def profile(customer: str, mpid: str, *audiences: dict[str, Any]) -> dict[str, Any]:
    return {
        "mpid": mpid,
        "user_identities": [{"type": "customer", "encoding": "raw", "value": customer}],
        "device_identities": [{"type": "ios_vendor_id", "encoding": "raw", "value": f"hw-{mpid}"}],
        "audiences": list(audiences),
    }


def audience(action: str, audience_id: int = 456, name: str = "High value", **extra: Any):
    return {"audience_id": audience_id, "audience_name": name, "action": action, **extra}


# --- the source over HTTP ------------------------------------------------------------------


@dataclass
class SourceServer:
    """The source behind the daemon's HTTP app; committed records land in ``records``."""

    server: EmulatorServer
    connector: str
    records: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[tuple[Any, str]] = field(default_factory=list)
    full: bool = False

    def url(self, path: str) -> str:
        return f"{self.server.url}/ingest/{self.connector}/{path}"

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """What was committed for delivery."""
        return self.records

    @property
    def dead(self) -> list[dict[str, Any]]:
        """The dead letters kept at ingest, each as ``{"part", "reason"}``."""
        return [{"part": part, "reason": reason} for part, reason in self.dead_letters]

    def post(
        self, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        request = urllib.request.Request(
            self.url(path),
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), _decode(response.read())
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), _decode(err.read())


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body


class DaemonLikeServer(EmulatorServer):
    """Serves like the daemon does: request bodies are not inflated by aiohttp, so
    ``read_body`` sees (and caps) what came over the wire."""

    async def _start(self) -> None:
        self._runner = web.AppRunner(
            self.app, access_log=None, auto_decompress=False, shutdown_timeout=1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture
def source_server() -> Iterator[Callable[..., SourceServer]]:
    servers: list[EmulatorServer] = []

    def start(options: dict[str, Any] | None = None, connector: str = "mp") -> SourceServer:
        holder = SourceServer(server=None, connector=connector)  # type: ignore[arg-type]

        async def enqueue(records: list[dict[str, Any]]) -> None:
            if holder.full:
                raise QueueFull(connector, 10)
            holder.records.extend(orjson.loads(orjson.dumps(records)))

        async def dead_letter(parts: list[tuple[Any, str]]) -> None:
            holder.dead_letters.extend((p, r) for p, r in orjson.loads(orjson.dumps(parts)))

        context = SimpleNamespace(
            connector=connector,
            log=structlog.get_logger().bind(connector=connector),
            state=MemoryKeyValue(),
            base_dir=None,
            http=None,
            enqueue=enqueue,
            dead_letter=dead_letter,
        )
        source = MparticleSource(
            MparticleSource.Options.model_validate(options or OPTIONS),
            context,  # type: ignore[arg-type]
        )
        runtime = SimpleNamespace(
            routes={(r.method, r.path): r.handler for r in source.routes()},
            started=True,
            source=source,
            log=context.log,
        )
        app = create_app(lambda: {connector: runtime}, Metrics(), lambda: (True, {}))
        server = DaemonLikeServer(app).start()
        servers.append(server)
        holder.server = server
        return holder

    yield start
    for server in servers:
        server.stop()
