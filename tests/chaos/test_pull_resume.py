"""A pull run killed again and again resumes from its checkpoint with no gap.

The ``test.numbers`` source (installed through a real entry point) reads slowly; the
daemon is killed with SIGKILL at random moments of its run and started again, and each
start resumes the run from the last checkpoint (the catch-up run). At the end every
number reached the destination, the checkpoint is at the end, each killed run is marked
interrupted, and the only repeats are the batches delivered but not yet checkpointed
when a kill came.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time

import pytest

from tests.chaos.support import duplicates, report, wait_until
from tests.emulators.sink import SinkEmulator
from tests.fixtures.numbers_plugin import install_plugin

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = 400
BATCH = 10
KILLS = 6


def test_pull_run_killed_repeatedly_resumes_without_gaps(tmp_path, emulator_server, spawn_daemon):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    sink = SinkEmulator()
    server = emulator_server(sink)
    env = {**os.environ, **install_plugin(tmp_path / "site")}
    daemon = spawn_daemon(
        f"""
[connectors.numbers]
schedule = "every 1h"
source = {{ type = "test.numbers", count = {COUNT}, batch = {BATCH}, pause = 0.1 }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}
""",
        env=env,
    )
    progress = []
    for kill in range(KILLS):
        if kill:
            daemon.start()
        before = len(set(sink.message_ids()))
        wait_until(
            lambda before=before: len(set(sink.message_ids())) > before,
            20,
            "the resumed run delivers",
        )
        time.sleep(rng.uniform(0.0, 0.6))
        daemon.kill()
        progress.append(len(set(sink.message_ids())))
    assert progress[-1] < COUNT, "the kills should all land mid-run"
    daemon.start()
    expected = {f"n-{n}" for n in range(COUNT)}
    wait_until(lambda: set(sink.message_ids()) >= expected, 60, "every number delivered")

    def runs() -> dict[str, int]:
        with sqlite3.connect(tmp_path / "state.db") as db:
            return dict(db.execute("select status, count(*) from runs group by status"))

    wait_until(lambda: runs().get("succeeded"), 30, "the resumed run finishes")
    assert daemon.stop() == 0
    delivered = sink.message_ids()
    assert set(delivered) == expected
    with sqlite3.connect(tmp_path / "state.db") as db:
        checkpoint = db.execute("select value from checkpoints").fetchone()[0]
    runs = runs()
    dup = duplicates(delivered)
    report(
        "pull resume (kill -9 between batches)",
        seed=seed,
        kills=KILLS,
        records=COUNT,
        progress_at_kills=progress,
        delivered_unique=len(set(delivered)),
        duplicates=dup,
        runs=runs,
    )
    assert checkpoint == f'{{"last":{COUNT - 1}}}'
    assert runs.get("interrupted") == KILLS
    assert runs.get("succeeded") == 1
    # Each kill can repeat at most the batch that was delivered but not yet checkpointed.
    assert dup <= KILLS * BATCH
    # Delivered in order: each number after its predecessor (first deliveries).
    first_seen = list(dict.fromkeys(delivered))
    assert first_seen == [f"n-{n}" for n in range(COUNT)]
