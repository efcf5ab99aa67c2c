"""Three daemons on one PostgreSQL database, killed with SIGKILL one at a time.

Three daemons with fixed node names share a fresh database (``lease_ttl = 3``). They
run push connectors (``http.webhook`` into a webhook sink each) and pull connectors
(``test.numbers``, every 5 s, with a known end, into a sink each). A client thread sends
single-record requests with unique messageIds round-robin over the daemons, retrying
on the next one, and counts a record acknowledged only on a 2xx answer. Meanwhile a
random daemon is killed with SIGKILL every 3 to 7 s and started again 2 s later.

The loop lasts ``CONNECTORD_CLUSTER_SECONDS`` (default 30 s, what fits the time `make
test` has for this suite; the issue asks for 120 s: set the variable to run it longer).

Passing means: no acknowledged messageId is missing from its sink; duplicates stay
within what the kills had in flight; no two processes ever read one pull connector at
the same time (the source holds a file lock while it reads, which the kernel drops when
a reader dies, and records any read that found it taken); the stored checkpoints only
move forward and end at the source's end; and every connector the killed daemon owned
is owned under a new epoch within lease_ttl + 2 s of the kill, as another daemon's
``/healthz`` reports it.
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from tests.chaos.support import duplicates, report, wait_until
from tests.cluster.support import (
    TTL,
    CheckpointWatch,
    Cluster,
    Pusher,
    new_owner_after,
    overlaps,
    owners_seen,
)
from tests.emulators.sink import SinkEmulator
from tests.fixtures.numbers_plugin import install_plugin

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECONDS = float(os.environ.get("CONNECTORD_CLUSTER_SECONDS", "30"))
TOKEN = "cluster-token-0123456789"
PUSH = ["push1", "push2", "push3", "push4"]
PULL = ["pull1", "pull2", "pull3", "pull4"]
COUNT = 1000
BATCH = 10
BATCH_SIZE = 20
NODES = ["node-a", "node-b", "node-c"]


def connectors_toml(sinks: dict[str, str], reads_dir: str) -> str:
    delivery = f"delivery = {{ batch_size = {BATCH_SIZE}, retry_initial = 0.1, retry_max = 0.5 }}"
    parts = [
        f"""
[connectors.{name}]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sinks[name]}/hook", batch_size = {BATCH_SIZE} }}
{delivery}
"""
        for name in PUSH
    ]
    parts += [
        f"""
[connectors.{name}]
schedule = "every 5s"
source = {{ type = "test.numbers", count = {COUNT}, batch = {BATCH}, pause = 0.2, \
reads_dir = "{reads_dir}" }}
destination = {{ type = "webhook", url = "{sinks[name]}/hook" }}
{delivery}
"""
        for name in PULL
    ]
    return "".join(parts)


def test_three_daemons_on_postgres_survive_a_kill_9_loop(tmp_path, pg_url, emulator_server):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    sinks = {name: SinkEmulator() for name in PUSH + PULL}
    urls = {name: emulator_server(sink).url for name, sink in sinks.items()}
    reads = tmp_path / "reads"
    reads.mkdir()
    env = install_plugin(tmp_path / "site")
    cluster = Cluster(
        tmp_path, connectors_toml(urls, str(reads)), state=pg_url, names=NODES, env=env
    )
    watch = CheckpointWatch(pg_url)
    pusher = Pusher(cluster.addresses, PUSH, TOKEN, interval=0.005)
    takeovers: list[float] = []
    late: list[str] = []
    kills = 0
    try:
        cluster.start()
        watch.start()
        pusher.start()
        started = time.monotonic()
        restart = threading.Timer(0, lambda: None)
        restart.start()
        next_kill = started + rng.uniform(3, 7)
        while time.monotonic() - started < SECONDS:
            time.sleep(max(0.0, next_kill - time.monotonic()))
            next_kill = time.monotonic() + rng.uniform(3, 7)
            restart.join()  # the previous victim is started again before the next kill
            victim = rng.choice(NODES)
            seen = [owners_seen(cluster.nodes[n]) for n in NODES if n != victim]
            owned = {
                name: owner["epoch"]
                for name, owner in max(seen, key=len).items()
                if owner["node"] == victim
            }
            cluster.nodes[victim].kill()
            kills += 1
            killed_at = time.monotonic()
            # Started again 2 s after the kill, while the takeovers are being timed.
            restart = threading.Timer(2, cluster.nodes[victim].start, kwargs={"wait": False})
            restart.start()
            for name, epoch in owned.items():
                left = TTL + 2 - (time.monotonic() - killed_at)
                found = new_owner_after(cluster, name, epoch, exclude=victim, timeout=left)
                if found is None:
                    late.append(f"{name} (kill {kills} of {victim})")
                else:
                    takeovers.append(time.monotonic() - killed_at)
        restart.join()
        loop_seconds = time.monotonic() - started
    finally:
        pusher.stop()
        try:
            every = {name: {f"n-{n}" for n in range(COUNT)} for name in PULL}
            acked = pusher.acked

            def all_delivered() -> bool:
                return all(acked[name] <= set(sinks[name].message_ids()) for name in PUSH) and all(
                    every[name] <= set(sinks[name].message_ids()) for name in PULL
                )

            wait_until(all_delivered, 90, "every acknowledged and every pulled record delivered")
            wait_until(
                lambda: all(watch.seen.get(n, [None])[-1] == COUNT - 1 for n in PULL),
                10,
                "the checkpoints at the source's end",
            )
        finally:
            watch.stop()
            cluster.close()
    push_dup = sum(duplicates(sinks[name].message_ids()) for name in PUSH)
    pull_dup = sum(duplicates(sinks[name].message_ids()) for name in PULL)
    report(
        "cluster crash loop (3 daemons, PostgreSQL, kill -9)",
        seed=seed,
        seconds=round(loop_seconds, 1),
        kills=kills,
        acknowledged=pusher.acknowledged(),
        push_duplicates=push_dup,
        pulled=COUNT * len(PULL),
        pull_duplicates=pull_dup,
        client_retries=pusher.retries,
        takeovers=len(takeovers),
        takeover_max_s=round(max(takeovers, default=0.0), 2),
        takeover_mean_s=round(sum(takeovers) / max(1, len(takeovers)), 2),
        late_takeovers=len(late),
        overlapping_reads=sum(overlaps(reads).values()),
        checkpoint_values_seen=sum(len(v) for v in watch.seen.values()),
    )
    assert kills >= 4, f"only {kills} kills in {loop_seconds:.0f} s"
    assert pusher.acknowledged() > 200, f"too little load: {pusher.statuses}"
    assert not late, f"not owned again within lease_ttl + 2 s of the kill: {late}"
    assert not overlaps(reads), f"two processes read one connector at once: {overlaps(reads)}"
    assert not watch.backwards(), f"checkpoints moved back: {watch.backwards()}"
    # A kill repeats at most what was in flight: per connector a batch being delivered
    # (push: up to `concurrency` = 1 batch; pull: the batch not yet checkpointed).
    assert push_dup <= kills * len(PUSH) * BATCH_SIZE, f"{push_dup} push duplicates"
    assert pull_dup <= kills * len(PULL) * BATCH, f"{pull_dup} pull duplicates"
