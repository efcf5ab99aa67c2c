"""A vendor error that echoes a long header secret: not one fragment of it reaches the
dead letters (`dlq list`), the log or ``/healthz``.

Before: the answer was cut to 300 characters first and redacted second, so the cut
secret no longer matched and 153 of its 229 characters got through; and ``/healthz``,
which anyone who can reach the port may read, showed the error text.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from aiohttp import web

from connectord.http import raise_for_status
from connectord.log import set_secrets
from tests.chaos.support import report, track, wait_until

pytestmark = [pytest.mark.e2e]

LONG_SECRET = "LS-" + "".join(f"{i:02x}q" for i in range(75)) + "z"  # 229 characters
KEY = f'headers = {{ X-Api-Key = "{LONG_SECRET}" }}'
TOKEN = "echo-ingest-token-3141"
FRAGMENT = 12  # no run of this many secret characters may appear anywhere


def fragments(secret: str) -> set[str]:
    return {secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def leaked(text: str) -> list[str]:
    return sorted(f for f in fragments(LONG_SECRET) if f in text)


def echoing(status: int) -> web.Application:
    """Answers ``status`` with a body that starts with some text and echoes the header
    (the secret straddles the 300-character cut)."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        text = "x" * 150 + " rejected; you sent X-Api-Key: " + request.headers["X-Api-Key"]
        return web.Response(status=status, text=text + " (see docs)")

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app


def test_redaction_comes_before_shortening():
    assert len(LONG_SECRET) == 229
    set_secrets([LONG_SECRET])
    try:
        with pytest.raises(Exception) as caught:
            raise_for_status(400, {}, "y" * 150 + LONG_SECRET, vendor="acme")
        assert leaked(str(caught.value)) == []
        assert "**********" in str(caught.value)
    finally:
        set_secrets([])


def test_a_long_echoed_secret_reaches_no_output(tmp_path, emulator_server, spawn_daemon):
    refusing = emulator_server(echoing(400))  # permanent: dead letters
    failing = emulator_server(echoing(500))  # retryable: /healthz while it retries
    daemon = spawn_daemon(
        f"""
[connectors.refused]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{refusing.url}/hook", {KEY} }}

[connectors.failing]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{failing.url}/hook", {KEY} }}
delivery = {{ retry_initial = 0.1, retry_max = 0.3 }}
"""
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for name in ("refused", "failing"):
        status, _ = daemon.post(f"/ingest/{name}/", orjson.dumps([track(name)]), headers=headers)
        assert status == 200
    wait_until(
        lambda: '"delivery.rejected"' in daemon.logs() and '"delivery.retry"' in daemon.logs(),
        15,
        "a dead letter and a retry",
    )
    health = daemon.get("/healthz")[1].decode()
    assert orjson.loads(health)["connectors"]["failing"]["healthy"] is False
    dlq = subprocess.run(
        [sys.executable, "-m", "connectord", "dlq", "list", "refused", "-c", str(daemon.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "answered HTTP 400" in dlq and "**********" in dlq
    outputs = {"dlq list": dlq, "log": daemon.logs(), "/healthz": health}
    found = {where: leaked(text) for where, text in outputs.items()}
    report(
        "long echoed secret",
        secret_chars=len(LONG_SECRET),
        **{f"fragments_in_{k.strip('/').replace(' ', '_')}": len(v) for k, v in found.items()},
    )
    assert found == {where: [] for where in outputs}
    assert "X-Api-Key" not in health, "/healthz shows no error text at all"
