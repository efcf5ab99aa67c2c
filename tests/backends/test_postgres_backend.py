"""Every `StateBackend` method of `PostgresBackend`, against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import inspect

import orjson
import psycopg
import pytest

from connectord.backends import (
    DeadLetter,
    LeaseInfo,
    StaleEpoch,
    StateBackend,
    StateUnavailable,
    connector_lease,
)
from connectord.backends.postgres import PostgresBackend
from connectord.backends.postgres_migrations import MIGRATIONS
from connectord.errors import StateError
from connectord.state import Store


def body(i: int) -> bytes:
    return orjson.dumps({"type": "track", "event": "E", "messageId": f"m{i}"})


async def own(backend: PostgresBackend, connector: str) -> int:
    epoch = await backend.acquire(connector_lease(connector), "node-a", 30)
    assert epoch is not None
    return epoch


async def test_it_is_a_state_backend(backend):
    assert isinstance(backend, StateBackend)


async def test_migrations_are_recorded_and_applied_once_under_concurrency(pg_url):
    stores = [PostgresBackend(pg_url, pool_size=1) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))  # four daemons starting at once
    for s in stores:
        await s.close()
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM connectord_migrations")]
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert names == [name for name, _ in MIGRATIONS]
    assert {"queue", "queue_heads", "dead_letters", "leases", "nodes", "state"} <= tables


async def test_queue_enqueue_read_depth_complete(backend):
    await backend.enqueue_many([("a", [body(1), body(2), body(3)]), ("b", [body(9)])])
    await backend.enqueue_many([("a", [])])  # nothing to do
    assert await backend.queue_depth("a") == 3
    assert await backend.queue_depth() == {"a": 3, "b": 1}
    rows = await backend.read_queue("a", 0, 2)
    assert [r.body for r in rows] == [body(1), body(2)]
    assert rows[0].id < rows[1].id
    rest = await backend.read_queue("a", rows[-1].id, 10)
    assert [r.body for r in rest] == [body(3)]
    epoch = await own(backend, "a")
    dead = [DeadLetter("a", body(2), "400 invalid event")]
    removed = await backend.complete("a", [r.id for r in rows], dead, 1, epoch=epoch)
    assert removed == 2
    assert [r.body for r in await backend.read_queue("a", 0, 10)] == [body(3)]
    counters = await backend.counters("a")
    assert (counters["received"], counters["delivered"], counters["rejected"]) == (3, 1, 1)
    assert counters["last_received_at"] and counters["last_delivered_at"]
    assert await backend.counters("nobody") == {
        "received": 0,
        "delivered": 0,
        "rejected": 0,
        "last_received_at": None,
        "last_delivered_at": None,
    }


async def test_complete_removes_exactly_the_ids_read(backend):
    await backend.enqueue_many([("a", [body(i) for i in range(5)])])
    rows = await backend.read_queue("a", 0, 10)
    epoch = await own(backend, "a")
    # Only the first and the last were read: the ones between stay (no range delete).
    await backend.complete("a", [rows[0].id, rows[4].id], [], 2, epoch=epoch)
    assert [r.id for r in await backend.read_queue("a", 0, 10)] == [r.id for r in rows[1:4]]


async def test_dead_letters_list_count_replay_purge_insert(backend):
    await backend.add_dead_letters(
        "a", [DeadLetter("a", body(i), f"reason {i}", stage="mapping") for i in range(4)]
    )
    await backend.add_dead_letters("b", [DeadLetter("b", body(9), "nope")])
    assert await backend.dead_letter_count("a") == 4
    assert await backend.dead_letter_count() == {"a": 4, "b": 1}
    listed = await backend.dead_letters("a")
    assert [d["record"]["messageId"] for d in listed] == ["m0", "m1", "m2", "m3"]
    assert listed[0]["reason"] == "reason 0" and listed[0]["stage"] == "mapping"
    assert listed[0]["created_at"] > 0
    page = await backend.dead_letters("a", limit=2, after=listed[0]["id"])
    assert [d["id"] for d in page] == [listed[1]["id"], listed[2]["id"]]
    counters = await backend.counters("a")
    assert (counters["received"], counters["rejected"]) == (4, 4)

    assert await backend.replay_dead_letters("a", [listed[1]["id"], listed[3]["id"]]) == 2
    assert [r.body for r in await backend.read_queue("a", 0, 10)] == [body(1), body(3)]
    assert (await backend.counters("a"))["rejected"] == 2
    assert await backend.purge_dead_letters("a", [listed[0]["id"]]) == 1
    assert await backend.replay_dead_letters("a") == 1  # all that is left: m2
    assert await backend.dead_letter_count("a") == 0
    assert await backend.purge_dead_letters("b") == 1
    assert await backend.dead_letter_count() == {}


async def test_checkpoints_and_commit_pull_batch_in_one_transaction(backend):
    assert await backend.checkpoint("pull") is None
    run_id = await backend.start_run("pull", "scheduled")
    epoch = await own(backend, "pull")
    await backend.commit_pull_batch(
        "pull",
        epoch=epoch,
        checkpoint={"date": "20240101", "cursor": "abc"},
        state_namespace="pull/clevertap.events",
        state={"seen": [1, 2], "gone": None},
        dead=[DeadLetter("pull", body(1), "bad")],
        delivered=9,
        received=10,
        run_id=run_id,
    )
    assert await backend.checkpoint("pull") == {"date": "20240101", "cursor": "abc"}
    assert await backend.checkpoints() == {"pull": {"date": "20240101", "cursor": "abc"}}
    assert await backend.get_state("pull/clevertap.events", ["seen"]) == {"seen": [1, 2]}
    run = await backend.run(run_id)
    assert (run.records_in, run.records_out, run.rejected, run.status) == (10, 9, 1, "running")
    counters = await backend.counters("pull")
    assert (counters["received"], counters["delivered"], counters["rejected"]) == (10, 9, 1)
    # A batch without a checkpoint keeps the previous one.
    await backend.commit_pull_batch(
        "pull",
        epoch=epoch,
        checkpoint=None,
        state_namespace="n",
        state=None,
        dead=[],
        delivered=0,
        received=0,
    )
    assert await backend.checkpoint("pull") == {"date": "20240101", "cursor": "abc"}
    await backend.reset_checkpoint("pull")
    assert await backend.checkpoint("pull") is None


async def test_runs(backend):
    first = await backend.start_run("c", "scheduled")
    await backend.finish_run(first, status="succeeded", records_in=3, records_out=2, rejected=1)
    second = await backend.start_run("c", "manual")
    third = await backend.start_run("c", "manual")
    await backend.finish_run(
        third, status="failed", records_in=0, records_out=0, rejected=0, error="boom"
    )
    done = await backend.run(first)
    assert done.status == "succeeded" and done.ended_at >= done.started_at
    assert (done.records_in, done.records_out, done.rejected) == (3, 2, 1)
    assert await backend.run(10**9) is None
    assert [r.id for r in await backend.last_runs("c", 2)] == [third, second]
    assert (await backend.last_runs("c"))[0].error == "boom"
    assert await backend.last_success("c") == done.ended_at
    assert await backend.last_success("other") is None
    assert await backend.abandon_running("c") == 1
    assert (await backend.run(second)).status == "interrupted"
    assert await backend.abandon_running("c") == 0


async def test_run_requests_are_taken_once(pg_url, backend):
    other = PostgresBackend(pg_url)
    await other.open()
    try:
        r1 = await backend.request_run("c", full_refresh=True)
        r2 = await backend.request_run("d")
        assert await backend.pending_run_requests(["c", "x"])
        assert not await backend.pending_run_requests(["x"])
        taken = await asyncio.gather(
            backend.take_run_requests(["c", "d"]), other.take_run_requests(["c", "d"])
        )
        assert sorted(taken[0] + taken[1]) == [(r1, "c", True), (r2, "d", False)]
        assert not await backend.pending_run_requests(["c", "d"])
        run_id = await backend.start_run("c", "manual")
        await backend.serve_run_request(r1, run_id)
        request = await backend.run_request(r1)
        assert request["connector"] == "c" and request["run_id"] == run_id
        assert request["taken_at"] >= request["requested_at"]
        assert await backend.run_request(10**9) is None
    finally:
        await other.close()


async def test_plugin_state(backend):
    await backend.set_state("c/p", {"a": 1, "ab": {"x": [1, 2]}, "b": "s"})
    await backend.set_state("c/q", {"a": 2})
    assert await backend.get_state("c/p", ["a", "b", "missing"]) == {"a": 1, "b": "s"}
    assert await backend.scan_state("c/p", "a") == {"a": 1, "ab": {"x": [1, 2]}}
    assert await backend.scan_state("c/p") == {"a": 1, "ab": {"x": [1, 2]}, "b": "s"}
    assert await backend.scan_state("c/p", "%") == {}  # a prefix, not a pattern
    await backend.set_state("c/p", {"a": None, "b": 3})
    assert await backend.scan_state("c/p") == {"ab": {"x": [1, 2]}, "b": 3}
    assert await backend.clear_state("c/") == 3
    assert await backend.scan_state("c/q") == {}


async def test_compare_and_set_semantics(backend):
    assert await backend.compare_and_set("n", "k", None, None)  # absent, as expected
    assert await backend.compare_and_set("n", "k", None, {"b": 1, "a": [1]})
    assert not await backend.compare_and_set("n", "k", None, 5)  # no longer absent
    assert not await backend.compare_and_set("n", "k", None, None)
    # Equal values match whatever their key order.
    assert await backend.compare_and_set("n", "k", {"a": [1], "b": 1}, 2)
    assert not await backend.compare_and_set("n", "k", 1, 3)
    assert await backend.get_state("n", ["k"]) == {"k": 2}
    assert not await backend.compare_and_set("n", "k", 3, None)
    assert await backend.compare_and_set("n", "k", 2, None)
    assert await backend.get_state("n", ["k"]) == {}


async def test_leases_and_nodes(backend):
    name = connector_lease("c")
    first = await backend.acquire(name, "node-a", 30)
    assert first == 1
    assert await backend.acquire(name, "node-b", 30) is None  # held and live
    holder = await backend.holder(name)
    assert isinstance(holder, LeaseInfo)
    assert (holder.node, holder.epoch) == ("node-a", 1) and 29 < holder.expires_in <= 30
    assert await backend.renew(name, "node-a", first, 60)
    assert not await backend.renew(name, "node-b", first, 60)
    await backend.release(name, "node-b", first)  # not theirs: nothing happens
    assert (await backend.holder(name)).node == "node-a"
    await backend.release(name, "node-a", first)
    assert await backend.holder(name) is None
    second = await backend.acquire(name, "node-b", 30)
    assert second == 2  # epochs never repeat, even after a release
    assert not await backend.renew(name, "node-a", first, 30)
    assert await backend.holder("never") is None

    await backend.heartbeat("node-a", 30)
    await backend.heartbeat("node-b", 0.2)
    assert await backend.live_nodes() == ["node-a", "node-b"]
    await asyncio.sleep(0.3)
    assert await backend.live_nodes() == ["node-a"]
    await backend.heartbeat("node-b", 30)
    assert await backend.live_nodes() == ["node-a", "node-b"]


async def test_stale_epoch_without_any_lease_is_refused(backend):
    await backend.enqueue_many([("a", [body(1)])])
    rows = await backend.read_queue("a", 0, 10)
    with pytest.raises(StaleEpoch):
        await backend.complete("a", [r.id for r in rows], [], 1, epoch=1)
    assert await backend.queue_depth("a") == 1


async def test_a_missing_queue_head_is_made_again(backend, pg_url):
    await backend.enqueue_many([("a", [body(1)])])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM queue_heads")
    await backend.enqueue_many([("a", [body(2)])])
    assert await backend.queue_depth("a") == 2
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT connector FROM queue_heads").fetchall() == [("a",)]


def protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(StateBackend).items()
        if inspect.iscoroutinefunction(member)
    }


def test_postgres_backend_has_every_protocol_method_with_its_signature():
    for name, signature in protocol_methods().items():
        implemented = getattr(PostgresBackend, name)
        assert inspect.iscoroutinefunction(implemented), name
        assert inspect.signature(implemented).parameters.keys() == signature.parameters.keys(), name


def test_the_protocol_keeps_the_sqlite_store_names():
    """So that a SQLite backend can wrap `Store` thinly: only what sharing adds is new."""
    new = set(protocol_methods()) - set(dir(Store))
    assert new == {
        "open",
        "compare_and_set",
        "acquire",
        "renew",
        "release",
        "holder",
        "heartbeat",
        "live_nodes",
        "leave",
        "read_rows",  # one held-back row again (the SQLite store has it in `queue`)
        "list_queue",  # `connectord queue list|drop` (likewise)
        "drop_queue",
    }


async def test_a_lost_connection_is_state_unavailable_and_the_next_call_works(backend, pg_url):
    await backend.enqueue_many([("a", [body(1)])])
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StateUnavailable):
        await backend.enqueue_many([("a", [body(2)])])
    await backend.enqueue_many([("a", [body(3)])])  # a fresh connection
    assert [r.body for r in await backend.read_queue("a", 0, 10)] == [body(1), body(3)]


async def test_a_server_that_is_down_is_unavailable_and_a_wrong_database_is_an_error(
    pg_admin_url,
):
    from tests.backends.pgserver import free_port

    down = PostgresBackend(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(StateUnavailable):
        await down.open()
    await down.close()
    missing = PostgresBackend(pg_admin_url.rsplit("/", 1)[0] + "/connectord_no_such_db")
    with pytest.raises(StateError) as err:
        await missing.open()
    assert not isinstance(err.value, StateUnavailable)
    await missing.close()
