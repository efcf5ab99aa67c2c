"""The owner of a pull connector paused with SIGSTOP past its lease, then resumed.

Two daemons share a PostgreSQL database; a slow ``test.numbers`` run is under way on
one of them when it is stopped with SIGSTOP. The other takes the connector over once the
lease expired and resumes from the stored checkpoint. After SIGCONT the paused daemon
finds its lease gone (its log says ``connector.lease_lost`` or ``lease.dropped``) and
writes nothing under its old epoch: the stored checkpoint never moves back, and the
only repeated records are the batch it had in flight and the one not yet checkpointed
when it stopped.
"""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from tests.chaos.support import duplicates, report, wait_until
from tests.cluster.support import TTL, CheckpointWatch, Cluster, new_owner_after, owners_seen
from tests.emulators.sink import SinkEmulator
from tests.fixtures.numbers_plugin import install_plugin

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = 200
BATCH = 10


def test_a_paused_owner_writes_nothing_under_its_stale_epoch(tmp_path, pg_url, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    cluster = Cluster(
        tmp_path,
        f"""
[connectors.numbers]
schedule = "every 1h"
source = {{ type = "test.numbers", count = {COUNT}, batch = {BATCH}, pause = 0.3 }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}
""",
        state=pg_url,
        names=["node-a", "node-b"],
        env=install_plugin(tmp_path / "site"),
    )
    watch = CheckpointWatch(pg_url)
    paused = None
    try:
        cluster.start()
        watch.start()
        wait_until(lambda: len(sink.received) >= 3 * BATCH, 30, "the run under way")
        witness = cluster.nodes["node-a"]
        owner = wait_until(lambda: owners_seen(witness).get("numbers"), 10, "an owner")
        paused = cluster.nodes[owner["node"]]
        other = next(n for n in cluster.nodes if n != owner["node"])
        paused.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        at_stop = len(sink.received)
        found = new_owner_after(
            cluster, "numbers", owner["epoch"], exclude=owner["node"], timeout=TTL + 5
        )
        assert found is not None, "nobody took the paused node's connector over"
        takeover, new_owner = found
        assert new_owner["node"] == other
        wait_until(lambda: len(sink.received) > at_stop + BATCH, 15, "the new owner delivers")
        log_before = len(paused.logs())
        paused.signal(signal.SIGCONT)
        paused_for = time.monotonic() - stopped_at
        paused, resumed = None, cluster.nodes[owner["node"]]

        def gave_up() -> bool:
            after = resumed.logs()[log_before:]
            return '"connector.lease_lost"' in after or '"lease.dropped"' in after

        wait_until(gave_up, 10, "the resumed node gives the connector up")
        expected = {f"n-{n}" for n in range(COUNT)}
        wait_until(lambda: set(sink.message_ids()) >= expected, 60, "every number delivered")
        wait_until(lambda: watch.seen.get("numbers", [None])[-1] == COUNT - 1, 10, "at the end")
        after = resumed.logs()[log_before:]
    finally:
        if paused is not None:
            paused.signal(signal.SIGCONT)
        watch.stop()
        cluster.close()
    dup = duplicates(sink.message_ids())
    report(
        "paused owner (SIGSTOP past the lease)",
        paused_seconds=round(paused_for, 2),
        takeover_seconds=round(takeover, 2),
        new_epoch=new_owner["epoch"],
        duplicates=dup,
        lease_lost_logged='"connector.lease_lost"' in after,
        lease_dropped_logged='"lease.dropped"' in after,
        checkpoints_seen=len(watch.seen.get("numbers", [])),
    )
    assert not watch.backwards(), f"checkpoint moved back: {watch.backwards()}"
    # Back in the cluster it may be handed the connector again, but only under a new
    # lease: no run starts on it before a `lease.acquired` above the new owner's epoch.
    events = [orjson.loads(line) for line in after.splitlines() if line.startswith("{")]
    mine = [e for e in events if e.get("connector") == "numbers"]
    names = [e["event"] for e in mine]
    first_start = names.index("run.started") if "run.started" in names else len(names)
    before_start = mine[:first_start]
    assert {"connector.lease_lost", "lease.dropped"} & {e["event"] for e in before_start}
    if first_start < len(names):
        acquired = [e for e in before_start if e["event"] == "lease.acquired"]
        assert acquired and acquired[-1]["epoch"] > new_owner["epoch"], names
    # The batch not yet checkpointed at SIGSTOP, and the one in flight at SIGCONT.
    assert dup <= 2 * BATCH, f"{dup} duplicates"
