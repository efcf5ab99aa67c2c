"""Property-based tests (hypothesis) of every push endpoint's parser, every mapping, the
core parsers and the config loader.

The invariant is the same everywhere: arbitrary input yields either a valid result or
the error the framework turns into a clear 4xx / dead letter / config error; never an
unexpected exception (a 500, a crashed delivery, a traceback).
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectord import IngestError, PushSource, RecordRejected
from connectord.api import PluginContext
from connectord.config import ConfigError, load_config
from connectord.connector import serialize
from connectord.http import new_session, retry_after_seconds
from connectord.ingest import decompress, parse_json, verify_signature
from connectord.metrics import Metrics
from connectord.records import now_iso, parse_time, problem
from connectord.server import create_app
from connectord.state import MemoryKeyValue
from tests.chaos.support import report
from tests.hostile.endpoints import ENDPOINTS, PushEndpoint

EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TRIED: dict[str, int] = {}

# --- strategies ----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
ids = st.text(min_size=1, max_size=20)


@st.composite
def records(draw) -> dict[str, Any]:
    """Records valid in the record model, with arbitrary content where content is free."""
    kind = draw(
        st.sampled_from(
            ["track", "identify", "group", "page", "screen", "alias", "audience", "metric"]
        )
    )
    record: dict[str, Any] = {"type": kind, "messageId": draw(ids)}
    if kind != "metric" or draw(st.booleans()):
        record[draw(st.sampled_from(["userId", "anonymousId"]))] = draw(ids)
    text = st.text(max_size=20)
    if kind == "track":
        record.update(event=draw(ids), properties=draw(json_objects))
    elif kind in ("identify", "group"):
        record["traits"] = draw(json_objects)
        if kind == "group":
            record["groupId"] = draw(ids)
    elif kind in ("page", "screen"):
        record.update(name=draw(text), properties=draw(json_objects))
    elif kind == "alias":
        record["previousId"] = draw(ids)
    elif kind == "audience":
        record.update(
            audience={"id": draw(ids), "name": draw(text)},
            action=draw(st.sampled_from(["add", "remove"])),
        )
    else:
        number = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
        record.update(
            metric=draw(ids),
            values=draw(st.dictionaries(st.text(min_size=1, max_size=10), number, max_size=4)),
        )
    if draw(st.booleans()):
        record["context"] = draw(json_objects)
    if draw(st.booleans()):
        record["timestamp"] = draw(
            st.text(max_size=30) | st.integers(-(2**63), 2**63 - 1) | st.none()
        )
    return record


# --- push endpoints through the real HTTP layer, in-process ------------------------------------


def build_source(
    endpoint: PushEndpoint, registry, captured: list, upstream: str | None = None
) -> PushSource:
    table = tomllib.loads(f"x = {endpoint.source_table(upstream)}")["x"]
    plugin = registry.get("source", table.pop("type"))

    async def enqueue(batch):
        captured.append(serialize(batch, now_iso()))  # what the daemon stores

    async def dead_letter(parts):  # what the daemon keeps as dead letters: with a reason
        assert all(isinstance(reason, str) and reason for _, reason in parts), parts

    sessions: list[Any] = []

    def http():  # a real client session, opened on first use inside the test's loop
        if not sessions:
            sessions.append(new_session(timeout=10))
        return sessions[0]

    context = PluginContext(
        connector=endpoint.name,
        log=structlog.get_logger(),
        state=MemoryKeyValue(),
        base_dir=Path.cwd(),
        http=http,
        enqueue=enqueue,
        dead_letter=dead_letter,
    )
    captured.append(sessions)  # closed by the caller
    return plugin.cls(plugin.options_model.model_validate(table), context)


def mutated_payloads(endpoint: PushEndpoint):
    """Arbitrary JSON, and valid payloads whose records carry arbitrary content."""
    valid = st.builds(
        lambda n, props: endpoint.payload([f"id-{i}" for i in range(n)], props),
        st.integers(min_value=1, max_value=3),
        json_objects,
    )
    return json_values | valid


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_push_parser_answers_2xx_or_4xx_for_any_json(endpoint, registry):
    captured: list[list[bytes]] = []
    upstream = endpoint.upstream().serve().start() if endpoint.upstream else None
    source = build_source(endpoint, registry, captured, upstream.url if upstream else None)
    sessions = captured.pop()
    runtime = SimpleNamespace(
        started=True,
        source=source,
        log=structlog.get_logger(),
        routes={(r.method.upper(), r.path.strip("/")): r.handler for r in source.routes()},
    )
    app = create_app(lambda: {endpoint.name: runtime}, Metrics(), lambda: (True, {}))
    loop = asyncio.new_event_loop()
    client = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    loop.run_until_complete(source.start())
    answers: dict[int, int] = {}

    @EXAMPLES
    @given(payload=mutated_payloads(endpoint))
    def check(payload):
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", **endpoint.authenticate(body)}
        captured.clear()

        async def post():
            async with client.post(endpoint.url(), data=body, headers=headers) as response:
                return response.status, await response.read()

        status, answer = loop.run_until_complete(post())
        answers[status] = answers.get(status, 0) + 1
        assert status < 500, answer[:300]
        if status >= 400:
            assert endpoint.message(answer), answer[:300]
        else:
            stored = [orjson.loads(b) for batch in captured for b in batch]
            assert all(problem(r) is None for r in stored), stored

    try:
        check()
    finally:
        loop.run_until_complete(source.close())
        for session in sessions:
            loop.run_until_complete(session.close())
        loop.run_until_complete(client.close())
        loop.close()
        if upstream is not None:
            upstream.stop()
    TRIED[f"push parser {endpoint.name}"] = sum(answers.values())
    report("property tests", **TRIED)


def test_every_push_source_has_an_endpoint_entry(registry):
    covered = {tomllib.loads(f"x = {e.source_table()}")["x"]["type"] for e in ENDPOINTS}
    push = {t.name for t in registry.types["source"].values() if t.mode == "push"}
    missing = push - covered
    assert not missing, (
        f"push sources without hostile-input coverage: {sorted(missing)}; add a PushEndpoint "
        "for each to ENDPOINTS in tests/hostile/endpoints.py"
    )


# --- mappings --------------------------------------------------------------------------------

MAPPING_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "fields": [
        {
            "set": {"properties.plan": "traits.plan || 'free'", "event": "event"},
            "drop": ["context.ip", "properties.a.b"],
        },
        {"when": "type == 'track'", "set": {"userId": "properties.user"}},
    ],
    "filter": [{"when": "type == 'track' && properties.n > `1`"}],
    "mparticle.to_pushwoosh": [{}],
    "pushwoosh.to_piano": [{}],
    "segment.to_pendo": [{}, {"anonymous_visitors": True}],
}
"""Options to run each mapping type with; every registered mapping needs an entry."""


def test_every_mapping_has_options_for_the_property_tests(registry):
    missing = set(registry.types["mapping"]) - set(MAPPING_OPTIONS)
    assert not missing, f"add options for {sorted(missing)} to MAPPING_OPTIONS"


@pytest.mark.parametrize(
    ("kind", "options"),
    [(k, o) for k, variants in MAPPING_OPTIONS.items() for o in variants],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_mapping_returns_records_or_a_clean_rejection(kind, options, registry):
    plugin = registry.get("mapping", kind)
    context = PluginContext(
        connector="props",
        log=structlog.get_logger(),
        state=MemoryKeyValue(),
        base_dir=Path.cwd(),
        http=lambda: None,
    )
    mapping = plugin.cls(plugin.options_model.model_validate(options), context)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(mapping.start())
    count = 0

    @settings(EXAMPLES, max_examples=50)
    @given(batch=st.lists(records(), min_size=1, max_size=5))
    def check(batch):
        nonlocal count
        results = loop.run_until_complete(mapping.map_batch(orjson.loads(orjson.dumps(batch))))
        assert len(results) == len(batch)
        for result in results:
            count += 1
            if isinstance(result, Exception):
                assert isinstance(result, RecordRejected), repr(result)
                assert str(result)
                continue
            for out in result:
                assert problem(out) is None, (out, problem(out))
                orjson.dumps(out)

    try:
        check()
    finally:
        loop.run_until_complete(mapping.close())
        loop.close()
    TRIED[f"mapping {kind}"] = TRIED.get(f"mapping {kind}", 0) + count
    report("property tests", **TRIED)


# --- core parsers --------------------------------------------------------------------------------


@EXAMPLES
@given(st.binary(max_size=300) | json_values.map(orjson.dumps))
def test_parse_json_returns_a_value_or_a_400(data):
    try:
        parse_json(data)
    except IngestError as err:
        assert err.status == 400 and err.message


@EXAMPLES
@given(st.binary(max_size=300), st.sampled_from(["gzip", "deflate"]))
def test_decompress_returns_bytes_under_the_cap_or_a_4xx(data, encoding):
    import gzip
    import zlib

    for body in (data, gzip.compress(data), zlib.compress(data), gzip.compress(data)[:-3]):
        try:
            assert len(decompress(body, encoding, 128)) <= 128
        except IngestError as err:
            assert err.status in (400, 413)


@EXAMPLES
@given(st.text(max_size=80) | st.none(), st.binary(max_size=50))
def test_signature_check_accepts_or_answers_401(header, body):
    try:
        verify_signature(header, body, ["the-secret"])
    except IngestError as err:
        assert err.status == 401 and err.message


@EXAMPLES
@given(st.text(max_size=40) | st.none())
def test_retry_after_is_none_or_a_delay(value):
    delay = retry_after_seconds(value)
    assert delay is None or delay >= 0


@EXAMPLES
@given(json_values)
def test_parse_time_returns_a_time_or_none(value):
    moment = parse_time(value)
    assert moment is None or moment.tzinfo is not None


@EXAMPLES
@given(json_values)
def test_problem_never_raises(value):
    assert problem(value) is None or isinstance(problem(value), str)


# --- the config loader ------------------------------------------------------------------

toml_keys = st.sampled_from(
    [
        "daemon",
        "connectors",
        "relay",
        "source",
        "destination",
        "type",
        "token",
        "url",
        "delivery",
        "mapping",
        "schedule",
        "listen",
        "state",
        "enabled",
        "batch_size",
        "when",
        "http.webhook",
        "webhook",
        "filter",
    ]
) | st.text(min_size=1, max_size=8)
toml_values = st.recursive(
    scalars.filter(lambda v: v is not None),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(toml_keys, children, max_size=4)
    ),
    max_leaves=12,
)


def to_toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if abs(value) < 2**63 else f'"{value}"'
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    return (
        "{ "
        + ", ".join(f"{orjson.dumps(k).decode()} = {to_toml(v)}" for k, v in value.items())
        + " }"
    )


@EXAMPLES
@given(st.dictionaries(toml_keys, toml_values, max_size=4) | st.text(max_size=200))
def test_config_loader_returns_a_config_or_a_config_error(tmp_path_factory, document):
    registry = _registry()
    path = tmp_path_factory.mktemp("cfg") / "connectors.toml"
    text = (
        document
        if isinstance(document, str)
        else "\n".join(f"{orjson.dumps(k).decode()} = {to_toml(v)}" for k, v in document.items())
    )
    path.write_text(text)
    try:
        load_config(path, registry, environ={})
    except ConfigError as err:
        assert err.issues and all(i.render(str(path)) for i in err.issues)


_REGISTRY = []


def _registry():
    if not _REGISTRY:
        from connectord.registry import load_registry

        _REGISTRY.append(load_registry())
    return _REGISTRY[0]


# --- the warehouse destination's layout and writes -------------------------------------------


def test_warehouse_lays_out_and_writes_any_valid_records(tmp_path_factory):
    from connectord.plugins.warehouse.destination import WarehouseDestination

    folder = tmp_path_factory.mktemp("warehouse")
    context = PluginContext(
        connector="props",
        log=structlog.get_logger(),
        state=MemoryKeyValue(),
        base_dir=folder,
        http=lambda: None,
    )
    options = WarehouseDestination.Options.model_validate({"url": "sqlite:///w.db"})
    destination = WarehouseDestination(options, context)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(destination.start())
    count = 0

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(records(), min_size=1, max_size=5))
    def check(batch):
        nonlocal count
        count += len(batch)
        # Whatever the content, a valid record is written, not retried forever.
        assert loop.run_until_complete(destination.send(batch)) is None

    try:
        check()
    finally:
        loop.run_until_complete(destination.close())
        loop.close()
    TRIED["warehouse writes"] = count
    report("property tests", **TRIED)
