"""Secure by default: constant-time credential checks, private files, loopback bind,
body caps, and TLS verification on outgoing requests."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectord import PushSource, ingest
from connectord.config import DaemonSettings, load_config
from connectord.http import new_session
from connectord.plugins.webhook.destination import WebhookDestination
from connectord.testing import deliver
from tests.chaos.support import report, track, wait_until

ROOT = Path(__file__).resolve().parents[2]
SENSITIVE = (
    "token",
    "secret",
    "password",
    "passcode",
    "write_key",
    "writekey",
    "api_key",
    "apikey",
    "signature",
    "credential",
    "mac",
)


# --- constant-time comparison ---------------------------------------------------------------


def calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def function(module, name: str) -> ast.AST:
    return ast.parse(inspect.getsource(getattr(module, name)))


def looks_sensitive(node: ast.AST) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and getattr(child.func, "attr", "") == "get_secret_value":
            return True
        name = getattr(child, "id", None) or getattr(child, "attr", None)
        if isinstance(name, str) and any(word in name.lower() for word in SENSITIVE):
            return True
    return False


def plain_comparisons_of_secrets(tree: ast.AST) -> list[str]:
    """``==``/``!=`` between two non-literal operands, one of which looks like a credential."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            continue
        if not all(
            isinstance(o, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)) for o in operands
        ):
            continue  # a literal (a scheme name) or a boolean test is not a secret check
        if any(looks_sensitive(o) for o in operands):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def push_source_packages(registry) -> dict[str, Path]:
    packages = {}
    for plugin in registry.types["source"].values():
        if issubclass(plugin.cls, PushSource):
            module = sys.modules[plugin.cls.__module__]
            packages[plugin.name] = Path(module.__file__).parent
    return packages


def test_credential_checks_are_constant_time(registry):
    assert "compare_digest" in calls(function(ingest, "secrets_match"))
    assert "secrets_match" in calls(function(ingest, "verify_signature"))
    packages = push_source_packages(registry)
    assert "http.webhook" in packages
    for name, folder in packages.items():
        sources = {p.name: p.read_text() for p in sorted(folder.glob("*.py"))}
        joined = "\n".join(sources.values())
        assert "secrets_match" in joined or "compare_digest" in joined, (
            f"push source {name} never uses secrets_match / hmac.compare_digest"
        )
        for filename, text in sources.items():
            plain = plain_comparisons_of_secrets(ast.parse(text))
            assert not plain, f"{name} ({folder.name}/{filename}) compares secrets with ==: {plain}"
    report("constant-time checks", push_sources_checked=len(packages))


def test_the_static_check_catches_a_plain_comparison():
    tree = ast.parse("if token == self.options.token.get_secret_value(): pass")
    assert plain_comparisons_of_secrets(tree)
    assert not plain_comparisons_of_secrets(ast.parse('if scheme.lower() == "bearer": pass'))
    assert not plain_comparisons_of_secrets(ast.parse("(key is None) != (secret is None)"))


# --- files ------------------------------------------------------------------------------------


def test_state_and_output_files_are_private_even_with_umask_0(tmp_path, spawn_daemon):
    previous = os.umask(0)  # the worst an operator's shell can hand down
    try:
        daemon = spawn_daemon(
            """
[connectors.demo]
source = { type = "http.webhook", token = "modes-token-123" }
destination = { type = "warehouse", url = "sqlite:///out/warehouse.db" }
"""
        )
    finally:
        os.umask(previous)
    status, _ = daemon.post(
        "/ingest/demo/", [track("m1")], headers={"Authorization": "Bearer modes-token-123"}
    )
    assert status == 200
    out = tmp_path / "out" / "warehouse.db"
    wait_until(lambda: out.exists() and out.with_name("warehouse.db-wal").exists(), 20, "output")
    state = tmp_path / "state.db"
    modes = {}
    for path in (state, *(state.with_name(f"state.db{s}") for s in ("-wal", "-shm"))):
        modes[path.name] = stat.S_IMODE(path.stat().st_mode)
        assert modes[path.name] == 0o600, f"{path.name} is {oct(modes[path.name])}"
    for path in (out, out.with_name("warehouse.db-wal")):
        modes[path.name] = stat.S_IMODE(path.stat().st_mode)
        assert modes[path.name] & 0o027 == 0, f"{path.name} is {oct(modes[path.name])}"
    report("file modes", **{name: oct(mode) for name, mode in modes.items()})


# --- listening ----------------------------------------------------------------------------------


def test_the_default_bind_is_loopback(tmp_path, registry):
    assert DaemonSettings().listen.startswith("127.0.0.1:")
    config = tmp_path / "connectors.toml"
    config.write_text("[daemon]\nstate = 'x.db'\n")
    assert load_config(config, registry).daemon.listen == "127.0.0.1:8787"
    shipped = tomllib.loads((ROOT / "connectors.toml").read_text())
    assert shipped["daemon"]["listen"].startswith("127.0.0.1:")


def listening(port: int) -> list[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_a_running_daemon_listens_on_loopback_only(spawn_daemon):
    daemon = spawn_daemon(
        '[connectors.demo]\nsource = { type = "http.webhook", token = "bind-token-123" }\n'
        'destination = { type = "warehouse", url = "sqlite:///w.db" }\n'
    )
    port = int(daemon.listen.rpartition(":")[2])
    assert listening(port) == ["0100007F"]  # 127.0.0.1, and nothing else


# --- body caps --------------------------------------------------------------------------------


def test_daemon_wide_body_limit_caps_every_endpoint(spawn_daemon):
    # [daemon] max_body_bytes was accepted but enforced nowhere: a plugin's own larger
    # limit applied instead.
    daemon = spawn_daemon(
        '[connectors.demo]\nsource = { type = "http.webhook", token = "cap-token-123" }\n'
        'destination = { type = "warehouse", url = "sqlite:///w.db" }\n',
        daemon="max_body_bytes = 2048",
    )
    headers = {"Authorization": "Bearer cap-token-123", "Content-Type": "application/json"}
    big = orjson.dumps([track("big", pad="p" * 4000)])
    status, body = daemon.request("POST", "/ingest/demo/", big, headers)
    assert status == 413 and b"2048" in body
    host, _, port = daemon.listen.rpartition(":")
    import http.client

    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(
        "POST",
        "/ingest/demo/",
        body=iter([big[:1000], big[1000:]]),
        headers={**headers, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 413, response.read()
    small = orjson.dumps([track("small")])
    assert daemon.request("POST", "/ingest/demo/", small, headers)[0] == 200


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture
def https_server(self_signed):
    key, cert = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    hits = []

    async def hook(request):
        hits.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def start():
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=context).start()

    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{port}", cert, hits
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


async def test_outgoing_requests_verify_certificates(https_server):
    url, cert, hits = https_server
    session = new_session(timeout=10)
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.post(f"{url}/hook", json={}) as response:
                await response.read()
    finally:
        await session.close()
    # The same server is fine for a client that trusts its certificate: the refusal
    # above is certificate verification, not a broken server.
    trusting = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cert)))
    async with (
        aiohttp.ClientSession(connector=trusting) as client,
        client.post(f"{url}/hook", json={}) as response,
    ):
        assert response.status == 200
    assert len(hits) == 1
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await deliver(WebhookDestination, {"url": f"{url}/hook"}, [track("tls")])
    assert len(hits) == 1, "nothing was sent to the unverified server"
