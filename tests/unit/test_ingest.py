"""Push-ingest helpers: decompression caps, signatures, credentials."""

from __future__ import annotations

import base64
import gzip
import zlib

import pytest
from aiohttp.test_utils import make_mocked_request

from connectord.errors import IngestError
from connectord.ingest import (
    basic_credentials,
    bearer_token,
    decompress,
    parse_json,
    secrets_match,
    sign,
    verify_signature,
)


def test_decompress_within_the_cap():
    assert decompress(gzip.compress(b"x" * 1000), "gzip", 1000) == b"x" * 1000
    assert decompress(zlib.compress(b"y" * 10), "deflate", 100) == b"y" * 10


def test_decompress_refuses_more_than_the_cap_without_inflating_it():
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    with pytest.raises(IngestError) as caught:
        decompress(bomb, "gzip", 1024 * 1024)
    assert caught.value.status == 413


@pytest.mark.parametrize("body", [b"garbage", gzip.compress(b"abc")[:-6]])
def test_decompress_rejects_malformed_input(body):
    with pytest.raises(IngestError) as caught:
        decompress(body, "gzip", 1000)
    assert caught.value.status == 400


def test_parse_json_errors_are_400():
    for body in (b"", b"  ", b"{", b"\xff", b"[" * 2000 + b"]" * 2000):
        with pytest.raises(IngestError) as caught:
            parse_json(body)
        assert caught.value.status == 400 and caught.value.code == "invalid_json"


def test_signatures_verify_and_expire():
    body = b'{"type":"track"}'
    header = sign("key-1", body, timestamp=1_000_000)
    assert verify_signature(header, body, ["other", "key-1"], now=1_000_100) == 1_000_000
    for bad_header, now in [
        (header, 1_000_400),
        (header.replace("v1=", "v1=0"), 1_000_000),
        ("t=abc,v1=00", 1_000_000),
        (None, 1_000_000),
    ]:
        with pytest.raises(IngestError) as caught:
            verify_signature(bad_header, body, ["key-1"], now=now)
        assert caught.value.status == 401
    with pytest.raises(IngestError, match="does not match"):
        verify_signature(header, body + b" ", ["key-1"], now=1_000_000)


def test_secrets_match():
    assert secrets_match("a", ["b", "a"])
    assert not secrets_match("a", ["b"])
    assert not secrets_match(None, ["a"])
    assert not secrets_match("", ["a"])


def test_credentials_from_headers():
    basic = base64.b64encode(b"key:secret").decode()
    request = make_mocked_request("POST", "/", headers={"Authorization": f"Basic {basic}"})
    assert basic_credentials(request) == ("key", "secret")
    assert bearer_token(request) is None
    request = make_mocked_request("POST", "/", headers={"Authorization": "Bearer tok"})
    assert bearer_token(request) == "tok" and basic_credentials(request) is None
    request = make_mocked_request("POST", "/", headers={"Authorization": "Basic !!!"})
    assert basic_credentials(request) is None
