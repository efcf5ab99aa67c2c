"""A record's id is a non-empty string from the moment it is accepted.

Before: a ``messageId`` that was null or a number reached destinations as-is (only a
missing one was filled in), so a destination that upserts on it merged every record
sent with ``null`` into one.
"""

from __future__ import annotations

import orjson
import pytest

from connectord.records import normalise_id, normalise_pulled
from tests.chaos.support import wait_until
from tests.emulators.sink import SinkEmulator

TOKEN = "ids-token-2718"


def event(n: int, **extra) -> dict:
    return {"type": "track", "userId": f"u{n}", "event": "e", "properties": {"n": n}, **extra}


@pytest.mark.e2e
def test_push_ids_are_strings_and_never_merged(emulator_server, connectord_daemon):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
"""
    )
    sent = [
        event(0, messageId=None),
        event(1, messageId=None),
        event(2, messageId=42),
        event(3, messageId=3.5),
        event(4, messageId=""),
        event(5),
        event(6, messageId=True),
        event(7, messageId={"nested": 1}),
        event(8, messageId="kept-as-is"),
    ]
    status, _ = daemon.post(
        "/ingest/relay/",
        orjson.dumps(sent),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert status == 200
    wait_until(lambda: len(sink.received) == len(sent), 15, "all delivered")
    ids = {r["properties"]["n"]: r["messageId"] for r in sink.received}
    assert all(isinstance(v, str) and v for v in ids.values()), ids
    assert len(set(ids.values())) == len(sent), "two records share an id"
    assert ids[2] == "42" and ids[3] == "3.5" and ids[8] == "kept-as-is"


def test_normalise_id_rules():
    cases = {7: "7", -1: "-1", 2.0: "2.0", "x": "x"}
    for given, expected in cases.items():
        record = {"messageId": given}
        normalise_id(record)
        assert record["messageId"] == expected
    for given in (None, "", "   ", True, [], {}):
        record = {"messageId": given}
        normalise_id(record, lambda: "fresh")
        assert record["messageId"] == "fresh"
    normalise_id(["not", "a", "record"])  # left for validation to refuse


def test_pulled_ids_are_distinct_within_a_batch_and_stable_across_reads():
    def batch():
        return [event(0, messageId=None), event(0, messageId=None), event(1, messageId=9)]

    first, again = batch(), batch()
    normalise_pulled("conn", first, {"cursor": 5})
    normalise_pulled("conn", again, {"cursor": 5})
    assert [r["messageId"] for r in first] == [r["messageId"] for r in again]
    assert first[0]["messageId"] != first[1]["messageId"], "identical records stay distinct"
    assert first[2]["messageId"] == "9"
    elsewhere = batch()
    normalise_pulled("conn", elsewhere, {"cursor": 6})
    assert elsewhere[0]["messageId"] != first[0]["messageId"]
