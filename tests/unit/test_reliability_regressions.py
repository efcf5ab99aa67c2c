"""Regression tests for framework bugs the reliability suite found (fast, in-process):
transport errors, request timeouts, unhashable record types, secrets in reasons."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import structlog

from connectord import Destination
from connectord.backoff import Backoff
from connectord.config import DeliverySettings
from connectord.delivery import Pipeline, Throttle


def track(i: int) -> dict:
    return {"type": "track", "userId": f"u{i}", "event": "e", "messageId": f"m{i}"}


class FlakyTransport(Destination):
    """Fails with the given transport errors, one per call, then accepts."""

    type = "flaky"
    max_batch_size = 100

    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0
        self.accepted: list[dict] = []

    async def send(self, records):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.accepted.extend(records)


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientConnectorError(
            aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
            ConnectionRefusedError(111, "refused"),
        ),
        aiohttp.ClientPayloadError("response payload is not completed"),
    ],
    ids=["timeout", "disconnected", "refused", "payload"],
)
async def test_transport_errors_are_retried_not_split_into_dead_letters(error):
    # Before: anything but RetryableError/PermanentError became a PermanentError, so a
    # destination that timed out or dropped connections for long enough got every
    # record of the batch bisected into dead letters.
    # Below `isolate_after` failures the batch is retried whole; beyond it, it is split
    # (to find a record at fault), which still never dead-letters: nothing was accepted.
    for isolate_after, calls in ((20, 11), (5, 12)):
        destination = FlakyTransport([error] * 10)
        throttle = Throttle(Backoff(0.001, 0.002), asyncio.Event())
        pipeline = Pipeline(
            "c",
            [],
            destination,
            throttle=throttle,
            log=structlog.get_logger(),
            isolate_after=isolate_after,
        )
        outcome = await pipeline.process([track(i) for i in range(8)])
        assert outcome.dead == []
        assert outcome.delivered == 8
        assert destination.calls == calls
        assert throttle.healthy


def test_request_timeout_is_a_delivery_setting():
    assert DeliverySettings().request_timeout == 30.0
    assert DeliverySettings(request_timeout=2.5).request_timeout == 2.5
    with pytest.raises(ValueError):
        DeliverySettings(request_timeout=0)


async def test_connector_session_uses_the_request_timeout(tmp_path: Path, registry):
    from connectord.config import load_config
    from connectord.connector import ConnectorRuntime

    config = tmp_path / "connectors.toml"
    config.write_text(
        """
[connectors.relay]
source = { type = "http.webhook", token = "t0ken-value" }
destination = { type = "webhook", url = "http://127.0.0.1:9/hook" }
delivery = { request_timeout = 2.5 }
"""
    )
    connector = load_config(config, registry).connectors["relay"]
    runtime = ConnectorRuntime(connector, state=None, base_dir=tmp_path)  # type: ignore[arg-type]
    session = runtime.http()
    try:
        assert session.timeout.total == 2.5
        assert session.timeout.connect == 2.5
    finally:
        await session.close()


@pytest.mark.parametrize("kind", [[], {}, ["track"], {"track": 1}])
def test_an_unhashable_record_type_is_a_problem_not_a_crash(kind):
    # Before: `kind not in RECORD_TYPES` raised TypeError and the request got a 500.
    from connectord.records import problem

    assert "unknown record type" in problem({"type": kind, "userId": "u", "event": "e"})


def test_secrets_match_takes_header_values_that_are_not_utf8():
    # aiohttp decodes header bytes with surrogateescape; encoding them back as strict
    # UTF-8 raised UnicodeEncodeError and the request got a 500 instead of a 401.
    from connectord.ingest import secrets_match

    garbage = b"\xff\xfe\xfd".decode("utf-8", "surrogateescape")
    assert secrets_match(garbage, ["token-value"]) is False
    assert secrets_match("tok\u00e9n", ["tok\u00e9n"]) is True


async def test_vendor_answers_echoing_a_secret_are_redacted_in_reasons_and_health():
    # Before: /healthz's last_error, dead-letter reasons (state file, `dlq list`) and run
    # errors kept a vendor's error body verbatim, including credentials it echoed back.
    from connectord import PermanentError, RetryableError
    from connectord.log import set_secrets

    secret = "echoed-secret-value-123"

    class Echoing(Destination):
        type = "echoing"

        def __init__(self):
            self.calls = 0

        async def send(self, records):
            self.calls += 1
            if self.calls == 1:
                raise RetryableError(f"HTTP 401: bad key {secret}")
            raise PermanentError(f"HTTP 400: record refused for key {secret}")

    set_secrets([secret])
    try:
        throttle = Throttle(Backoff(0.001, 0.002), asyncio.Event())
        pipeline = Pipeline("c", [], Echoing(), throttle=throttle, log=structlog.get_logger())
        shown: list[str] = []
        original = throttle.failed
        throttle.failed = lambda err: (original(err), shown.append(throttle.last_error))[0]
        outcome = await pipeline.process([track(1)])
        assert shown and secret not in shown[0] and "**********" in shown[0]
        [dead] = outcome.dead
        assert secret not in dead.reason and "**********" in dead.reason
    finally:
        set_secrets([])
