"""``pushwoosh``: identify → tags, track/screen/page → events, audience → segments.

- ``identify``: traits become tags of the user (``userId``). Tag types are detected
  (`tagtypes`) and remembered in the connector's state; missing tags are created with
  ``addTag``; a value that does not fit an existing tag's type dead-letters its record.
  Few users go through ``setTags`` (Device API), many through ``bulkSetTags`` (polled
  until done; per-user failures become dead letters).
- ``track`` (and ``screen``/``page``) → ``postEvent`` per record, or the batch events
  path (100 per request) with ``events_api = "batch"``.
- ``audience`` → one list tag holds every user's segments (append/remove through
  ``bulkSetTags``) and one filter per audience selects its members; the filter is
  created once and remembered.

Tag and segment work is idempotent and done first; events are posted last and never
re-sent once Pushwoosh took them (a partial failure asks to retry only the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AnyHttpUrl, Field

from connectord import (
    AuthError,
    DeliveryResult,
    Destination,
    Options,
    PermanentError,
    Record,
    RetryableError,
    Secret,
)

from .client import ArgumentError, PushwooshClient, validate_application
from .const import (
    BATCH_EVENTS_MAX,
    DEFAULT_BASE_URL,
    DEFAULT_EVENTS_URL,
    SET_TAGS_MAX,
    VENDOR,
    TagType,
)
from .events import Event, event_of
from .segments import membership_expression, segment_name
from .tagtypes import type_tags

TAG_KEY = "tag:"
FILTER_KEY = "filter:"
EVENT_TYPES = frozenset({"track", "screen", "page"})
SUPPORTED = EVENT_TYPES | {"identify", "audience"}


class PushwooshDestination(Destination):
    """Send identify, track/screen/page and audience records to one Pushwoosh app."""

    type = "pushwoosh"
    max_batch_size: ClassVar[int] = 500

    class Options(Options):
        application: Annotated[str, AfterValidator(validate_application)] = Field(
            description="Pushwoosh application code, `XXXXX-XXXXX`."
        )
        api_token: Secret = Field(
            description="Server API access token (tags, filters, bulkSetTags, statistics)."
        )
        device_token: Secret | None = Field(
            None,
            description="Device API access token, used for postEvent and setTags. Without "
            "it the server token is sent there, which Pushwoosh refuses for scoped tokens.",
        )
        base_url: AnyHttpUrl = Field(
            DEFAULT_BASE_URL, description="Pushwoosh API host (regional host, proxy)."
        )
        events_api: Literal["postEvent", "batch"] = Field(
            "postEvent",
            description='"postEvent": one documented call per event; "batch": 100 events per '
            "request through Pushwoosh's server-integration service (`events_url`).",
        )
        events_url: AnyHttpUrl = Field(
            DEFAULT_EVENTS_URL, description='Host of the batch events path (events_api="batch").'
        )
        concurrency: int = Field(
            8, ge=1, le=64, description="Parallel postEvent/setTags calls within a batch."
        )
        bulk_min_users: int = Field(
            50,
            ge=1,
            description="From this many users with identify records in one batch, tags go "
            "through bulkSetTags instead of one setTags call per user.",
        )
        create_tags: bool = Field(
            True,
            description="Create missing tags with addTag using the detected type. Off: "
            "bulkSetTags is asked to create them (create_missing_tags).",
        )
        parse_strings: bool = Field(
            True,
            description='Detect numbers, booleans, versions and dates inside strings ("42" '
            "makes an Integer tag). Off: every string makes a String tag.",
        )
        text_tags: list[str] = Field(
            default_factory=lambda: ["Zip", "Postal Code", "Phone", "Mobile", "Mobile Number"],
            description="Tags whose string values stay text even with parse_strings on "
            '(zip codes and phone numbers: "02134" must not become an Integer).',
        )
        tag_names: dict[str, str] = Field(
            default_factory=dict,
            description='Trait → tag name, e.g. { country = "Country" }; others keep their name.',
        )
        exclude_traits: list[str] = Field(
            default_factory=list, description="Traits never sent as tags (e.g. email, phone)."
        )
        audience_tag: str = Field(
            "connectord_audiences",
            min_length=1,
            description="List tag that holds the segments each user belongs to.",
        )
        screen_event: str = Field(
            "Screen Viewed", min_length=1, description="Event name for screen records."
        )
        page_event: str = Field(
            "Page Viewed", min_length=1, description="Event name for page records."
        )
        poll_interval: float = Field(
            2.0, gt=0, le=60, description="Seconds between bulkSetTags status polls."
        )
        max_wait: float = Field(
            300.0, gt=0, description="Seconds to wait for a bulkSetTags request to finish."
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self._text_tags = frozenset(options.text_tags)
        self.client = PushwooshClient(
            context.http,
            application=options.application,
            api_token=options.api_token.get_secret_value(),
            device_token=(
                options.device_token.get_secret_value() if options.device_token else None
            ),
            base_url=str(options.base_url),
            events_url=str(options.events_url),
            poll_interval=options.poll_interval,
            max_wait=options.max_wait,
        )
        self._catalog: dict[str, TagType] | None = None
        self._filters: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    # --- online check -----------------------------------------------------------------

    async def check(self) -> str:
        app = self.options.application
        try:
            await self.client.list_filters()
        except AuthError as err:
            raise AuthError(
                f"server token refused for application {app} (is the code right and the "
                f"token granted access to it?): {err}"
            ) from err
        except ArgumentError as err:
            raise PermanentError(f"application {app} refused: {err}") from err
        done = f"server token accepted for application {app}"
        if self.options.device_token is not None:
            try:
                await self.client.get_tags(user_id="connectord-check")
            except AuthError as err:
                raise AuthError(f"device token refused for application {app}: {err}") from err
            except ArgumentError:
                pass  # authenticated; Pushwoosh only disliked the probe user
            done += "; device token accepted"
        return done

    # --- send -------------------------------------------------------------------------

    async def send(self, records: Sequence[Record]) -> DeliveryResult:
        result = DeliveryResult()
        identifies: list[tuple[int, Record]] = []
        audiences: list[tuple[int, Record]] = []
        events: list[tuple[int, Record]] = []
        for index, record in enumerate(records):
            kind = record.get("type")
            if kind not in SUPPORTED:
                result.rejected[index] = (
                    f"{VENDOR} takes identify, track, screen, page and audience records, not {kind}"
                )
            elif not _user_id(record):
                result.rejected[index] = (
                    f"{kind} record has no userId; {VENDOR} keys users by user id"
                )
            elif kind == "identify":
                identifies.append((index, record))
            elif kind == "audience":
                audiences.append((index, record))
            else:
                events.append((index, record))
        if identifies or audiences:
            await self._send_tags(identifies, audiences, result)
        if events:
            await self._send_events(events, result)
        return result

    # --- tags and segments ------------------------------------------------------------

    async def _send_tags(
        self,
        identifies: list[tuple[int, Record]],
        audiences: list[tuple[int, Record]],
        result: DeliveryResult,
    ) -> None:
        async with self._lock:
            typed = await self._typed_identifies(identifies, result)
            memberships = await self._memberships(audiences, result)
        users = {entry.user for entry in typed}
        by_set_tags = (
            self.options.device_token is not None and len(users) < self.options.bulk_min_users
        )
        bulk: list[_TagEntry] = memberships + ([] if by_set_tags else typed)
        if bulk:
            await self._bulk(bulk, result)
        if by_set_tags and typed:
            await self._set_tags(typed, result)

    async def _typed_identifies(
        self, items: list[tuple[int, Record]], result: DeliveryResult
    ) -> list[_TagEntry]:
        """Type every identify's tags; create the new tags; reject conflicting records."""
        if not items:
            return []
        tags_of = {index: self._tags_from_traits(record) for index, record in items}
        catalog = await self._load_catalog()
        if any(name not in catalog for tags in tags_of.values() for name in tags):
            catalog = await self._load_catalog(refresh=True)
        for _attempt in range(2):
            entries, conflicts, new_types = self._type_all(items, tags_of, catalog)
            refused = await self._create_tags(new_types)
            if not refused:
                break
            catalog = await self._load_catalog(refresh=True)
        for index, reasons in conflicts.items():
            result.rejected[index] = "tag type conflict: " + "; ".join(reasons)
        return [e for e in entries if e.index not in result.rejected]

    def _type_all(
        self,
        items: list[tuple[int, Record]],
        tags_of: dict[int, dict[str, Any]],
        catalog: dict[str, TagType],
    ) -> tuple[list[_TagEntry], dict[int, list[str]], dict[str, TagType]]:
        known = dict(catalog)
        new_types: dict[str, TagType] = {}
        entries: list[_TagEntry] = []
        conflicts: dict[int, list[str]] = {}
        for index, record in items:
            typed = type_tags(
                tags_of[index],
                known,
                parse_strings=self.options.parse_strings,
                text_tags=self._text_tags,
            )
            if typed.conflicts:
                conflicts[index] = typed.conflicts
                continue
            for name, tag_type in typed.new_types.items():
                known[name] = new_types[name] = tag_type  # first record decides
            if typed.wire:  # an identify without tags needs no call
                entries.append(_TagEntry(index, str(_user_id(record)), "set", typed.wire))
        return entries, conflicts, new_types

    def _tags_from_traits(self, record: Record) -> dict[str, Any]:
        traits = record.get("traits")
        if not isinstance(traits, dict):
            return {}
        excluded = set(self.options.exclude_traits)
        renames = self.options.tag_names
        return {
            renames.get(name, name): value
            for name, value in traits.items()
            if name not in excluded  # a null is kept: it clears the tag
        }

    async def _load_catalog(self, *, refresh: bool = False) -> dict[str, TagType]:
        """Known tag types: the state's, overridden by ``listTags`` (Pushwoosh decides)."""
        if self._catalog is not None and not refresh:
            return self._catalog
        stored = await self.context.state.scan(TAG_KEY)
        catalog = {key[len(TAG_KEY) :]: TagType(value) for key, value in stored.items()}
        if self.options.create_tags:
            try:
                listed = await self.client.list_tags()
            except AuthError as err:
                raise AuthError(
                    f"{err} (if the Pushwoosh plan has no Tags API, set create_tags = false)",
                    retry_after=err.retry_after,
                ) from err
            changed = {f"{TAG_KEY}{n}": int(t) for n, t in listed.items() if catalog.get(n) != t}
            catalog.update(listed)
            await self.context.state.set_many(changed)
        self._catalog = catalog
        return catalog

    async def _create_tags(self, new_types: dict[str, TagType]) -> list[str]:
        """Create (or just remember) new tags; return those Pushwoosh refused to create."""
        assert self._catalog is not None
        refused = []
        for name, tag_type in new_types.items():
            if self.options.create_tags:
                try:
                    await self.client.add_tag(name, tag_type)
                except ArgumentError as err:  # created meanwhile, maybe with another type
                    self.log.info("pushwoosh.tag.exists", tag=name, error=str(err))
                    refused.append(name)
                    continue
                self.log.info("pushwoosh.tag.created", tag=name, tag_type=tag_type.label)
            self._catalog[name] = tag_type
        remembered = {f"{TAG_KEY}{n}": int(t) for n, t in new_types.items() if n not in refused}
        await self.context.state.set_many(remembered)
        return refused

    async def _memberships(
        self, items: list[tuple[int, Record]], result: DeliveryResult
    ) -> list[_TagEntry]:
        """List-tag operations for audience records, after making sure of tag and filters."""
        if not items:
            return []
        tag = self.options.audience_tag
        catalog = await self._load_catalog()
        if tag not in catalog:
            catalog = await self._load_catalog(refresh=True)
        existing = catalog.get(tag)
        if existing is None:
            if await self._create_tags({tag: TagType.LIST}):
                existing = (await self._load_catalog(refresh=True)).get(tag)
            else:
                existing = TagType.LIST
        if existing != TagType.LIST:
            for index, _ in items:
                result.rejected[index] = (
                    f"audience tag {tag!r} is {existing.label if existing else 'unknown'} in "
                    f"{VENDOR}, but segment membership needs a List tag; set audience_tag"
                )
            return []
        entries = []
        for index, record in items:
            name = segment_name(record["audience"])
            try:
                await self._ensure_filter(name, record["audience"])
            except ArgumentError as err:
                result.rejected[index] = f"segment {name!r} cannot be created: {err}"
                continue
            operator = "append" if record.get("action") == "add" else "remove"
            entries.append(_TagEntry(index, str(_user_id(record)), operator, {tag: [name]}))
        return entries

    async def _ensure_filter(self, name: str, audience: dict[str, Any]) -> None:
        key = f"{FILTER_KEY}{name}"
        if await self.context.state.get(key) is not None:
            return
        expression = membership_expression(self.options.audience_tag, name)
        if self._filters is None:
            self._filters = {f.get("name"): f for f in await self.client.list_filters()}
        if name not in self._filters:
            try:
                await self.client.create_filter(name, expression)
            except ArgumentError:
                self._filters = {f.get("name"): f for f in await self.client.list_filters()}
                if name not in self._filters:
                    raise
            else:
                self.log.info("pushwoosh.segment.created", segment=name)
                self._filters[name] = {"name": name, "filter_expression": expression}
        await self.context.state.set(
            key,
            {
                "name": name,
                "expression": self._filters[name].get("filter_expression", expression),
                "audience_id": str(audience.get("id")),
                "source": audience.get("source"),
            },
        )

    async def _bulk(self, entries: list[_TagEntry], result: DeliveryResult) -> None:
        """One bulkSetTags for the batch; per-user failures become dead letters."""
        devices = [
            {"user_id": e.user, "list_operator": e.operator, "tags": e.tags} for e in entries
        ]
        request_id = await self.client.bulk_set_tags(
            devices, create_missing_tags=not self.options.create_tags
        )
        status = await self.client.bulk_set_tags_wait(request_id)
        outcomes = status.get("devices")
        if not isinstance(outcomes, list):
            return
        for entry, outcome in zip(entries, outcomes, strict=False):
            if not isinstance(outcome, dict):
                continue
            state = str(outcome.get("status", "")).lower()
            if state in ("", "ok", "success", "succeeded", "done", "completed"):
                continue
            reason = outcome.get("error") or outcome.get("message") or state
            result.rejected[entry.index] = (
                f"{VENDOR} bulkSetTags refused the tags of user {entry.user!r}: {reason}"
            )
        self.log.debug("pushwoosh.bulk.done", request_id=request_id, devices=len(devices))

    async def _set_tags(self, entries: list[_TagEntry], result: DeliveryResult) -> None:
        async def one(entry: _TagEntry) -> None:
            names = list(entry.tags)
            for start in range(0, len(names), SET_TAGS_MAX):
                chunk = {n: entry.tags[n] for n in names[start : start + SET_TAGS_MAX]}
                await self.client.set_tags(chunk, user_id=entry.user)

        await self._run_per_user(
            [(e.index, e.user, e) for e in entries], one, result, raise_if_none_done=True
        )

    # --- events -----------------------------------------------------------------------

    async def _send_events(self, items: list[tuple[int, Record]], result: DeliveryResult) -> None:
        events = [
            (index, event_of(record, self.options.screen_event, self.options.page_event))
            for index, record in items
        ]
        if self.options.events_api == "batch":
            await self._send_event_batches(events, result)
            return

        async def one(event: Event) -> None:
            await self.client.post_event(
                event.name,
                user_id=event.user,
                hwid=event.hwid,
                attributes=event.attributes,
                timestamp_utc=event.timestamp,
                device_type=event.device_type,
            )

        await self._run_per_user(
            [(index, e.user, e) for index, e in events], one, result, raise_if_none_done=True
        )

    async def _send_event_batches(
        self, events: list[tuple[int, Event]], result: DeliveryResult
    ) -> None:
        progress = _Progress()
        for start in range(0, len(events), BATCH_EVENTS_MAX):
            chunk = events[start : start + BATCH_EVENTS_MAX]
            await self._post_chunk(chunk, result, progress)

    async def _post_chunk(
        self, chunk: list[tuple[int, Event]], result: DeliveryResult, progress: _Progress
    ) -> None:
        """Post a chunk; a refused chunk is halved until the refused events are isolated."""
        payload = [event.batch_item(self.options.application) for _, event in chunk]
        try:
            await self.client.post_events_batch(payload)
        except PermanentError as err:
            if len(chunk) == 1:
                result.rejected[chunk[0][0]] = str(err)
                return
            middle = len(chunk) // 2
            await self._post_chunk(chunk[:middle], result, progress)
            await self._post_chunk(chunk[middle:], result, progress)
            return
        except RetryableError as err:
            if not progress.done and not result.retry:
                raise
            result.retry.update(index for index, _ in chunk)
            result.retry_after = err.retry_after or result.retry_after
            return
        progress.done += len(chunk)

    # --- shared: per-user calls with bounded concurrency ------------------------------

    async def _run_per_user(
        self,
        items: list[tuple[int, str, Any]],
        call: Callable[[Any], Awaitable[None]],
        result: DeliveryResult,
        *,
        raise_if_none_done: bool,
    ) -> None:
        """Run ``call`` for every item: users in parallel (up to ``concurrency``), each
        user's items in order. Refused items are rejected; after a transient failure the
        user's remaining items are retried. When nothing got through, the error is raised
        so the framework's backoff (and its credential handling) applies."""
        by_user: dict[str, list[tuple[int, Any]]] = {}
        for index, user, item in items:
            by_user.setdefault(user, []).append((index, item))
        slots = asyncio.Semaphore(self.options.concurrency)
        progress = _Progress()
        failures: list[RetryableError] = []

        async def run_user(queue: list[tuple[int, Any]]) -> None:
            async with slots:
                for position, (index, item) in enumerate(queue):
                    try:
                        await call(item)
                    except ArgumentError as err:
                        result.rejected[index] = str(err)
                        continue
                    except RetryableError as err:
                        failures.append(err)
                        result.retry.update(i for i, _ in queue[position:])
                        result.retry_after = (
                            max(err.retry_after or 0.0, result.retry_after or 0.0) or None
                        )
                        return
                    except PermanentError as err:
                        result.rejected[index] = str(err)
                        continue
                    progress.done += 1

        await asyncio.gather(*(run_user(queue) for queue in by_user.values()))
        if failures and raise_if_none_done and progress.done == 0:
            auth = next((f for f in failures if isinstance(f, AuthError)), None)
            raise auth or failures[0]


@dataclass
class _TagEntry:
    index: int
    user: str
    operator: str
    tags: dict[str, Any]


@dataclass
class _Progress:
    done: int = 0


def _user_id(record: Record) -> str | None:
    value = record.get("userId")
    return None if value in (None, "") else str(value)
