"""kill -9 under sustained push load: every acknowledged record is delivered.

A loader thread posts batches over loopback the whole time and remembers every record
answered 2xx. The daemon is killed with SIGKILL at random moments (the seed is printed),
mid-ingest and mid-delivery, and started again on the same state file. At the end every
acknowledged record must be at the destination at least once; duplicates (records
delivered, then re-sent because the kill came before the acknowledgement was stored) are
counted and bounded by what can be in flight at a kill.
"""

from __future__ import annotations

import random
import time

import orjson
import pytest

from tests.chaos.support import Loader, duplicates, report, track, wait_until
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "crash-loop-token-0123"
CYCLES = 12
BATCH_SIZE = 50
CONCURRENCY = 2


def test_kill_9_loop_under_load_loses_no_acknowledged_record(
    tmp_path, emulator_server, spawn_daemon
):
    started = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    sink = SinkEmulator()
    server = emulator_server(sink)
    # A destination that takes a little time per call, so kills land mid-delivery too.
    sink.fail_until(time.time() + 3600, status=0, delay=0.02)
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook", batch_size = {BATCH_SIZE} }}

[connectors.relay.delivery]
batch_size = {BATCH_SIZE}
concurrency = {CONCURRENCY}
retry_initial = 0.1
retry_max = 0.5
""",
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    loader = Loader(
        daemon.listen,
        "/ingest/relay/",
        lambda ids: (orjson.dumps([track(i, cycle=0) for i in ids]), headers),
        batch=10,
        interval=0.005,
        max_seconds=100,
    )
    loader.start()
    cycles = 0
    try:
        while cycles < CYCLES:
            time.sleep(rng.uniform(0.3, 1.5))
            daemon.kill()
            time.sleep(rng.uniform(0.0, 0.3))  # the loader meets a closed port meanwhile
            daemon.start()
            cycles += 1
        time.sleep(1.0)
    finally:
        loader.stop()
    acked = set(loader.acked)
    assert len(acked) > 1000, f"too little load to mean anything: {loader.statuses}"
    wait_until(
        lambda: acked <= set(sink.message_ids()),
        timeout=60,
        message="every acknowledged record delivered after the last restart",
    )
    delivered = sink.message_ids()
    dup = duplicates(delivered)
    rate = dup / len(set(delivered))
    elapsed = time.monotonic() - started
    report(
        "crash loop (kill -9 under load)",
        seed=seed,
        cycles_survived=cycles,
        acknowledged=len(acked),
        delivered_unique=len(set(delivered)),
        delivered_not_acknowledged=len(set(delivered) - acked),
        duplicates=dup,
        duplicate_rate=rate,
        refused_while_down=sum(loader.errors.values()),
        seconds=round(elapsed, 1),
    )
    assert daemon.alive()
    # What a kill can re-send: the batches in flight, plus those delivered whose
    # acknowledgement had not reached the state file yet.
    assert dup <= cycles * CONCURRENCY * BATCH_SIZE * 2, f"{dup} duplicates in {cycles} kills"
    assert rate < 0.25, f"duplicate rate {rate:.1%}"
    assert elapsed < 120, f"the crash loop took {elapsed:.0f} s"
