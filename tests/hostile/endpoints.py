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
        for key in ("message", "error_description", "errors", "error"):
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

    def url(self) -> str:
        return f"/ingest/{self.name}/{self.path}"

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


ENDPOINTS: list[PushEndpoint] = [WEBHOOK, WEBHOOK_HMAC]
"""Every push endpoint under test; `test_every_push_source_is_covered` keeps it complete."""
