"""The classes a plugin subclasses: sources, mappings and destinations.

A plugin module registers these classes through the hooks in `connectord.hookspecs`.
The framework builds one instance per connector from the connector's options, calls
`start()` before use and `close()` on shutdown or reload, and owns everything around
them: queues, retries, checkpoints, dead letters, logging context and metrics.

Records are plain dicts that follow the Segment spec (see docs/records.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    import aiohttp
    import structlog
    from aiohttp import web

    from .errors import IngestError

Record = dict[str, Any]
"""One record: a JSON-able dict following the Segment spec plus `audience` and `metric`."""

Secret = SecretStr
"""Type for options that hold credentials: never logged, shown as ``**********``."""


class Options(BaseModel):
    """Base class for a plugin's options.

    Subclass it as a nested ``class Options(connectord.Options)`` on the plugin class.
    Unknown keys are errors, values are read-only once validated, and every field's
    ``description`` ends up in ``connectord plugins --json`` and the configuration
    reference. Declare credentials as `Secret`; a ``<name>_file`` key in the config
    then reads the value from a file (systemd credentials).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyValueStore(Protocol):
    """Durable per-connector state a plugin may keep (tag values, memberships, caches).

    Values are JSON-able. Keys are scoped to the connector and the plugin type, so two
    plugins never see each other's keys.
    """

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]: ...

    async def set(self, key: str, value: Any) -> None: ...

    async def set_many(self, items: dict[str, Any]) -> None:
        """Write several keys in one transaction; a value of ``None`` deletes the key."""

    async def delete(self, key: str) -> None: ...

    async def scan(self, prefix: str = "") -> dict[str, Any]: ...

    async def compare_and_set(self, key: str, expected: Any, new: Any) -> bool:
        """Write ``new`` only if ``key`` still holds ``expected`` (``None``: absent; a
        ``new`` of ``None`` deletes); True when written. Several daemons may share the
        state (docs/scale-out.md) and run one connector's push ingest at once: a
        read-modify-write during ingest reads, changes, and retries while this is False."""


@dataclass
class PluginContext:
    """What the framework hands every plugin instance.

    :param connector: the connector's name in ``connectors.toml``.
    :param log: a structlog logger bound with ``connector=`` and ``plugin=``.
    :param state: the plugin's durable key-value store.
    :param base_dir: the directory of the config file; resolve relative paths against it.
    :param http: returns the connector's shared `aiohttp.ClientSession` (TLS verified,
        timeouts set, created on first use and closed with the connector).
    :param count: ``count(event, n=1)`` adds to ``connectord_plugin_events{connector,
        plugin, event}``, for what a plugin does that operators should see (names it
        changed to fit a vendor's rules, ...); a no-op outside the daemon.
    :param enqueue: for push sources only: commit records to the connector's durable
        queue; returns once they are on disk. Raises `QueueFull` when the queue is full.
    :param dead_letter: for push sources only: keep ``(part, reason)`` pairs, parts of
        a request that cannot become records, as dead letters; returns once on disk.
    :param queue_room: for push sources only: how many more records the queue takes now
        (its bound minus its depth), for sources that must refuse before acting.
    """

    connector: str
    log: structlog.typing.FilteringBoundLogger
    state: KeyValueStore
    base_dir: Path
    http: Callable[[], aiohttp.ClientSession]
    count: Callable[..., None] = lambda event, n=1: None
    enqueue: Callable[[list[Record]], Awaitable[None]] | None = None
    dead_letter: Callable[[list[tuple[Any, str]]], Awaitable[None]] | None = None
    queue_room: Callable[[], int] | None = None


class Plugin:
    """What sources, mappings and destinations have in common.

    :cvar type: the name used as ``type = "..."`` in ``connectors.toml``, e.g.
        ``"segment.http"``. Vendor plugins prefix it with the vendor.
    :cvar Options: the options schema, a subclass of `connectord.Options`.
    """

    kind: ClassVar[str] = "plugin"
    type: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = Options

    def __init__(self, options: BaseModel, context: PluginContext) -> None:
        self.options = options
        self.context = context
        self.log = context.log

    async def start(self) -> None:
        """Open what the plugin needs (sessions, caches). Called before first use."""

    async def close(self) -> None:
        """Release what `start` opened. Called on shutdown and reload."""

    async def check(self) -> str | None:
        """Verify credentials against the vendor (``connectord check --online``).

        Return a short description of what was verified, or ``None`` when the plugin
        has nothing to verify. Raise `AuthError` or another `ConnectordError` with a
        message that says what failed.
        """
        return None


# --- sources -------------------------------------------------------------------------


class Source(Plugin):
    """Where records come from. Subclass `PullSource` or `PushSource`."""

    kind = "source"


@dataclass
class Batch:
    """A slice of what a pull source read, with the position to store once it is delivered.

    :param records: the records, in order.
    :param checkpoint: JSON-able position to resume from after this batch; stored only
        after the destination acknowledged (or dead-lettered) every record before it.
        ``None`` leaves the stored checkpoint unchanged.
    :param state: key-value pairs written to the source's state store in the same
        transaction as the checkpoint (a ``None`` value deletes the key), e.g. the
        membership a diffing source compares against next time.
    """

    records: list[Record]
    checkpoint: Any = None
    state: dict[str, Any] | None = None


class PullSource(Source):
    """A source the scheduler runs: it reads a vendor API from a checkpoint onwards."""

    def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        """Yield batches from ``checkpoint`` (``None`` on the first run) onwards.

        Raise `RetryableError` for transient vendor failures after the client's own
        retries are spent: the run fails and the next one resumes from the last stored
        checkpoint.
        """
        raise NotImplementedError


class Route(NamedTuple):
    """One HTTP endpoint of a push source, relative to ``/ingest/<connector>/``."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


class PushSource(Source):
    """A source that vendors or client libraries post to.

    Handlers must authenticate every request, read the body with
    `connectord.ingest.read_body` (size and decompression caps) and answer 2xx only
    after `ingest` returned: that is when the records are durable.

    :cvar max_body_bytes: largest request body accepted, before decompression.
    :cvar max_decompressed_bytes: largest body after ``Content-Encoding`` is undone.
    """

    max_body_bytes: ClassVar[int] = 1024 * 1024
    max_decompressed_bytes: ClassVar[int] = 8 * 1024 * 1024

    def routes(self) -> Iterable[Route]:
        """The endpoints to mount under ``/ingest/<connector>/``."""
        raise NotImplementedError

    async def ingest(self, records: list[Record]) -> None:
        """Commit records to the durable queue; returns once they are on disk."""
        if self.context.enqueue is None:
            raise RuntimeError("this source was not started by the daemon")
        await self.context.enqueue(records)

    async def dead_letter(self, parts: list[tuple[Any, str]]) -> None:
        """Keep ``(part, reason)`` pairs as dead letters (stage ``ingest``), for the parts
        of a request the source accepts but cannot turn into records; durable on return."""
        if not parts:
            return
        if self.context.dead_letter is None:
            raise RuntimeError("this source was not started by the daemon")
        await self.context.dead_letter(parts)

    def error_response(self, error: IngestError) -> web.StreamResponse:
        """Render an `IngestError` the way the vendor's clients expect."""
        from .ingest import json_error

        return json_error(error)


# --- mappings ------------------------------------------------------------------------


class Mapping(Plugin):
    """A transform applied to records between source and destination, in config order.

    Implement `map` as a pure function. Override `map_batch` only when the mapping
    needs state (prefetch it, call the pure function, store what it learned).
    """

    kind = "mapping"

    def map(self, record: Record) -> Record | Iterable[Record] | None:
        """Return the record (changed or not), several records, or ``None`` to drop it.

        Raise `RecordRejected` to send the record to dead letters with a reason.
        """
        raise NotImplementedError

    async def map_batch(self, records: Sequence[Record]) -> list[list[Record] | Exception]:
        """Map a batch: for each input, the output records or the error it raised."""
        out: list[list[Record] | Exception] = []
        for record in records:
            try:
                out.append(as_record_list(self.map(record)))
            except Exception as err:  # one bad record must not sink its batch
                out.append(err)
        return out


def as_record_list(result: Record | Iterable[Record] | None) -> list[Record]:
    """Normalise what `Mapping.map` returned to a list of records."""
    if result is None:
        return []
    if isinstance(result, dict):
        return [result]
    return list(result)


# --- destinations --------------------------------------------------------------------


@dataclass
class DeliveryResult:
    """What a destination did with a batch, by index into the records it was given.

    Records that are neither rejected nor to be retried count as acknowledged.

    :param rejected: index → reason, for records the vendor refused for good.
    :param retry: indices of records to send again later (transient failures).
    :param retry_after: seconds the vendor asked us to wait before retrying.
    """

    rejected: dict[int, str] = field(default_factory=dict)
    retry: set[int] = field(default_factory=set)
    retry_after: float | None = None


class Destination(Plugin):
    """Where records go.

    :cvar max_batch_size: the most records `send` is given at once; match the vendor's
        batch API limit.
    """

    kind = "destination"
    max_batch_size: ClassVar[int] = 500

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        """Deliver records; return ``None`` when all were accepted.

        Raise `RetryableError` (or `AuthError`) when the whole batch should be retried,
        `PermanentError` when the vendor refused the whole batch: the framework then
        splits it to isolate the records at fault.
        """
        raise NotImplementedError
