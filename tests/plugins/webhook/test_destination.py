"""The ``webhook`` destination against a sink over real HTTP."""

from __future__ import annotations

import pytest

from connectord import AuthError, PermanentError, RetryableError
from connectord.ingest import verify_signature
from connectord.plugins.webhook.destination import WebhookDestination
from connectord.testing import deliver
from tests.emulators.sink import SinkEmulator

RECORDS = [
    {
        "type": "track",
        "userId": f"u{i}",
        "event": "Order Completed",
        "messageId": f"m{i}",
        "properties": {"total": 10 * i, "items": ["a"]},
    }
    for i in range(3)
]


@pytest.fixture
def sink(emulator_server):
    emulator = SinkEmulator()
    emulator.server = emulator_server(emulator)
    return emulator


async def test_batch_mode_posts_records_signed(sink):
    result = await deliver(
        WebhookDestination, {"url": f"{sink.server.url}/hook", "hmac_secret": "whsec-1"}, RECORDS
    )
    assert not result.rejected
    [request] = sink.requests
    assert request.json() == {"records": RECORDS}
    verify_signature(request.headers["X-Connectord-Signature"], request.body, ["whsec-1"])


async def test_slack_template_posts_one_message_per_record(sink):
    await deliver(
        WebhookDestination,
        {
            "url": f"{sink.server.url}/hook",
            "template": ":moneybag: {event} by {userId}: {properties.total} {properties.items}",
        },
        RECORDS[1:],
    )
    assert [r.json() for r in sink.requests] == [
        {"text": ':moneybag: Order Completed by u1: 10 ["a"]'},
        {"text": ':moneybag: Order Completed by u2: 20 ["a"]'},
    ]


async def test_each_mode_reports_rejects_and_retries_per_record(sink):
    sink.fail_next(1, status=400)
    result = await deliver(
        WebhookDestination, {"url": f"{sink.server.url}/hook", "mode": "each"}, RECORDS
    )
    assert list(result.rejected) == [0] and "HTTP 400" in result.rejected[0]
    sink.requests.clear()
    sink.received.clear()
    sink.fail_next(1, status=429, headers={"Retry-After": "7"})
    with pytest.raises(RetryableError) as caught:
        await deliver(
            WebhookDestination, {"url": f"{sink.server.url}/hook", "mode": "each"}, RECORDS[:1]
        )
    assert caught.value.retry_after == 7
    records = [RECORDS[0], {**RECORDS[1], "properties": {"respond": 503}}, RECORDS[2]]
    result = await deliver(
        WebhookDestination, {"url": f"{sink.server.url}/hook", "mode": "each"}, records
    )
    assert result.retry == {1, 2}, "the first went through; only the rest is retried"


async def test_error_classes(sink):
    url = f"{sink.server.url}/hook"
    for status, error in [(401, AuthError), (500, RetryableError), (422, PermanentError)]:
        sink.fail_next(1, status=status)
        with pytest.raises(error):
            await deliver(WebhookDestination, {"url": url}, RECORDS)
    assert len(sink.received) == 0


async def test_a_destination_that_is_down_is_retried_not_dead_lettered(connectord_daemon):
    """A refused connection keeps records queued (regression: they became dead letters)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = connectord_daemon(f"""
[connectors.down]
source = {{ type = "http.webhook", token = "tok-12345" }}
destination = {{ type = "webhook", url = "http://127.0.0.1:{port}/hook" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.2 }}
""")
    status, _ = daemon.post(
        "/ingest/down/", RECORDS[:1], headers={"Authorization": "Bearer tok-12345"}
    )
    assert status == 200
    daemon.wait_for(lambda: daemon.logs().count("delivery.retry") >= 3, message="retries")
    assert "delivery.rejected" not in daemon.logs()
    assert daemon.health()["connectors"]["down"]["queued"] == 1
