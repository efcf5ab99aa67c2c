"""Who may use the status page: the loopback rule, tokens, sessions and CSRF."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from connectord.ui.security import COOKIE, Guard, is_loopback

TOKEN = "a-long-admin-token-for-tests"


def request(peer="127.0.0.1", host="127.0.0.1:8787", method="GET", **headers):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (
        (peer, 40000) if key == "peername" else default
    )
    return make_mocked_request(
        method, "/ui/", headers={"Host": host, **headers}, transport=transport
    )


def guard(listen="127.0.0.1", token=TOKEN):
    return Guard(listen, lambda: token)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_names(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["192.0.2.2", "0.0.0.0", "::", "example.com", "", None])
def test_not_loopback(host):
    assert not is_loopback(host)


def test_loopback_listener_and_peer_is_open():
    assert guard().allowed(request())
    assert guard().allowed(request(host="localhost:8787"))


def test_non_loopback_listener_needs_the_token_even_from_loopback():
    for listen in ("0.0.0.0", "192.0.2.2", "::"):
        assert not guard(listen).allowed(request())


def test_non_loopback_peer_needs_the_token():
    assert not guard().allowed(request(peer="192.0.2.7"))


def test_forwarded_requests_are_not_local():
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"):
        assert not guard().allowed(request(**{header: "203.0.113.9"}))


def test_dns_rebinding_host_is_not_local():
    assert not guard().allowed(request(host="attacker.example:8787"))


def test_bearer_token():
    g = guard("192.0.2.2")
    assert g.allowed(request(Authorization=f"Bearer {TOKEN}"))
    assert not g.allowed(request(Authorization="Bearer wrong"))
    assert not guard("192.0.2.2", token=None).allowed(request(Authorization="Bearer "))


def test_session_cookie_is_signed_and_expires():
    g = guard("192.0.2.2")
    cookie = g.new_cookie(now=1000.0)
    assert g.valid_cookie(cookie, now=1001.0)
    assert not g.valid_cookie(cookie, now=1000.0 + 13 * 3600)
    expires, nonce, mac = cookie.split(".")
    assert not g.valid_cookie(f"{int(expires) + 10**6}.{nonce}.{mac}", now=1001.0)
    # A new token invalidates every session made with the old one.
    assert not guard("192.0.2.2", token="another-token-entirely").valid_cookie(cookie, 1001.0)


def test_csrf_needs_token_and_same_origin():
    g = guard("192.0.2.2")
    cookie = g.new_cookie()
    page = request(Cookie=f"{COOKIE}={cookie}")
    csrf = g.csrf(page)
    post = request(method="POST", Cookie=f"{COOKIE}={cookie}", Origin="http://127.0.0.1:8787")
    assert g.form_ok(post, csrf)
    assert not g.form_ok(post, "0" * len(csrf))
    cross = request(method="POST", Cookie=f"{COOKIE}={cookie}", Origin="http://evil.example")
    assert not g.form_ok(cross, csrf)
    # Another browser session has another token.
    other = request(Cookie=f"{COOKIE}={g.new_cookie()}")
    assert g.csrf(other) != csrf
    # Bearer clients are not browsers: no form token needed.
    assert g.form_ok(request(method="POST", Authorization=f"Bearer {TOKEN}"), "")
