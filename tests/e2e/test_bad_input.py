"""Hostile and broken requests at a push endpoint: clear 4xx, the daemon keeps serving."""

from __future__ import annotations

import gzip
import sqlite3
import zlib

import pytest

pytestmark = pytest.mark.e2e

TOKEN = "bad-input-token-123"
CONFIG = f"""
[connectors.demo]
source = {{ type = "http.webhook", token = "{TOKEN}", max_body_bytes = 65536 }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
"""
JSON = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
GOOD = b'{"type":"track","userId":"u1","event":"Ok"}'


def gzip_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    out = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(out) + compressor.flush()


CASES = [
    ("no auth", {"Content-Type": "application/json"}, GOOD, 401, "unauthorized"),
    ("wrong token", {**JSON, "Authorization": "Bearer nope"}, GOOD, 401, "unauthorized"),
    ("empty token", {**JSON, "Authorization": "Bearer "}, GOOD, 401, "unauthorized"),
    (
        "basic instead of bearer",
        {**JSON, "Authorization": "Basic Zm9vOmJhcg=="},
        GOOD,
        401,
        "unauthorized",
    ),
    ("invalid json", JSON, b'{"type": "track",', 400, "invalid_json"),
    ("empty body", JSON, b"", 400, "invalid_json"),
    (
        "invalid utf-8",
        JSON,
        b'{"type":"track","userId":"\xff\xfe","event":"x"}',
        400,
        "invalid_json",
    ),
    ("nul bytes", JSON, b"\0\0\0\0", 400, "invalid_json"),
    ("a bare string", JSON, b'"hello"', 400, "invalid_body"),
    ("not a record", JSON, b'{"hello": "world"}', 400, "no_valid_records"),
    ("track without event", JSON, b'{"type":"track","userId":"u1"}', 400, "no_valid_records"),
    ("no user", JSON, b'{"type":"identify","traits":{}}', 400, "no_valid_records"),
    (
        "deep nesting",
        JSON,
        b'{"type":"track","userId":"u","event":"e","properties":'
        + b'{"a":' * 300
        + b"1"
        + b"}" * 301,
        400,
        "invalid_json",
    ),
    ("absurd nesting", JSON, b"[" * 5000 + b"]" * 5000, 400, "invalid_json"),
    (
        "wrong content type",
        {**JSON, "Content-Type": "application/xml"},
        b"<a/>",
        415,
        "unsupported_content_type",
    ),
    ("unknown encoding", {**JSON, "Content-Encoding": "br"}, GOOD, 415, "unsupported_encoding"),
    (
        "broken gzip",
        {**JSON, "Content-Encoding": "gzip"},
        b"\x1f\x8b\x08\x00garbage",
        400,
        "malformed_body",
    ),
    (
        "truncated gzip",
        {**JSON, "Content-Encoding": "gzip"},
        gzip.compress(GOOD)[:-8],
        400,
        "malformed_body",
    ),
    ("oversize body", JSON, b'{"pad":"' + b"x" * 70000 + b'"}', 413, "body_too_large"),
    # 32 MiB of zeros is ~32 KB on the wire (under the body cap), 32 MiB inflated.
    (
        "gzip bomb",
        {**JSON, "Content-Encoding": "gzip"},
        gzip_bomb(32 * 1024 * 1024),
        413,
        "decompressed body exceeds",
    ),
]


def test_every_bad_request_gets_a_clear_4xx_and_good_ones_still_land(connectord_daemon):
    daemon = connectord_daemon(CONFIG)
    for name, headers, body, status, code in CASES:
        got_status, got_body = daemon.request("POST", "/ingest/demo/", body, headers)
        assert got_status == status, f"{name}: {got_status} {got_body[:200]!r}"
        assert code.encode() in got_body, f"{name}: {got_body[:200]!r}"
        assert b"message" in got_body, f"{name}: no explanation"
    # A batch with one bad record keeps the good ones.
    status, body = daemon.post(
        "/ingest/demo/",
        [
            {"type": "track", "userId": "u1", "event": "Kept"},
            {"type": "track", "userId": "u2"},
            {"type": "identify", "userId": "u3", "traits": {"plan": "pro"}},
        ],
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 200
    assert body["accepted"] == 2
    assert body["rejected"] == [{"index": 1, "error": "track record needs an event name"}]
    status, _ = daemon.request(
        "POST", "/ingest/demo/", gzip.compress(GOOD), {**JSON, "Content-Encoding": "gzip"}
    )
    assert status == 200
    warehouse = daemon.config.parent / "warehouse.db"

    def loaded() -> int:
        try:
            with sqlite3.connect(warehouse) as db:
                return db.execute("select count(*) from tracks").fetchone()[0]
        except sqlite3.Error:
            return 0

    daemon.wait_for(lambda: loaded() == 2, message="good records delivered")
    assert daemon.health()["status"] == "ok"
    assert daemon.process.poll() is None


def test_unknown_connector_path_and_method(connectord_daemon):
    daemon = connectord_daemon(CONFIG)
    status, body = daemon.request("POST", "/ingest/nobody/", GOOD, JSON)
    assert status == 404 and b"no push connector named 'nobody'" in body
    status, body = daemon.request("POST", "/ingest/demo/v9/whatever", GOOD, JSON)
    assert status == 404 and b"/ingest/demo/events" in body
    status, body = daemon.request("GET", "/ingest/demo/", None, {})
    assert status == 405 and b"use POST" in body
