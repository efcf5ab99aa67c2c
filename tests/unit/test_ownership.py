"""Connector placement and lease keeping (`connectord.ownership`), on a real SQLite state
shared by two `Ownership`s that stand for two daemons."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from connectord.backends import connector_lease
from connectord.backends.sqlite import SqliteBackend
from connectord.ownership import Ownership, preferred_node

NAMES = [f"connector-{i}" for i in range(12)]


class FakeRuntime:
    """What `Ownership` needs of a `ConnectorRuntime`: own / disown."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.on_lease_lost = None
        self.history: list[tuple[str, int | None]] = []

    def own(self, epoch: int) -> None:
        self.epoch = epoch
        self.history.append(("own", epoch))

    async def disown(self) -> None:
        self.history.append(("disown", self.epoch))
        self.epoch = None


def test_rendezvous_spreads_connectors_and_moves_only_those_of_a_leaving_node():
    nodes = ["node-a", "node-b", "node-c"]
    before = {name: preferred_node(name, nodes) for name in [f"c{i}" for i in range(300)]}
    spread = Counter(before.values())
    assert min(spread.values()) >= 70, spread  # about 100 each
    after = {name: preferred_node(name, ["node-a", "node-c"]) for name in before}
    moved = [name for name in before if before[name] != after[name]]
    assert all(before[name] == "node-b" for name in moved)
    assert len(moved) == spread["node-b"]


@pytest.fixture
async def state(tmp_path):
    backend = SqliteBackend(tmp_path / "state.db")
    await backend.open()
    yield backend
    await backend.close()


def daemon(state, node: str, runtimes: dict[str, FakeRuntime], owned: list[str]) -> Ownership:
    async def on_owned(name: str, _runtime: FakeRuntime) -> None:
        owned.append(name)

    return Ownership(state, node, 1.5, lambda: runtimes, on_owned)  # type: ignore[arg-type]


async def test_a_lone_daemon_owns_everything_after_one_round(state):
    runtimes = {name: FakeRuntime() for name in NAMES}
    owned: list[str] = []
    alone = daemon(state, "node-a", runtimes, owned)
    await alone.step()
    assert sorted(owned) == sorted(NAMES)
    assert all(r.epoch is not None for r in runtimes.values())
    assert alone.describe()["owners"]["connector-0"]["node"] == "node-a"


async def test_two_daemons_split_the_connectors_and_each_is_owned_once(state):
    a_runtimes = {name: FakeRuntime() for name in NAMES}
    b_runtimes = {name: FakeRuntime() for name in NAMES}
    a = daemon(state, "node-a", a_runtimes, [])
    b = daemon(state, "node-b", b_runtimes, [])
    await a.step()  # alone so far: takes everything
    for _ in range(3):  # b joins; a hands over what prefers b, b takes it
        await b.step()
        await a.step()
    await b.step()
    for name in NAMES:
        owners = [r for r in (a_runtimes[name], b_runtimes[name]) if r.epoch is not None]
        assert len(owners) == 1, name
        want = preferred_node(name, ["node-a", "node-b"])
        holder = await state.holder(connector_lease(name))
        assert holder is not None and holder.node == want
    assert 0 < len(a.held) < len(NAMES)


async def test_a_silent_daemons_connectors_move_after_the_ttl_with_a_higher_epoch(state):
    a_runtimes = {name: FakeRuntime() for name in NAMES}
    b_runtimes = {name: FakeRuntime() for name in NAMES}
    a = daemon(state, "node-a", a_runtimes, [])
    b = daemon(state, "node-b", b_runtimes, [])
    await a.step()
    await b.step()
    epochs = {name: a.held[name].epoch for name in NAMES}
    assert not b.held
    await asyncio.sleep(1.6)  # a stops renewing (killed): its leases and heartbeat expire
    for _ in range(2):
        await b.step()
    assert sorted(b.held) == sorted(NAMES)
    assert all(b.held[name].epoch > epochs[name] for name in NAMES)
    # a wakes up: its renewals fail, it disowns everything and takes nothing back
    await a.step()
    assert not a.held
    assert all(r.epoch is None for r in a_runtimes.values())


async def test_a_fenced_write_makes_the_daemon_give_the_connector_up(state):
    runtimes = {"only": FakeRuntime()}
    a = daemon(state, "node-a", runtimes, [])
    await a.step()
    a.lost("only")
    await a.step()  # gives it up, and, alone, takes it again under a new epoch
    assert [kind for kind, _ in runtimes["only"].history] == ["own", "disown", "own"]
    first, second = runtimes["only"].history[0][1], runtimes["only"].history[2][1]
    assert second is not None and first is not None and second > first


async def test_connectors_move_to_a_new_daemon_only_once_it_stayed_alive(state):
    a_runtimes = {name: FakeRuntime() for name in NAMES}
    a = daemon(state, "node-a", a_runtimes, [])
    b = daemon(state, "node-b", {name: FakeRuntime() for name in NAMES}, [])
    await a.step()
    await b.step()  # b's first heartbeat
    await a.step()  # a sees b for the first time: a blip must not move anything yet
    assert sorted(a.held) == sorted(NAMES)
    await b.step()
    await a.step()  # b stayed alive: what prefers b moves
    assert 0 < len(a.held) < len(NAMES)
    assert all(preferred_node(n, ["node-a", "node-b"]) == "node-a" for n in a.held)


async def test_a_daemon_restarted_after_a_clean_stop_owns_everything_in_its_first_round(state):
    """The old daemon released its leases and left: the new one (another pid, so another
    node name) must not wait for the old node's heartbeat to expire just because the
    rendezvous hash preferred the old name for some connectors."""
    old_runtimes = {name: FakeRuntime() for name in NAMES}
    old = daemon(state, "host:100", old_runtimes, [])
    await old.step()
    for name in NAMES:
        await old.release(name)
    await old.leave()
    owned: list[str] = []
    new = daemon(state, "host:200", {name: FakeRuntime() for name in NAMES}, owned)
    await new.step()
    assert sorted(owned) == sorted(NAMES)
    assert new.describe()["nodes"] == ["host:200"]


async def test_without_leaving_the_old_node_keeps_its_connectors_waiting(state):
    """What `leave` prevents: a stopped node still alive by its heartbeat holds back the
    connectors it is preferred for (the fix is only needed if this is so)."""
    old = daemon(state, "host:100", {name: FakeRuntime() for name in NAMES}, [])
    await old.step()
    for name in NAMES:
        await old.release(name)
    owned: list[str] = []
    new = daemon(state, "host:200", {name: FakeRuntime() for name in NAMES}, owned)
    await new.step()
    preferring_old = [n for n in NAMES if preferred_node(n, ["host:100", "host:200"]) == "host:100"]
    assert preferring_old, "pick node names so that some connectors prefer the old one"
    assert sorted(owned) == sorted(set(NAMES) - set(preferring_old))
