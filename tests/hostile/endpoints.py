"""Every push endpoint the hostile-input suite attacks, one entry each.

An entry says how to configure the source, where batches go, what a valid request
looks like, how to authenticate a body, which wrong credentials must be refused, and
which secret values it was configured with (the leak checks grep output for them).
Adding a push source to the suite is adding one `PushEndpoint` to `ENDPOINTS`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectord.ingest import sign

Headers = dict[str, str]
JSON = "application/json"


def json_message(body: bytes) -> str | None:
    """The human explanation in an error answer: ``message`` in JSON, else the text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode(errors="replace").strip()
        return text or None
    if isinstance(data, dict):
        for key in ("message", "status_message", "error_description", "errors", "error"):
            if data.get(key):
                return str(data[key])
    return None


def record(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{message_id}",
        "event": "Hostile Tested",
        "messageId": message_id,
        "properties": {"n": 1, "tags": ["a", "b"], **properties},
        "context": {"ip": "127.0.0.1", "library": {"name": "tests", "version": "1"}},
    }


@dataclass(frozen=True)
class PushEndpoint:
    name: str
    """Connector name (``/ingest/<name>/``) and test id."""
    source: str
    """The source's inline TOML table."""
    path: str
    """Where batches are posted, relative to ``/ingest/<name>/``."""
    payload: Callable[[list[str], dict[str, Any]], Any]
    """A valid JSON payload carrying one record per id (extra properties merged in)."""
    authenticate: Callable[[bytes], Headers]
    """Headers that authenticate this exact body (signatures cover the body)."""
    bad_auth: Callable[[bytes], list[tuple[str, Headers]]]
    """Named header sets that must be refused for this body."""
    secrets: tuple[str, ...]
    """Secret values this endpoint is configured with."""
    max_body_bytes: int
    message: Callable[[bytes], str | None] = json_message
    refuses_wrong_content_type: bool = True
    delivered_id: Callable[[dict[str, Any]], str] = field(default=lambda r: str(r.get("messageId")))

    ids_per_request: int = 3
    """How many records a valid request carries (1 for single-call APIs)."""
    upstream: Callable[[], Any] | None = None
    """A vendor emulator the source forwards to; ``{upstream}`` in `source` is its URL."""
    dead_lettered: tuple[str, ...] = ()
    """Corpus cases the vendor answers 2xx (so its clients never retry them): the daemon
    must accept them too and keep each as a dead letter with the reason."""

    def url(self) -> str:
        return f"/ingest/{self.name}/{self.path}"

    def source_table(self, upstream_url: str | None = None) -> str:
        return self.source.replace("{upstream}", upstream_url or "http://127.0.0.1:9")

    def valid(self, ids: list[str], **properties: Any) -> tuple[bytes, Headers]:
        body = orjson.dumps(self.payload(ids, properties))
        return body, {"Content-Type": JSON, **self.authenticate(body)}


# --- http.webhook with a shared token --------------------------------------------------------

WEBHOOK_TOKEN = "whk-TOKEN-7f3a9c21e4b6d058"


def _token_bad_auth(body: bytes) -> list[tuple[str, Headers]]:
    wrong = WEBHOOK_TOKEN[:-1] + ("0" if WEBHOOK_TOKEN[-1] != "0" else "1")
    return [
        ("no credentials", {}),
        ("wrong token", {"Authorization": f"Bearer {wrong}"}),
        ("token prefix", {"Authorization": f"Bearer {WEBHOOK_TOKEN[:-3]}"}),
        ("token plus a byte", {"Authorization": f"Bearer {WEBHOOK_TOKEN}x"}),
        ("empty bearer", {"Authorization": "Bearer "}),
        ("scheme only", {"Authorization": "Bearer"}),
        ("token without scheme", {"Authorization": WEBHOOK_TOKEN}),
        ("basic with the token", {"Authorization": "Basic " + _b64(f"{WEBHOOK_TOKEN}:")}),
        ("wrong token header", {"X-Connectord-Token": wrong}),
        ("empty token header", {"X-Connectord-Token": ""}),
        ("latin-1 garbage", {"Authorization": "Bearer \xff\xfe\xfd"}),
        ("16 KB token", {"Authorization": "Bearer " + "a" * 16_000}),
    ]


WEBHOOK = PushEndpoint(
    name="webhook-token",
    source=f'{{ type = "http.webhook", token = "{WEBHOOK_TOKEN}", max_body_bytes = 65536 }}',
    path="",
    payload=lambda ids, extra: {"batch": [record(i, **extra) for i in ids]},
    authenticate=lambda body: {"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    bad_auth=_token_bad_auth,
    secrets=(WEBHOOK_TOKEN,),
    max_body_bytes=65536,
)

# --- http.webhook with HMAC signatures -----------------------------------------------------------

WEBHOOK_HMAC_SECRET = "whk-HMAC-2b8e61f0c9d4a573"


def _hmac_bad_auth(body: bytes) -> list[tuple[str, Headers]]:
    now = int(time.time())
    good = sign(WEBHOOK_HMAC_SECRET, body)
    mac = good.split("v1=")[1]
    return [
        ("unsigned", {}),
        ("signed with another secret", {"X-Connectord-Signature": sign("not-the-secret", body)}),
        ("signature of another body", {"X-Connectord-Signature": sign(WEBHOOK_HMAC_SECRET, b"{}")}),
        (
            "replayed an hour later",
            {"X-Connectord-Signature": sign(WEBHOOK_HMAC_SECRET, body, now - 3600)},
        ),
        (
            "from the future",
            {"X-Connectord-Signature": sign(WEBHOOK_HMAC_SECRET, body, now + 3600)},
        ),
        ("timestamp swapped", {"X-Connectord-Signature": f"t={now - 1},v1={mac}"}),
        ("malformed header", {"X-Connectord-Signature": "garbage"}),
        ("non-numeric time", {"X-Connectord-Signature": f"t=abc,v1={mac}"}),
        ("empty mac", {"X-Connectord-Signature": f"t={now},v1="}),
        ("mac only", {"X-Connectord-Signature": f"v1={mac}"}),
        ("uppercased mac", {"X-Connectord-Signature": f"t={now},v1={mac.upper()}"}),
        ("bearer instead of a signature", {"Authorization": f"Bearer {WEBHOOK_HMAC_SECRET}"}),
    ]


WEBHOOK_HMAC = PushEndpoint(
    name="webhook-hmac",
    source=f'{{ type = "http.webhook", hmac_secret = "{WEBHOOK_HMAC_SECRET}", '
    "max_body_bytes = 65536 }",
    path="events",
    payload=lambda ids, extra: [record(i, **extra) for i in ids],
    authenticate=lambda body: {"X-Connectord-Signature": sign(WEBHOOK_HMAC_SECRET, body)},
    bad_auth=_hmac_bad_auth,
    secrets=(WEBHOOK_HMAC_SECRET,),
    max_body_bytes=65536,
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _tagged_id(record: dict[str, Any]) -> str:
    """Vendor sources derive their own messageIds: find ours in the properties."""
    if not isinstance(record, dict):  # a dead letter kept at ingest holds the vendor's part
        return repr(record)
    properties = record.get("properties")
    if isinstance(properties, dict) and "hostile_id" in properties:
        return str(properties["hostile_id"])
    return str(record.get("messageId"))


# --- segment.http --------------------------------------------------------------------------------

SEGMENT_WRITE_KEY = "SEGWK-hostile-4e1f0b7d92"


def _segment_bad_auth(body: bytes) -> list[tuple[str, Headers]]:
    return [
        ("no credentials", {}),
        ("wrong write key", {"Authorization": "Basic " + _b64("SEGWK-hostile-000000000:")}),
        ("write key as password", {"Authorization": "Basic " + _b64(f":{SEGMENT_WRITE_KEY}")}),
        ("bearer write key", {"Authorization": f"Bearer {SEGMENT_WRITE_KEY}"}),
        ("garbled basic", {"Authorization": "Basic %%%not-base64%%%"}),
        (
            "basic of invalid UTF-8",
            {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode()},
        ),
        ("empty basic", {"Authorization": "Basic "}),
        ("write key prefix", {"Authorization": "Basic " + _b64(f"{SEGMENT_WRITE_KEY[:-2]}:")}),
    ]


SEGMENT = PushEndpoint(
    name="segment",
    source=f'{{ type = "segment.http", write_key = "{SEGMENT_WRITE_KEY}" }}',
    path="v1/batch",
    payload=lambda ids, extra: {
        "batch": [record(i, **extra) for i in ids],
        "context": {"library": {"name": "analytics-python", "version": "2.3"}},
        "sentAt": "2026-11-23T10:00:00.000Z",
    },
    authenticate=lambda body: {"Authorization": "Basic " + _b64(f"{SEGMENT_WRITE_KEY}:")},
    bad_auth=_segment_bad_auth,
    secrets=(SEGMENT_WRITE_KEY,),
    max_body_bytes=500 * 1024,
    refuses_wrong_content_type=False,  # Segment's API reads the body whatever the type
)

# --- mparticle.http (Events API) ----------------------------------------------------

MPARTICLE_KEY = "mpkey-hostile-8c2d5a"
MPARTICLE_SECRET = "mpsecret-hostile-b71e09f3"


def _mparticle_events(ids: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "environment": "production",
        "user_identities": {"customer_id": "hostile-user"},
        "events": [
            {
                "event_type": "custom_event",
                "data": {
                    "event_name": "Hostile Tested",
                    "custom_event_type": "other",
                    "source_message_id": i,
                    "custom_attributes": {"hostile_id": i, **extra},
                },
            }
            for i in ids
        ],
    }


def _mparticle_bad_auth(body: bytes) -> list[tuple[str, Headers]]:
    return [
        ("no credentials", {}),
        ("wrong secret", {"Authorization": "Basic " + _b64(f"{MPARTICLE_KEY}:nope")}),
        ("wrong key", {"Authorization": "Basic " + _b64(f"nope:{MPARTICLE_SECRET}")}),
        ("key only", {"Authorization": "Basic " + _b64(MPARTICLE_KEY)}),
        ("swapped", {"Authorization": "Basic " + _b64(f"{MPARTICLE_SECRET}:{MPARTICLE_KEY}")}),
        ("bearer secret", {"Authorization": f"Bearer {MPARTICLE_SECRET}"}),
        ("garbled basic", {"Authorization": "Basic !!!"}),
    ]


MPARTICLE = PushEndpoint(
    name="mparticle",
    source=f'{{ type = "mparticle.http", api_key = "{MPARTICLE_KEY}", '
    f'api_secret = "{MPARTICLE_SECRET}" }}',
    path="v2/events",
    payload=_mparticle_events,
    authenticate=lambda body: {
        "Authorization": "Basic " + _b64(f"{MPARTICLE_KEY}:{MPARTICLE_SECRET}")
    },
    bad_auth=_mparticle_bad_auth,
    secrets=(MPARTICLE_KEY, MPARTICLE_SECRET),
    max_body_bytes=256 * 1024,
    delivered_id=_tagged_id,
)

# --- pushwoosh.relay (postEvent) ----------------------------------------------------

PUSHWOOSH_APP = "HSTLE-12345"
PUSHWOOSH_DEVICE_TOKEN = "pwdev-hostile-5f3c81a2e0"
PUSHWOOSH_API_TOKEN = "pwapi-hostile-0d9e4b7c61"


def _pushwoosh_upstream() -> Any:
    from tests.plugins.pushwoosh.emulator import PushwooshEmulator

    return PushwooshEmulator(
        application=PUSHWOOSH_APP,
        api_token=PUSHWOOSH_API_TOKEN,
        device_token=PUSHWOOSH_DEVICE_TOKEN,
    )


def _pushwoosh_bad_auth(body: bytes) -> list[tuple[str, Headers]]:
    return [
        ("no credentials", {}),
        ("wrong device token", {"Authorization": "Token pwdev-hostile-000000000"}),
        ("empty token", {"Authorization": "Token "}),
        ("bearer token", {"Authorization": f"Bearer {PUSHWOOSH_DEVICE_TOKEN}x"}),
        ("token prefix", {"Authorization": f"Token {PUSHWOOSH_DEVICE_TOKEN[:-1]}"}),
    ]


PUSHWOOSH_RELAY = PushEndpoint(
    name="pushwoosh-relay",
    source=f'{{ type = "pushwoosh.relay", application = "{PUSHWOOSH_APP}", '
    f'device_token = "{PUSHWOOSH_DEVICE_TOKEN}", api_token = "{PUSHWOOSH_API_TOKEN}", '
    'base_url = "{upstream}", max_body_bytes = 65536 }',
    path="json/1.3/postEvent",
    payload=lambda ids, extra: {
        "request": {
            "application": PUSHWOOSH_APP,
            "hwid": f"hwid-{ids[0]}",
            "userId": f"user-{ids[0]}",
            "event": "Hostile Tested",
            "attributes": {"hostile_id": ids[0], **extra},
        }
    },
    authenticate=lambda body: {"Authorization": f"Token {PUSHWOOSH_DEVICE_TOKEN}"},
    bad_auth=_pushwoosh_bad_auth,
    secrets=(PUSHWOOSH_DEVICE_TOKEN, PUSHWOOSH_API_TOKEN),
    max_body_bytes=65536,
    refuses_wrong_content_type=False,  # Pushwoosh SDKs send text/plain bodies too
    delivered_id=_tagged_id,
    ids_per_request=1,
    upstream=_pushwoosh_upstream,
)


SEGMENT_TRACK = PushEndpoint(
    name="segment-track",
    source=SEGMENT.source,
    path="v1/track",
    payload=lambda ids, extra: record(ids[0], **extra),
    authenticate=SEGMENT.authenticate,
    bad_auth=_segment_bad_auth,
    secrets=SEGMENT.secrets,
    max_body_bytes=32 * 1024,
    refuses_wrong_content_type=False,
    ids_per_request=1,
    # Segment's HTTP API answers 200 to a message it cannot use (segment-docs, HTTP API,
    # "Errors"): a call without type, ids or event is accepted and dropped there.
    dead_lettered=("empty object",),
)

# --- mparticle.http (Firehose) -----------------------------------------------------------------

MPARTICLE_FIREHOSE_SECRET = "mpfire-hostile-3a7c1e95"


def _firehose_message(ids: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "event_processing_request",
        "id": f"msg-{ids[0]}",
        "timestamp_ms": 1700000000000,
        "firehose_version": "3.2.0",
        "account": {"account_id": 1},
        "mpid": "-8190395463409384821",
        "user_identities": [{"type": "customer", "encoding": "raw", "value": "hostile-user"}],
        "runtime_environment": {"type": "android", "os_version": "14"},
        "events": [
            {
                "type": "custom_event",
                "id": i,
                "timestamp_ms": 1700000000500,
                "name": "Hostile Tested",
                "custom_event_type": "other",
                "attributes": {"hostile_id": i, **extra},
            }
            for i in ids
        ],
    }


MPARTICLE_FIREHOSE = PushEndpoint(
    name="mparticle-firehose",
    source=f'{{ type = "mparticle.http", firehose_secret = "{MPARTICLE_FIREHOSE_SECRET}" }}',
    path="firehose",
    payload=_firehose_message,
    authenticate=lambda body: {"Authorization": f"Bearer {MPARTICLE_FIREHOSE_SECRET}"},
    bad_auth=lambda body: [
        ("no credentials", {}),
        ("wrong secret", {"Authorization": "Bearer mpfire-hostile-00000000"}),
        ("basic secret", {"Authorization": "Basic " + _b64(f"{MPARTICLE_FIREHOSE_SECRET}:")}),
        ("secret prefix", {"Authorization": f"Bearer {MPARTICLE_FIREHOSE_SECRET[:-1]}"}),
    ],
    secrets=(MPARTICLE_FIREHOSE_SECRET,),
    max_body_bytes=4 * 1024 * 1024,
    delivered_id=_tagged_id,
)


ENDPOINTS: list[PushEndpoint] = [
    WEBHOOK,
    WEBHOOK_HMAC,
    SEGMENT,
    SEGMENT_TRACK,
    MPARTICLE,
    MPARTICLE_FIREHOSE,
    PUSHWOOSH_RELAY,
]
"""Every push endpoint under test; `test_every_push_source_is_covered` keeps it complete."""
