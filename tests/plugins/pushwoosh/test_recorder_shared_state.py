"""Two daemons sharing one state record setTags calls for the same user at the same
time: with compare-and-set, no tag change is lost (each daemon's own lock only orders
its own calls)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from connectord.backends.namespace import BackendNamespace
from connectord.backends.sqlite import SqliteBackend
from connectord.plugins.pushwoosh.recorder import RelayRecorder

CALLS = 40


async def test_concurrent_set_tags_on_two_daemons_lose_no_tag(tmp_path):
    backends = [SqliteBackend(tmp_path / "state.db") for _ in range(2)]
    for backend in backends:
        await backend.open()
    options = SimpleNamespace(application="ABCDE-12345", client_context=False)
    recorders = [
        RelayRecorder(BackendNamespace(backend, "r/pushwoosh.relay"), options)
        for backend in backends
    ]
    request = SimpleNamespace(remote=None, headers={})

    async def set_tag(daemon: int, n: int) -> None:
        fields = {"hwid": "device-1", "userId": "user-1", "tags": {f"t{daemon}_{n}": n}}
        await recorders[daemon].records_for("setTags", fields, {}, request)

    try:
        await asyncio.gather(*(set_tag(d, n) for n in range(CALLS) for d in (0, 1)))
        tags = await BackendNamespace(backends[0], "r/pushwoosh.relay").get("tags:user-1")
    finally:
        for backend in backends:
            await backend.close()
    assert tags == {f"t{d}_{n}": n for n in range(CALLS) for d in (0, 1)}
