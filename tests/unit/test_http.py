"""`connectord.http`: status mapping, Retry-After, redaction before shortening, retries."""

from __future__ import annotations

import email.utils

import aiohttp
import pytest

from connectord.backoff import Backoff
from connectord.errors import AuthError, PermanentError, RetryableError
from connectord.http import call_with_retries, raise_for_status, retry_after_seconds
from connectord.log import REDACTED, set_secrets


@pytest.fixture(autouse=True)
def no_secrets():
    yield
    set_secrets([])


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 399])
def test_below_400_is_not_an_error(status):
    raise_for_status(status, {}, "whatever", vendor="Acme")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (408, RetryableError),
        (409, RetryableError),
        (425, RetryableError),
        (429, RetryableError),
        (500, RetryableError),
        (502, RetryableError),
        (503, RetryableError),
        (504, RetryableError),
        (507, RetryableError),  # any 5xx
        (400, PermanentError),
        (404, PermanentError),
        (413, PermanentError),
        (422, PermanentError),
    ],
)
def test_status_maps_to_the_delivery_error(status, error):
    with pytest.raises(error) as caught:
        raise_for_status(status, {}, "details here", vendor="Acme")
    assert type(caught.value) is error
    assert str(caught.value) == f"Acme answered HTTP {status}: details here"


def test_an_empty_body_gives_just_the_status():
    with pytest.raises(PermanentError, match=r"^Acme answered HTTP 400$"):
        raise_for_status(400, None, "  \n ", vendor="Acme")


@pytest.mark.parametrize("status", [429, 503, 401])
def test_retry_after_is_carried(status):
    with pytest.raises(RetryableError) as caught:
        raise_for_status(status, {"Retry-After": "7"}, "", vendor="Acme")
    assert caught.value.retry_after == 7.0


def test_retry_after_forms():
    now = 1_700_000_000.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds(" 12 ") == 12.0
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("soon") is None
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds(past, now=now) == 0.0


def test_a_long_echoed_secret_is_redacted_before_the_body_is_shortened():
    secret = "sk_live_" + "x" * 400  # longer than the 300-character limit
    set_secrets([secret])
    with pytest.raises(PermanentError) as caught:
        raise_for_status(400, {}, f"bad key {secret} refused", vendor="Acme")
    message = str(caught.value)
    assert secret[:20] not in message
    assert f"bad key {REDACTED} refused" in message


def test_a_long_body_is_shortened_and_whitespace_collapsed():
    with pytest.raises(PermanentError) as caught:
        raise_for_status(400, {}, "line\n\n  " + "y" * 1000, vendor="Acme")
    detail = str(caught.value).removeprefix("Acme answered HTTP 400: ")
    assert len(detail) == 300 and detail.startswith("line yyy") and detail.endswith("...")


FAST = Backoff(0.001, 0.002)


class Calls:
    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.count = 0

    async def __call__(self):
        self.count += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_retryable_and_network_errors_are_retried_until_success():
    retried = []
    call = Calls(
        RetryableError("busy"), aiohttp.ClientConnectionError("reset"), TimeoutError(), "ok"
    )
    result = await call_with_retries(
        call, attempts=5, backoff=FAST, on_retry=lambda n, e, d: retried.append((n, type(e)))
    )
    assert result == "ok" and call.count == 4
    assert retried == [
        (1, RetryableError),
        (2, aiohttp.ClientConnectionError),
        (3, TimeoutError),
    ]


@pytest.mark.parametrize("error", [AuthError("no"), PermanentError("bad")])
async def test_auth_and_permanent_errors_are_raised_at_once(error):
    call = Calls(error, "never")
    with pytest.raises(type(error)):
        await call_with_retries(call, attempts=5, backoff=FAST)
    assert call.count == 1


async def test_after_the_last_attempt_the_error_is_raised():
    call = Calls(*[RetryableError("busy")] * 3)
    with pytest.raises(RetryableError, match="busy"):
        await call_with_retries(call, attempts=3, backoff=FAST)
    assert call.count == 3


async def test_a_network_error_on_the_last_attempt_becomes_retryable():
    call = Calls(aiohttp.ClientConnectionError("reset"), aiohttp.ClientConnectionError("reset"))
    with pytest.raises(RetryableError, match="network error") as caught:
        await call_with_retries(call, attempts=2, backoff=FAST)
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectionError)


async def test_the_vendors_retry_after_sets_the_delay():
    delays = []
    call = Calls(RetryableError("slow down", retry_after=0.05), "ok")
    await call_with_retries(call, backoff=FAST, on_retry=lambda n, e, d: delays.append(d))
    assert delays == [pytest.approx(0.05)]
