"""No configured secret reaches any output.

Every push endpoint of the suite plus a webhook destination with a bearer token and an
HMAC secret are configured with distinctive secret values, through the config file, an
environment variable and a ``*_file``. The scenario sends valid and refused requests,
makes the destination refuse our credentials and then refuse records with bodies that
echo back the credentials it received (some vendors do), so records become dead
letters. Then every output is searched for every secret value: the daemon log, HTTP
answers (ingest errors, ``/healthz``, ``/metrics``), the CLI's stdout and stderr
(``check``, ``status``, ``plugins --json``, ``dlq list``), and the bytes of the state
database and its WAL, where no secret is stored legitimately.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from aiohttp import web

from connectord.testing import EmulatorServer
from tests.chaos.support import dead_letters, report, state_counts, track, wait_until
from tests.hostile.endpoints import ENDPOINTS

pytestmark = [pytest.mark.e2e]

ENV_TOKEN = "SEKRET-env-token-91f2c7b3"
FILE_HMAC = "SEKRET-file-hmac-5d0e3a77"
DEST_BEARER = "SEKRET-dest-bearer-7c41aa09"
DEST_HMAC = "SEKRET-dest-hmac-0b9d2e64"
SECRETS = (ENV_TOKEN, FILE_HMAC, DEST_BEARER, DEST_HMAC, *(s for e in ENDPOINTS for s in e.secrets))


class EchoingVendor:
    """A destination that echoes the credentials it got in its error answers: first it
    refuses them (401), then it refuses records marked ``poison`` (400)."""

    def __init__(self) -> None:
        self.accept_credentials = False
        self.received: list[dict] = []
        self.app = web.Application()
        self.app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        echoed = {
            "received_authorization": request.headers.get("Authorization"),
            "received_signature": request.headers.get("X-Connectord-Signature"),
        }
        if not self.accept_credentials:
            return web.json_response({"error": "invalid credentials", **echoed}, status=401)
        records = (await request.json())["records"]
        if any((r.get("properties") or {}).get("poison") for r in records):
            return web.json_response({"error": "bad record", **echoed}, status=400)
        self.received.extend(records)
        return web.json_response({"ok": True})


def cli(config, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "connectord", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOOK_TOKEN": ENV_TOKEN},
    )
    return f"$ connectord {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"


def test_no_secret_appears_in_any_output(tmp_path, spawn_daemon):
    vendor = EchoingVendor()
    server = EmulatorServer(vendor.app).start()
    (tmp_path / "hmac.secret").write_text(FILE_HMAC + "\n")
    upstreams = {e.name: e.upstream().serve().start() for e in ENDPOINTS if e.upstream}
    endpoints = "\n".join(
        f"""
[connectors.{e.name}]
source = {e.source_table(upstreams[e.name].url if e.name in upstreams else None)}
destination = {{ type = "webhook", url = "{server.url}/hook", bearer_token = "{DEST_BEARER}",
                 hmac_secret = "{DEST_HMAC}" }}
delivery = {{ retry_initial = 0.05, retry_max = 0.2 }}
""".replace("\n                 ", " ")
        for e in ENDPOINTS
    )
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "${{HOOK_TOKEN}}", hmac_secret_file = "hmac.secret" }}
destination = {{ type = "webhook", url = "{server.url}/hook", bearer_token = "{DEST_BEARER}",
                 hmac_secret = "{DEST_HMAC}" }}
delivery = {{ retry_initial = 0.05, retry_max = 0.2 }}
{endpoints}""".replace("\n                 ", " "),
        env={"HOOK_TOKEN": ENV_TOKEN},
    )
    answers: list[bytes] = []
    try:
        good = {"Authorization": f"Bearer {ENV_TOKEN}"}
        for guess in ("Bearer wrong-guess", f"Bearer {FILE_HMAC}", f"Basic {ENV_TOKEN}"):
            answers.append(
                orjson.dumps(
                    daemon.post("/ingest/relay/", [track("x")], headers={"Authorization": guess})
                )
            )
        assert daemon.post("/ingest/relay/", [track("ok-1")], headers=good)[0] == 200
        assert daemon.post("/ingest/relay/", [track("bad-1", poison=True)], headers=good)[0] == 200
        for endpoint in ENDPOINTS:
            body, headers = endpoint.valid([f"{endpoint.name}-ok"])
            status, answer = daemon.request("POST", endpoint.url(), body, headers)
            assert 200 <= status < 300, answer
            body, headers = endpoint.valid([f"{endpoint.name}-bad"], poison=True)
            assert 200 <= daemon.request("POST", endpoint.url(), body, headers)[0] < 300
            for _, bad in endpoint.bad_auth(body)[:4]:
                answers.append(daemon.request("POST", endpoint.url(), body, bad)[1])
        # The destination refuses our credentials for a while (echoing them back)...
        wait_until(lambda: "delivery.auth_failed" in daemon.current_logs(), 20, "auth failure")
        answers.append(daemon.get("/healthz")[1])
        answers.append(daemon.get("/metrics")[1])
        # ...then accepts them and refuses the poisoned records (echoing them back).
        vendor.accept_credentials = True
        state = daemon.config.parent / "state.db"
        names = ["relay", *(e.name for e in ENDPOINTS)]
        wait_until(
            lambda: (
                all(state_counts(state, n)["dead"] >= 1 for n in names)
                and all(state_counts(state, n)["queued"] == 0 for n in names)
            ),
            30,
            "poisoned records dead-lettered, the rest delivered",
        )
        assert all(d["reason"] for n in names for d in dead_letters(state, n))
        answers.append(daemon.get("/healthz")[1])
        outputs = {
            "ingest and HTTP answers": b"\n".join(answers).decode(errors="replace"),
            "connectord check": cli(daemon.config, "check"),
            "connectord status": cli(daemon.config, "status"),
            "connectord status --json": cli(daemon.config, "status", "--json"),
            "connectord dlq list": cli(daemon.config, "dlq", "list", "relay"),
            "connectord dlq list --json": cli(daemon.config, "dlq", "list", "relay", "--json"),
            "connectord plugins --json": cli(daemon.config, "plugins", "--json")[:0]
            + subprocess.run(
                [sys.executable, "-m", "connectord", "plugins", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout,
        }
        assert daemon.stop() == 0
        outputs["daemon log"] = daemon.logs()
        for suffix in ("", "-wal"):
            path = state.with_name(state.name + suffix)
            if path.exists():
                outputs[f"state file {path.name}"] = path.read_bytes().decode("latin-1")
    finally:
        server.stop()
        for upstream in upstreams.values():
            upstream.stop()
    found = {
        (where, secret[:12] + "...")
        for where, text in outputs.items()
        for secret in SECRETS
        if secret in text
    }
    report(
        "secrets in output",
        secrets_configured=len(SECRETS),
        outputs_searched=len(outputs),
        bytes_searched=sum(len(t) for t in outputs.values()),
        secrets_found=len(found),
    )
    assert not found, f"secrets found in: {sorted(found)}"
    assert "delivery.auth_failed" in outputs["daemon log"]
    assert "**********" in outputs["daemon log"], "the echoed secret was redacted, not absent"
