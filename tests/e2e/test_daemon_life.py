"""The daemon process: systemd notifications, HMAC-signed webhooks, metrics."""

from __future__ import annotations

import socket
import time

import orjson
import pytest

from connectord.ingest import sign
from connectord.testing import DaemonProcess, write_config

pytestmark = pytest.mark.e2e

SIGNED = """
[connectors.signed]
source = { type = "http.webhook", hmac_secret = "hmac-key-for-tests" }
destination = { type = "warehouse", url = "sqlite:///w.db" }
"""


def test_systemd_readiness_and_stopping_are_notified(tmp_path):
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(20)
    config = write_config(tmp_path, SIGNED)
    daemon = DaemonProcess(config, env={"NOTIFY_SOCKET": address}).start()
    try:
        ready = listener.recv(4096).decode()
        assert "READY=1" in ready and "STATUS=serving 1 connector on" in ready
        daemon.signal(__import__("signal").SIGTERM)
        messages = []
        deadline = time.monotonic() + 20
        while "STOPPING=1" not in "".join(messages) and time.monotonic() < deadline:
            messages.append(listener.recv(4096).decode())
        assert "STOPPING=1" in "".join(messages)
        assert daemon.process.wait(20) == 0
    finally:
        daemon.kill()
        listener.close()


def test_hmac_signed_webhooks(connectord_daemon):
    daemon = connectord_daemon(SIGNED)
    body = orjson.dumps({"type": "track", "userId": "u1", "event": "Signed"})
    status, _ = daemon.request(
        "POST",
        "/ingest/signed/",
        body,
        {
            "Content-Type": "application/json",
            "X-Connectord-Signature": sign("hmac-key-for-tests", body),
        },
    )
    assert status == 200
    old = sign("hmac-key-for-tests", body, timestamp=int(time.time()) - 3600)
    status, answer = daemon.request(
        "POST",
        "/ingest/signed/",
        body,
        {"Content-Type": "application/json", "X-Connectord-Signature": old},
    )
    assert status == 401 and b"outside the 300 s window" in answer
    status, answer = daemon.request(
        "POST", "/ingest/signed/", body, {"Content-Type": "application/json"}
    )
    assert status == 401 and b"missing X-Connectord-Signature" in answer


def test_metrics_count_records_and_rejections(connectord_daemon):
    daemon = connectord_daemon(SIGNED)
    body = orjson.dumps([{"type": "track", "userId": "u1", "event": "A"}] * 3)
    daemon.request(
        "POST",
        "/ingest/signed/",
        body,
        {
            "Content-Type": "application/json",
            "X-Connectord-Signature": sign("hmac-key-for-tests", body),
        },
    )
    daemon.request("POST", "/ingest/signed/", b"{}", {"Content-Type": "application/json"})

    def metrics() -> str:
        return daemon.get("/metrics")[1].decode()

    daemon.wait_for(lambda: 'connectord_records_out_total{connector="signed"} 3.0' in metrics())
    text = metrics()
    assert 'connectord_records_in_total{connector="signed"} 3.0' in text
    assert 'connectord_ingest_rejected_total{code="unauthorized",connector="signed"} 1.0' in text
    assert 'connectord_queue_depth{connector="signed"} 0.0' in text
    assert "connectord_delivery_seconds_bucket" in text
