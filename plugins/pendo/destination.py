"""``pendo``: track events, visitor metadata and account metadata into Pendo.

- ``track`` (and ``page``/``screen`` with ``page_events``) → ``POST /data/track``, one
  event per call (Pendo's Track Events API), authenticated with the Track Event shared
  secret.
- ``identify`` traits → visitor metadata, ``group`` traits → account metadata, batched
  through ``POST /api/v1/metadata/{visitor|account}/{agent|custom}/value`` with the
  integration key; ``?create=true`` on agent fields so missing visitors, accounts and
  fields are created.

Per-record outcomes come back as `DeliveryResult`: Pendo's ``missing``/``errors`` are
rejected with a reason; 429/5xx are retried, honouring ``Retry-After``. A property or
field name Pendo cannot display is renamed or dropped, not the record (Pendo itself
accepts such events); each such name is logged once and counted (`FixReport`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from connectord import (
    AuthError,
    DeliveryResult,
    Destination,
    Options,
    PermanentError,
    Record,
    RecordRejected,
    RetryableError,
    Secret,
)

from . import const
from .client import PendoClient
from .fixes import FixReport
from .payloads import (
    Fixes,
    metadata_target,
    metadata_values,
    name_problem,
    split_fields,
    track_payload,
)

EVENT_TYPES = frozenset({"track", "page", "screen"})

METADATA_TYPES = frozenset({"identify", "group"})


@dataclass
class Entry:
    """One visitor's or account's values in a bulk call, and the records behind them."""

    id: str
    values: dict[str, Any]
    indices: list[int] = field(default_factory=list)


@dataclass
class Outcomes:
    """Per-record results of one `send`, by index."""

    rejected: dict[int, str] = field(default_factory=dict)
    retry: dict[int, RetryableError] = field(default_factory=dict)
    attempted: set[int] = field(default_factory=set)

    def reject(self, indices: Sequence[int], reason: str) -> None:
        for index in indices:
            self.rejected[index] = reason
            self.retry.pop(index, None)

    def failed(self, indices: Sequence[int], error: RetryableError) -> None:
        for index in indices:
            if index not in self.rejected:
                self.retry[index] = error


class PendoOptions(Options):
    """Options of the ``pendo`` destination."""

    track_secret: Secret | None = Field(
        None,
        description="Track Event shared secret (Settings > Subscription Settings > "
        "Applications > App Details); needed for track/page/screen events.",
    )
    integration_key: Secret | None = Field(
        None,
        description="Integration key with write access (Settings > Integrations > "
        "Integration Keys); needed for identify/group metadata and `check --online`.",
    )
    region: Literal["us", "us1", "eu", "jpn", "au"] = Field(
        "us",
        description="Pendo region: us (app.pendo.io), us1, eu, jpn or au.",
    )
    base_url: AnyHttpUrl | None = Field(
        None,
        description="Pendo host for both APIs, overriding `region` (a proxy, an "
        "emulator). Default: the region's host, https://app.pendo.io for us.",
    )
    track_base_url: AnyHttpUrl | None = Field(
        None,
        description="Host for /data/track if it differs from base_url, e.g. https://data.pendo.io.",
    )
    page_events: bool = Field(
        False,
        description='Send page and screen calls as track events ("Viewed <name> Page"); '
        "off, they are acknowledged without being sent.",
    )
    create_missing: bool = Field(
        True,
        description="Add ?create=true to agent metadata calls so that missing visitors, "
        "accounts and agent fields are created.",
    )
    visitor_custom_fields: list[str] = Field(
        default_factory=list,
        description="Visitor traits to write as custom fields (defined beforehand in "
        "Pendo's Data Mappings) instead of agent fields.",
    )
    account_custom_fields: list[str] = Field(
        default_factory=list,
        description="Group traits to write as custom account fields.",
    )
    track_concurrency: int = Field(
        const.DEFAULT_TRACK_CONCURRENCY,
        ge=1,
        le=64,
        description="Track event calls in flight at once.",
    )

    @field_validator("visitor_custom_fields", "account_custom_fields")
    @classmethod
    def _field_names(cls, names: list[str]) -> list[str]:
        for name in names:
            problem = name_problem(name, max_length=None)
            if problem is not None:
                raise ValueError(f"custom field {name!r}: {problem}")
        return names

    @model_validator(mode="after")
    def _credentials(self) -> PendoOptions:
        if self.track_secret is None and self.integration_key is None:
            raise ValueError(
                "set track_secret (track events), integration_key (visitor and account "
                "metadata), or both"
            )
        return self


class PendoDestination(Destination):
    """Send Segment-model records to Pendo's Track Events and metadata APIs."""

    type = "pendo"
    max_batch_size: ClassVar[int] = const.DEFAULT_METADATA_BATCH
    max_concurrency: ClassVar[int] = 64
    """Ceiling for the connector's adaptive request concurrency (one Track Events call
    per event). Pendo documents no rate limit for /data/track, so the limit is found from
    its answers (429, latency); 64 is our own bound, not Pendo's."""

    Options = PendoOptions

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        base = str(options.base_url) if options.base_url else const.REGION_HOSTS[options.region]
        self.client = PendoClient(
            context.http,
            base_url=base,
            track_base_url=str(options.track_base_url) if options.track_base_url else base,
            track_secret=_reveal(options.track_secret),
            integration_key=_reveal(options.integration_key),
        )
        self.custom = {
            const.VISITOR: frozenset(options.visitor_custom_fields),
            const.ACCOUNT: frozenset(options.account_custom_fields),
        }
        self.fixes = FixReport(self.log, context.count)

    async def check(self) -> str | None:
        done = []
        if self.client.integration_key is not None:
            await self.client.verify()
            done.append("integration key accepted by GET /api/v1/token/verify")
        if self.client.track_secret is not None:
            done.append("track_secret set (Pendo has no call that verifies it without an event)")
        return "; ".join(done)

    # --- delivery ---------------------------------------------------------------------

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        outcomes = Outcomes()
        events: list[tuple[int, dict[str, Any]]] = []
        metadata: dict[tuple[str, str], dict[str, Entry]] = {}
        ignored = 0
        for index, record in enumerate(records):
            try:
                kind = record.get("type")
                if kind in EVENT_TYPES:
                    if kind != "track" and not self.options.page_events:
                        ignored += 1
                        continue
                    events.append((index, self.event(record)))
                elif kind in METADATA_TYPES:
                    self.add_metadata(index, record, metadata)
                else:
                    raise RecordRejected(f"pendo: {kind} records have no Pendo equivalent")
            except RecordRejected as err:
                outcomes.reject([index], str(err))
        if ignored:
            self.log.debug("pendo.pages.ignored", count=ignored)
        await asyncio.gather(
            self.send_events(events, outcomes), self.send_all_metadata(metadata, outcomes)
        )
        return self.result(outcomes)

    def event(self, record: Record) -> dict[str, Any]:
        if self.client.track_secret is None:
            raise RecordRejected("pendo: track_secret is not set, so events cannot be sent")
        fixes = Fixes()
        payload = track_payload(record, fixes=fixes)
        self.fixes.note(fixes, record, payload["event"])
        return payload

    def add_metadata(
        self, index: int, record: Record, metadata: dict[tuple[str, str], dict[str, Entry]]
    ) -> None:
        if self.client.integration_key is None:
            raise RecordRejected(
                "pendo: integration_key is not set, so visitor/account metadata cannot be sent"
            )
        kind, entity = metadata_target(record)
        fixes = Fixes()
        values = metadata_values(record.get("traits"), fixes)
        self.fixes.note(fixes, record)
        groups = split_fields(values, self.custom[kind]) or {const.AGENT: {}}
        for group, group_values in groups.items():
            entry = metadata.setdefault((kind, group), {}).setdefault(entity, Entry(entity, {}))
            entry.values.update(group_values)  # later records for the same id win
            entry.indices.append(index)

    def result(self, outcomes: Outcomes) -> DeliveryResult | None:
        """Per-record results; a batch where every call failed transiently is raised,
        so that the framework backs off (and notices bad credentials)."""
        succeeded = outcomes.attempted - outcomes.retry.keys() - outcomes.rejected.keys()
        if outcomes.retry and not succeeded:
            errors = list(outcomes.retry.values())
            auth = next((e for e in errors if isinstance(e, AuthError)), None)
            if auth is not None:
                raise auth
            raise RetryableError(str(errors[0]), retry_after=_longest_wait(errors))
        if not outcomes.retry and not outcomes.rejected:
            return None
        return DeliveryResult(
            rejected=dict(outcomes.rejected),
            retry=set(outcomes.retry),
            retry_after=_longest_wait(list(outcomes.retry.values())),
        )

    # --- track events -------------------------------------------------------------------

    async def send_events(
        self, events: list[tuple[int, dict[str, Any]]], outcomes: Outcomes
    ) -> None:
        """POST each event, a few at a time; after a transient failure the events not yet
        sent are left for the retry instead of piling onto a struggling Pendo."""
        if not events:
            return
        pending = iter(events)
        halted: list[RetryableError] = []

        async def worker() -> None:
            for index, payload in pending:
                if halted:
                    outcomes.failed([index], halted[0])
                    continue
                outcomes.attempted.add(index)
                try:
                    await self.client.track(payload)
                except PermanentError as err:
                    outcomes.reject([index], str(err))
                except RetryableError as err:
                    halted.append(err)
                    outcomes.failed([index], err)

        workers = min(self.options.track_concurrency, len(events))
        await asyncio.gather(*(worker() for _ in range(workers)))
        if halted:
            self.log.warning("pendo.track.failed", error=str(halted[0]), retry=len(outcomes.retry))

    # --- metadata -----------------------------------------------------------------------

    async def send_all_metadata(
        self, metadata: dict[tuple[str, str], dict[str, Entry]], outcomes: Outcomes
    ) -> None:
        """Visitors and accounts in parallel; agent fields before custom ones, so that a
        visitor created by the agent call exists when its custom fields are set."""

        async def kind_calls(kind: str) -> None:
            for group in (const.AGENT, const.CUSTOM):
                entries = list(metadata.get((kind, group), {}).values())
                if entries:
                    await self.send_metadata(kind, group, entries, outcomes)

        await asyncio.gather(kind_calls(const.VISITOR), kind_calls(const.ACCOUNT))

    async def send_metadata(
        self, kind: str, group: str, entries: list[Entry], outcomes: Outcomes
    ) -> None:
        """One bulk call; a refusal Pendo does not attribute is narrowed down by halves."""
        indices = [i for entry in entries for i in entry.indices]
        outcomes.attempted.update(indices)
        body = [{const.ID_FIELDS[kind]: e.id, "values": e.values} for e in entries]
        try:
            answer = await self.client.set_metadata(
                kind, group, body, create=self.options.create_missing and group == const.AGENT
            )
        except PermanentError as err:
            await self.narrow(kind, group, entries, outcomes, str(err))
            return
        except RetryableError as err:
            self.log.warning("pendo.metadata.failed", kind=kind, group=group, error=str(err))
            outcomes.failed(indices, err)
            return
        unexplained = []
        for entry in entries:
            if entry.id in answer.missing:
                outcomes.reject(entry.indices, self.missing_reason(kind, group, entry.id))
            elif entry.id in answer.errors:
                outcomes.reject(
                    entry.indices, f"pendo: {kind} {entry.id!r}: {answer.errors[entry.id]}"
                )
            else:
                unexplained.append(entry)
        rejected = len(entries) - len(unexplained)
        if rejected:
            self.log.info("pendo.metadata.rejected", kind=kind, group=group, count=rejected)
        if answer.unexplained and unexplained:
            await self.narrow(
                kind,
                group,
                unexplained,
                outcomes,
                f"pendo: {kind} {group} metadata call reported {answer.unexplained} failure(s) "
                "without naming the ids",
            )

    async def narrow(
        self, kind: str, group: str, entries: list[Entry], outcomes: Outcomes, reason: str
    ) -> None:
        """Split a refused call to find the entries at fault; setting values again is
        harmless (the metadata API upserts)."""
        if len(entries) == 1:
            outcomes.reject(entries[0].indices, reason)
            return
        middle = len(entries) // 2
        for half in (entries[:middle], entries[middle:]):
            await self.send_metadata(kind, group, half, outcomes)

    def missing_reason(self, kind: str, group: str, entity: str) -> str:
        if group == const.AGENT and not self.options.create_missing:
            hint = "set create_missing = true to create it"
        else:
            hint = "create it first (an identify/group with agent fields does)"
        return f"pendo: {kind} {entity!r} does not exist in Pendo ({hint})"


def _reveal(secret: Any) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _longest_wait(errors: list[RetryableError]) -> float | None:
    waits = [e.retry_after for e in errors if e.retry_after is not None]
    return max(waits) if waits else None
