"""The bad requests thrown at every push endpoint.

`corpus(endpoint)` yields `Case`s: malformed bodies (each properly authenticated, so the
body is what is tested), wrong credentials, wrong methods and encodings, and "wrong types
at every level": a valid payload with each value in turn replaced by values of other
types. ``expect`` is ``"refuse"`` (a 4xx with a message) or ``"either"`` (a 4xx with a
message, or a 2xx whose records are then delivered or dead-lettered cleanly).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.hostile.endpoints import JSON, Headers, PushEndpoint

WRONG_VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x" * 300, [], {}, 2**63, "\u0000"]


@dataclass
class Case:
    name: str
    body: bytes | Any
    headers: Headers
    expect: str = "refuse"
    method: str = "POST"
    path: str | None = None
    chunked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def gzip_bomb(size: int, wbits: int = 16 + zlib.MAX_WBITS) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = b"\0" * (1024 * 1024)
    return b"".join(compressor.compress(chunk) for _ in range(size // len(chunk))) + (
        compressor.flush()
    )


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


ODD_BUT_VALID = frozenset(
    {"2^64 integer", "lone surrogate escape", "NUL inside JSON", "empty array"}
)
"""Valid JSON: refusing them is as fine as accepting and delivering them."""


def malformed_bodies(endpoint: PushEndpoint) -> list[tuple[str, bytes]]:
    valid, _ = endpoint.valid(["shape"])
    big = endpoint.max_body_bytes
    return [
        ("empty body", b""),
        ("whitespace only", b" \n\t "),
        ("truncated JSON", valid[: len(valid) // 2]),
        ("one brace", b"{"),
        ("one bracket", b"["),
        ("missing value", b'{"batch":}'),
        ("trailing comma", valid[:-1] + b",}" if valid.endswith(b"}") else valid[:-1] + b",]"),
        ("single quotes", b"{'type': 'track'}"),
        ("NaN", b'{"type":"track","userId":"u","event":"e","properties":{"x":NaN}}'),
        ("Infinity", b"[Infinity]"),
        ("comment", b"// hi\n" + valid),
        ("BOM", b"\xef\xbb\xbf" + valid),
        ("two documents", valid + valid),
        ("null", b"null"),
        ("true", b"true"),
        ("a number", b"42"),
        ("a string", b'"track"'),
        ("empty object", b"{}"),
        ("empty array", b"[]"),
        ("array of nulls", b"[null, null]"),
        ("array of arrays", b"[[], [[]]]"),
        ("invalid UTF-8 byte", valid.replace(b"Hostile", b"Host\xffle")),
        ("overlong UTF-8", valid.replace(b"Hostile", b"Host\xc0\xafle")),
        ("UTF-8 surrogate", valid.replace(b"Hostile", b"Host\xed\xa0\x80le")),
        ("truncated UTF-8", valid.replace(b"Hostile", b"Host\xe2\x82le")),
        ("lone surrogate escape", valid.replace(b"Hostile", b"Host\\ud800le")),
        ("raw NUL bytes", b"\0" * 64),
        ("NUL inside JSON", valid.replace(b"Hostile", b"Host\0le")),
        ("raw control chars in a string", valid.replace(b"Hostile", b"Host\x01\x02le")),
        ("nesting 300 deep", nested(300)),
        ("nesting 5000 deep", b"[" * 5000 + b"]" * 5000),
        ("nesting 100000 deep", b"[" * 100_000),
        ("huge float", b'[{"type":"track","userId":"u","event":"e","properties":{"x":1e999}}]'),
        ("huge negative float", b'{"x":-1e999}'),
        (
            "2^64 integer",
            b'{"batch":[{"type":"track","userId":"u","event":"e","n":18446744073709551616}]}',
        ),
        ("10000-digit integer", b'{"x":' + b"9" * 10_000 + b"}"),
        ("oversize body", b'{"pad":"' + b"x" * (big + 10) + b'"}'),
        ("not JSON at all", b"<xml>hello</xml>"),
        ("form encoded", b"type=track&userId=u&event=e"),
    ]


def corpus(endpoint: PushEndpoint) -> Iterator[Case]:
    auth = endpoint.authenticate
    for name, body in malformed_bodies(endpoint):
        expect = "either" if name in ODD_BUT_VALID else "refuse"
        yield Case(name, body, {"Content-Type": JSON, **auth(body)}, expect=expect)
    valid, _ = endpoint.valid(["enc"])
    yield from encodings(endpoint, valid)
    yield from content_types(endpoint, valid)
    for name, headers in endpoint.bad_auth(valid):
        yield Case(f"auth: {name}", valid, {"Content-Type": JSON, **headers})
    # The right credentials for another body: a signature must not be reusable.
    yield Case(
        "auth: credentials of another body",
        valid.replace(b"enc", b"ENC"),
        {"Content-Type": JSON, **auth(valid)},
        expect="refuse" if auth(valid) != auth(b"other") else "either",
    )
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        yield Case(f"method {method}", valid, {"Content-Type": JSON, **auth(valid)}, method=method)
    yield Case(
        "unknown path", valid, {"Content-Type": JSON, **auth(valid)}, path=endpoint.url() + "zz/"
    )
    yield Case(
        "unknown connector", valid, {"Content-Type": JSON, **auth(valid)}, path="/ingest/nobody/"
    )
    yield Case(
        "path traversal", valid, {"Content-Type": JSON, **auth(valid)}, path="/ingest/../healthz/"
    )
    oversize = b'{"pad":"' + b"x" * (endpoint.max_body_bytes + 10) + b'"}'
    yield Case(
        "oversize chunked body (no Content-Length)",
        oversize,
        {"Content-Type": JSON, **auth(oversize)},
        chunked=True,
    )
    big_message = endpoint.valid(["big"], blob="z" * endpoint.max_body_bytes)[0]
    yield Case("oversize message", big_message, {"Content-Type": JSON, **auth(big_message)})
    yield from wrong_types(endpoint)


def encodings(endpoint: PushEndpoint, valid: bytes) -> Iterator[Case]:
    cases = [
        ("gzip bomb (32 MiB of zeros)", gzip_bomb(32 * 2**20), "gzip"),
        ("deflate bomb", gzip_bomb(32 * 2**20, zlib.MAX_WBITS), "deflate"),
        ("garbage declared gzip", b"\x1f\x8b\x08\x00garbage", "gzip"),
        ("truncated gzip", gzip.compress(valid)[:-8], "gzip"),
        ("plain JSON declared gzip", valid, "gzip"),
        ("gzip of invalid JSON", gzip.compress(b"{nope"), "gzip"),
        ("gzip inside gzip", gzip.compress(gzip.compress(valid)), "gzip"),
        ("brotli", valid, "br"),
        ("compress", valid, "compress"),
        ("gzip, chained", gzip.compress(valid), "gzip, br"),
    ]
    for name, body, encoding in cases:
        yield Case(
            f"encoding: {name}",
            body,
            {"Content-Type": JSON, "Content-Encoding": encoding, **endpoint.authenticate(body)},
        )


def content_types(endpoint: PushEndpoint, valid: bytes) -> Iterator[Case]:
    expect = "refuse" if endpoint.refuses_wrong_content_type else "either"
    for ctype in (
        "application/xml",
        "text/html",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "image/png",
    ):
        yield Case(
            f"content type {ctype}",
            valid,
            {"Content-Type": ctype, **endpoint.authenticate(valid)},
            expect=expect,
        )


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in a JSON document, the root excluded."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from paths(child, (*prefix, index))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = orjson.loads(orjson.dumps(document))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


def wrong_types(endpoint: PushEndpoint) -> Iterator[Case]:
    """Each value of a one-record payload replaced by each value of `WRONG_VALUES`."""
    payload = endpoint.payload(["typed"], {})
    for path in paths(payload):
        for value in WRONG_VALUES:
            body = orjson.dumps(replaced(payload, path, value))
            shown = ".".join(map(str, path))
            yield Case(
                f"wrong type at {shown}: {type(value).__name__}",
                body,
                {"Content-Type": JSON, **endpoint.authenticate(body)},
                expect="either",
            )
