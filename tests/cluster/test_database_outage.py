"""PostgreSQL unreachable for about 5 s under two daemons taking push requests.

The database is a throwaway server of this test (never the shared local one), stopped
with ``pg_ctl stop -m fast`` and started again on the same port and data. Meanwhile a
client posts to both daemons. While the database is down a daemon must answer 503 with
``Retry-After`` (it cannot store the records), never 2xx: every record it acknowledged
reaches the sink after the database is back, and the daemons take requests again.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.backends.pgserver import ThrowawayPostgres, database
from tests.chaos.support import duplicates, report, wait_until
from tests.cluster.support import Cluster, Pusher
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "outage-token-0123456789"
OUTAGE_SECONDS = 5.0


def test_a_database_outage_is_answered_503_and_loses_nothing(tmp_path, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    postgres = ThrowawayPostgres().start()
    pusher = None
    try:
        with database(postgres.admin_url) as url:
            cluster = Cluster(
                tmp_path,
                f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}
""",
                state=url,
                names=["node-a", "node-b"],
            )
            try:
                cluster.start()
                for address, node in zip(cluster.addresses, ["node-a", "node-b"], strict=True):
                    metrics = urllib.request.urlopen(f"http://{address}/metrics").read()
                    assert f'connectord_node_info{{node="{node}"}} 1.0'.encode() in metrics
                pusher = Pusher(cluster.addresses, ["relay"], TOKEN, interval=0.01)
                pusher.start()
                wait_until(lambda: pusher.acknowledged() > 50, 20, "requests taken")
                postgres.pause()
                down_at = time.monotonic()
                acked_at_stop = pusher.acknowledged()
                statuses_before = dict(pusher.statuses)
                time.sleep(OUTAGE_SECONDS)
                acked_during = pusher.acknowledged() - acked_at_stop
                postgres.resume()
                outage = time.monotonic() - down_at
                back = pusher.acknowledged()
                wait_until(lambda: pusher.acknowledged() > back + 50, 30, "requests taken again")
                recovered = time.monotonic() - down_at - outage
                pusher.stop()
                acked = pusher.acked["relay"]
                wait_until(
                    lambda: acked <= set(sink.message_ids()), 60, "every acknowledged delivered"
                )
            finally:
                if pusher is not None:
                    pusher.stop()
                cluster.close()
    finally:
        postgres.stop()
    refused = {s: n - statuses_before.get(s, 0) for s, n in pusher.statuses.items() if s >= 500}
    report(
        "PostgreSQL outage under two daemons",
        outage_seconds=round(outage, 1),
        acknowledged=len(acked),
        acknowledged_during_outage=acked_during,
        refused_by_status=refused,
        retry_after=sorted(set(pusher.retry_after)),
        seconds_to_take_requests_again=round(recovered, 2),
        duplicates=duplicates(sink.message_ids()),
    )
    assert refused.get(503), f"no 503 while the database was down: {pusher.statuses}"
    assert set(refused) == {503}, f"other 5xx answers: {refused}"
    assert None not in pusher.retry_after, "a 503 without Retry-After"
