"""Segment's and RudderStack's Node.js libraries against the real daemon, set up exactly
as ``docs/integrations/segment-pendo.md`` says.

``@segment/analytics-node`` builds its URL with ``new URL(path, host)``
(``src/lib/create-url.ts``), which drops any path in ``host``: it needs the host alone
and ``path: "/ingest/<connector>/v1/batch"``. ``@rudderstack/rudder-sdk-node`` appends
``path`` (default ``/v1/batch``) to ``dataPlaneUrl`` as text, so the connector's base URL
works there. Both run under ``node``, from the pinned ``node_modules``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.plugins.pendo.emulator import INTEGRATION_KEY, TRACK_SECRET, PendoEmulator

pytestmark = pytest.mark.e2e

WRITE_KEY = "node-write-key-12345"

SEGMENT = """
const { Analytics } = require("@segment/analytics-node");
const [base, writeKey, wrongHost] = process.argv.slice(1);
// The guide: host is the daemon alone, path carries /ingest/<connector>.
const analytics = new Analytics({
  writeKey,
  host: wrongHost === "1" ? base + "/ingest/seg" : base,
  path: wrongHost === "1" ? undefined : "/ingest/seg/v1/batch",
  maxRetries: 2,
});
const results = [];
analytics.on("http_request", (r) => results.push(r.url));
analytics.on("error", (e) => results.push("error: " + (e.code || e.reason || e)));
analytics.identify({ userId: "node-1", traits: { plan: "team", seats: 12 } });
analytics.group({ userId: "node-1", groupId: "acct-node", traits: { name: "Nodeco" } });
const properties = { amount: 120, currency: "EUR" };
analytics.track({ userId: "node-1", event: "Invoice Paid", properties });
analytics.closeAndFlush().then(() => console.log(JSON.stringify(results)));
"""

RUDDER = """
const Analytics = require("@rudderstack/rudder-sdk-node");
const [base, writeKey] = process.argv.slice(1);
// The guide: dataPlaneUrl is the connector's base URL.
const client = new Analytics(writeKey, { dataPlaneUrl: base + "/ingest/seg", flushAt: 10 });
client.identify({ userId: "rudder-1", traits: { plan: "starter" } });
client.track({ userId: "rudder-1", event: "Report Run", properties: { rows: 7 },
               context: { groupId: "acct-r" } });
client.flush((error) => {
  console.log(JSON.stringify(error ? ["error: " + error.message] : ["ok"]));
});
"""


def config(pendo_url: str) -> str:
    return f"""
[connectors.seg]
source = {{ type = "segment.http", write_key = "{WRITE_KEY}" }}
mapping = [{{ type = "segment.to_pendo" }}]

[connectors.seg.destination]
type = "pendo"
track_secret = "{TRACK_SECRET}"
integration_key = "{INTEGRATION_KEY}"
base_url = "{pendo_url}"
"""


@pytest.fixture
def pipeline(connectord_daemon, emulator_server):
    pendo = PendoEmulator()
    daemon = connectord_daemon(config(emulator_server(pendo).url))
    return daemon, pendo


def run(node: str, node_modules: Path, script: str, *args: str) -> list[str]:
    done = subprocess.run(
        [node, "-e", script, *args],
        cwd=node_modules.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_analytics_node_configured_as_documented(pipeline, node, node_modules):
    daemon, pendo = pipeline
    results = run(node, node_modules, SEGMENT, daemon.url, WRITE_KEY, "0")
    assert results == [f"{daemon.url}/ingest/seg/v1/batch"]
    daemon.wait_for(lambda: pendo.events and pendo.account("acct-node"), message="in Pendo")
    (event,) = pendo.events
    assert (event["event"], event["visitorId"]) == ("Invoice Paid", "node-1")
    assert event["properties"] == {"amount": 120, "currency": "EUR"}
    assert event["accountId"] == "acct-node"
    assert pendo.visitor("node-1") == {"plan": "team", "seats": 12}
    assert pendo.account("acct-node") == {"name": "Nodeco"}


def test_analytics_node_with_the_path_in_host_misses_the_daemon(pipeline, node, node_modules):
    """Why the guide gives ``path``: ``new URL("/v1/batch", host)`` drops ``/ingest/seg``."""
    daemon, pendo = pipeline
    results = run(node, node_modules, SEGMENT, daemon.url, WRITE_KEY, "1")
    assert results[0] == f"{daemon.url}/v1/batch"
    assert any(r.startswith("error:") for r in results)
    assert pendo.events == []


def test_rudderstack_node_configured_as_documented(pipeline, node, node_modules):
    daemon, pendo = pipeline
    assert run(node, node_modules, RUDDER, daemon.url, WRITE_KEY) == ["ok"]
    daemon.wait_for(lambda: pendo.events and pendo.visitor("rudder-1"), message="in Pendo")
    (event,) = pendo.events
    assert (event["event"], event["visitorId"]) == ("Report Run", "rudder-1")
    assert event["properties"] == {"rows": 7}
    assert event["accountId"] == "acct-r"
    assert pendo.visitor("rudder-1") == {"plan": "starter"}
