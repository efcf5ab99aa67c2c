"""Which daemon owns which connector, when several share one state database.

Every daemon sharing ``[daemon] state`` runs every enabled connector's plugins (so any
of them accepts push requests into the shared queue), but a connector's queue draining
and pull runs belong to one daemon at a time: the holder of the connector's lease
(`connectord.backends`). Leases are rows with a time to live, renewed every third of it;
their epoch fences every queue completion and checkpoint, so a daemon that was paused
past its lease (SIGSTOP, a long GC pause, a partition) writes nothing once it wakes up.

Placement is rendezvous hashing (highest random weight, Thaler and Ravishankar 1996)
over the live daemons: each connector prefers the daemon with the highest
``hash(connector, node)``. It needs no coordination beyond the list of live daemons,
spreads connectors evenly, and when a daemon joins or leaves only the connectors that
prefer it move. A connector whose preferred daemon does not take it (say its plugin
cannot start there) is taken by any daemon after `ORPHAN_STEPS` rounds.

A lone daemon is the one-node case of the same rules: it is the only live node, so it
takes every lease on its first round, before it reports ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from .backends import LeaseInfo, StateBackend, connector_lease

if TYPE_CHECKING:
    from .connector import ConnectorRuntime
    from .metrics import Metrics

ORPHAN_STEPS = 2
"""Rounds a connector's lease may stay free before any daemon takes it."""
SETTLE_STEPS = 2
"""Rounds a daemon must have been seen alive, without a gap, before connectors are handed
over to it: a daemon whose heartbeat lapsed for a moment (a loaded machine, a pause)
does not make connectors move back and forth, each move costing a redelivery of what
was in flight."""


def default_node() -> str:
    """``hostname:pid``: unique per process, and a restarted process is a new node."""
    return f"{socket.gethostname()}:{os.getpid()}"


def preferred_node(connector: str, nodes: list[str]) -> str | None:
    """The live node rendezvous hashing gives ``connector`` to."""
    if not nodes:
        return None
    return max(nodes, key=lambda node: _weight(connector, node))


def _weight(connector: str, node: str) -> bytes:
    return hashlib.blake2b(f"{connector}\0{node}".encode(), digest_size=8).digest()


@dataclass
class Held:
    epoch: int
    renewed_at: float  # monotonic


class Ownership:
    """Keeps this daemon's leases: takes, renews, hands over and gives up connectors."""

    def __init__(
        self,
        state: StateBackend,
        node: str,
        ttl: float,
        runtimes: Callable[[], dict[str, ConnectorRuntime]],
        on_owned: Callable[[str, ConnectorRuntime], Awaitable[None]],
        metrics: Metrics | None = None,
    ) -> None:
        self.state = state
        self.node = node
        self.ttl = ttl
        self.runtimes = runtimes
        self.on_owned = on_owned
        self.metrics = metrics
        self.held: dict[str, Held] = {}
        self.holders: dict[str, LeaseInfo | None] = {}
        self.nodes: list[str] = [node]
        self._free_rounds: dict[str, int] = {}
        self._lost: set[str] = set()
        self._round = asyncio.Lock()
        self._rounds = 0
        self._seen_since: dict[str, int] = {}
        self.settled: list[str] = [node]
        self.log = structlog.get_logger().bind(node=node)

    @property
    def interval(self) -> float:
        return self.ttl / 3

    def lost(self, name: str) -> None:
        """A fenced write said another daemon took ``name``: give it up next round."""
        self._lost.add(name)

    async def step(self) -> None:
        """One round: heartbeat, then for every connector keep, take or hand over its
        lease. A round the state cannot answer changes nothing here, except that a lease
        not renewed for a whole TTL is given up (another daemon may hold it by now)."""
        async with self._round:
            await self._step()

    async def _step(self) -> None:
        try:
            await self.state.heartbeat(self.node, self.ttl)
            self.nodes = await self.state.live_nodes() or [self.node]
            self._settle()
        except Exception as err:
            self.log.warning("lease.round_failed", error=repr(err))
            await self._give_up_stale()
            return
        for name, runtime in list(self.runtimes().items()):
            try:
                await self._one(name, runtime)
            except Exception as err:
                self.log.warning("lease.step_failed", connector=name, error=repr(err))
        await self._give_up_stale()
        for name in [n for n in self.held if n not in self.runtimes()]:
            await self._release(name)

    async def _one(self, name: str, runtime: ConnectorRuntime) -> None:
        lease = connector_lease(name)
        held = self.held.get(name)
        preferred = preferred_node(name, self.nodes)
        asked = time.monotonic()
        if held is not None:
            if name in self._lost:
                await self._drop(name, runtime, "fenced")
            elif preferred_node(name, self.settled) != self.node:
                await self._drop(name, runtime, "handover", release=True)
            elif await self.state.renew(lease, self.node, held.epoch, self.ttl):
                held.renewed_at = asked  # the lease runs from when we asked, not answered
            else:
                await self._drop(name, runtime, "taken")
        current = await self.state.holder(lease)
        self.holders[name] = current
        if name in self.held or (current is not None and current.node != self.node):
            self._free_rounds.pop(name, None)
            return
        if current is not None:  # ours on record, not in hand: this node restarted
            await self._take(name, runtime)
            return
        rounds = self._free_rounds[name] = self._free_rounds.get(name, 0) + 1
        if preferred == self.node or rounds > ORPHAN_STEPS:
            await self._take(name, runtime)

    async def _take(self, name: str, runtime: ConnectorRuntime) -> None:
        epoch = await self.state.acquire(connector_lease(name), self.node, self.ttl)
        if epoch is None:
            return
        self.held[name] = Held(epoch, time.monotonic())
        self._lost.discard(name)
        self._free_rounds.pop(name, None)
        self.holders[name] = LeaseInfo(connector_lease(name), self.node, epoch, self.ttl)
        self.log.info("lease.acquired", connector=name, epoch=epoch)
        self._gauge(name, 1)
        runtime.on_lease_lost = lambda: self.lost(name)
        runtime.own(epoch)
        await self.on_owned(name, runtime)

    async def _drop(
        self, name: str, runtime: ConnectorRuntime | None, why: str, *, release: bool = False
    ) -> None:
        held = self.held.pop(name)
        self._lost.discard(name)
        if runtime is not None:
            await runtime.disown()
        if release:
            await self.state.release(connector_lease(name), self.node, held.epoch)
        self.log.info("lease.dropped", connector=name, epoch=held.epoch, reason=why)
        self._gauge(name, 0)

    async def _give_up_stale(self) -> None:
        """Stop working on leases not renewed for a TTL: they may be someone else's."""
        now = time.monotonic()
        for name, held in list(self.held.items()):
            if now - held.renewed_at >= self.ttl:
                await self._drop(name, self.runtimes().get(name), "not renewed")

    async def release(self, name: str) -> None:
        """Give up ``name`` now (its connector stops or the daemon shuts down)."""
        async with self._round:
            await self._release(name)

    async def _release(self, name: str) -> None:
        held = self.held.get(name)
        if held is None:
            return
        await self._drop(name, self.runtimes().get(name), "released")
        try:
            await self.state.release(connector_lease(name), self.node, held.epoch)
        except Exception as err:  # it expires by itself
            self.log.warning("lease.release_failed", connector=name, error=repr(err))

    def _settle(self) -> None:
        """Note since which round each live node has been seen without a gap."""
        self._rounds += 1
        live = set(self.nodes)
        self._seen_since = {n: r for n, r in self._seen_since.items() if n in live}
        for node in live:
            self._seen_since.setdefault(node, self._rounds)
        self.settled = sorted(
            n
            for n, since in self._seen_since.items()
            if n == self.node or self._rounds - since + 1 >= SETTLE_STEPS
        )

    def _gauge(self, name: str, owned: int) -> None:
        if self.metrics is not None:
            self.metrics.connector_owned.labels(name, self.node).set(owned)

    def describe(self) -> dict[str, Any]:
        """Nodes and owners, for ``/healthz`` and ``connectord status``."""
        owners = {
            name: {"node": info.node, "epoch": info.epoch, "expires_in": round(info.expires_in, 1)}
            for name, info in self.holders.items()
            if info is not None
        }
        return {"node": self.node, "nodes": list(self.nodes), "owners": owners}

    async def leave(self) -> None:
        """The daemon stops cleanly (its leases are released by then): take this node
        out of the live ones, so that placement stops preferring it now. Otherwise a
        daemon restarted at once, or the other daemons, would wait out its heartbeat
        plus two rounds before taking the connectors this node preferred."""
        try:
            await self.state.leave(self.node)
        except Exception as err:  # its heartbeat expires by itself
            self.log.warning("node.leave_failed", error=repr(err))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
