"""``pushwoosh``: identify → tags, track/screen/page → events, audience → segments.

- Tokens by API family: the Device API (``setTags``, ``postEvent``) takes only the
  Device API token, everything else the server token
  (https://docs.pushwoosh.com/developer/api-reference/api-access-token); both are
  required options, and ``check --online`` verifies each against its own family.
- ``identify``: traits become tags of the user (``userId``, plus ``hwid`` when the record
  names its device). Types are detected (`tagtypes`) and kept in state (`tagsync`).
- The call follows the batch's real size: from 50 devices (``bulk_min_users``)
  ``bulkSetTags`` (polled until done; per-device failures become dead letters), below
  that ``setTags`` per user, as Pushwoosh asks
  (https://help.pushwoosh.com/hc/en-us/articles/36360128237213).
- ``track`` (and ``screen``/``page``) → ``postEvent`` per record, or the batch events
  path (100 per request) with ``events_api = "batch"``.
- ``audience`` → one list tag holds every user's segments and one segment (filter) per
  audience selects its members; plan-limited calls fall back as `tagsync` explains.

Tag and segment work is idempotent and done first; events are posted last and never
re-sent once Pushwoosh took them (a partial failure asks to retry only the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AnyHttpUrl, Field

from connectord import (
    AuthError,
    DeliveryResult,
    Destination,
    Options,
    PermanentError,
    Record,
    Secret,
)

from .client import ArgumentError, PlanLimited, PushwooshClient, validate_application
from .const import (
    BULK_SET_TAGS_MIN,
    DEFAULT_BASE_URL,
    DEFAULT_EVENTS_URL,
    SET_TAGS_MAX,
    VENDOR,
)
from .sending import PerUserDelivery
from .tagsync import Membership, TagEntry, TagSync, apply_membership

EVENT_TYPES = frozenset({"track", "screen", "page"})
SUPPORTED = EVENT_TYPES | {"identify", "audience"}
PROBE_USER = "connectord-check"


class PushwooshOptions(Options):
    """Options of the ``pushwoosh`` destination: tokens, hosts, how tags and events go."""

    application: Annotated[str, AfterValidator(validate_application)] = Field(
        description="Pushwoosh application code, `XXXXX-XXXXX`."
    )
    api_token: Secret = Field(
        description="Server API access token (tags, segments, bulkSetTags, statistics)."
    )
    device_token: Secret = Field(
        description="Device API access token, for setTags and postEvent. Required: "
        "Pushwoosh refuses the server token on the Device API, and every batch of "
        "fewer than 50 users goes through setTags."
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
        BULK_SET_TAGS_MIN,
        ge=BULK_SET_TAGS_MIN,
        description="From this many users (devices) with tag changes in one batch, tags "
        "go through bulkSetTags; fewer go through setTags, one call per user. Pushwoosh's "
        "minimum for bulkSetTags is 50.",
    )
    create_tags: bool = Field(
        True,
        description="Create missing tags with addTag using the detected type. The Tags "
        "API is for Custom plans only: when Pushwoosh refuses it, types are kept locally "
        "and the tags to create by hand are listed in `connectord status`. Off: the Tags "
        "API is never called and bulkSetTags is asked to create missing tags.",
    )
    high_speed_setup: bool = Field(
        False,
        description="The account has High-Speed Setup: createFilter is sent the "
        "application code (Pushwoosh refuses it otherwise).",
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
    page_event: str = Field("Page Viewed", min_length=1, description="Event name for page records.")
    poll_interval: float = Field(
        2.0, gt=0, le=60, description="Seconds between bulkSetTags status polls."
    )
    max_wait: float = Field(
        300.0, gt=0, description="Seconds to wait for a bulkSetTags request to finish."
    )


class PushwooshDestination(PerUserDelivery, Destination):
    """Send identify, track/screen/page and audience records to one Pushwoosh app."""

    type = "pushwoosh"
    max_batch_size: ClassVar[int] = 500
    max_concurrency: ClassVar[int] = 64
    """Ceiling for the connector's adaptive request concurrency (postEvent and setTags
    are one call per user). Pushwoosh documents no rate limit for them; 64 is our bound."""

    Options = PushwooshOptions

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.client = PushwooshClient(
            context.http,
            application=options.application,
            api_token=options.api_token.get_secret_value(),
            device_token=options.device_token.get_secret_value(),
            base_url=str(options.base_url),
            events_url=str(options.events_url),
            poll_interval=options.poll_interval,
            max_wait=options.max_wait,
        )
        self.tags = TagSync(
            self.client,
            options,
            context.state,
            self.log,
            text_tags=frozenset(options.text_tags),
        )
        self._lock = asyncio.Lock()

    # --- online check -----------------------------------------------------------------

    async def check(self) -> str:
        """Each token against the API family that will use it; every failure named."""
        app = self.options.application
        done: list[str] = []
        failed: list[str] = []
        try:
            await self.client.list_filters()
        except (AuthError, PermanentError) as err:
            failed.append(f"api_token rejected by the server API (listFilters) for {app}: {err}")
        else:
            done.append(f"api_token accepted by the server API (listFilters) for {app}")
        try:
            await self.client.get_tags(user_id=PROBE_USER)
        except ArgumentError:
            done.append("device_token accepted by the Device API (getTags)")  # probe disliked
        except (AuthError, PermanentError) as err:
            failed.append(f"device_token rejected by the Device API (getTags) for {app}: {err}")
        else:
            done.append("device_token accepted by the Device API (getTags)")
        if failed:
            raise AuthError("; ".join(failed))
        if self.options.create_tags:
            try:
                await self.client.list_tags()
            except PlanLimited:
                done.append("Tags API not in this plan: tag types kept locally (see status)")
        return "; ".join(done)

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
        """One bulkSetTags for 50+ users, else setTags per user (the batch's real size)."""
        async with self._lock:
            typed = await self.tags.typed_identifies(identifies, result)
            changes = await self.tags.memberships(audiences, result)
            users = {e.user for e in typed} | {c.user for c in changes}
            if not users:
                return
            lists = await self.tags.member_lists({c.user for c in changes})
            if len(users) >= self.options.bulk_min_users:
                await self._bulk(typed, changes, lists, result)
            else:
                await self._set_tags(typed, changes, lists, result)

    async def _bulk(
        self,
        typed: list[TagEntry],
        changes: list[Membership],
        lists: dict[str, list[str]],
        result: DeliveryResult,
    ) -> None:
        """One bulkSetTags for the batch; per-device failures become dead letters."""
        tag = self.options.audience_tag
        devices: list[dict[str, Any]] = []
        for e in typed:
            device = {"user_id": e.user, "list_operator": "set", "tags": e.tags}
            devices.append(device | ({"hwid": e.hwid} if e.hwid else {}))
        for c in changes:
            operator = "append" if c.add else "remove"
            devices.append({"user_id": c.user, "list_operator": operator, "tags": {tag: [c.name]}})
        indexes = [e.index for e in typed] + [c.index for c in changes]
        request_id = await self.client.bulk_set_tags(
            devices, create_missing_tags=not self.tags.tags_api
        )
        status = await self.client.bulk_set_tags_wait(request_id)
        outcomes = status.get("devices") if isinstance(status.get("devices"), list) else []
        for index, device, outcome in zip(indexes, devices, outcomes, strict=False):
            state = str(outcome.get("status", "")).lower() if isinstance(outcome, dict) else ""
            if state in ("", "ok", "success", "succeeded", "done", "completed"):
                continue
            reason = outcome.get("error") or outcome.get("message") or state
            result.rejected[index] = (
                f"{VENDOR} bulkSetTags refused the tags of user {device['user_id']!r}: {reason}"
            )
        for c in changes:
            if c.index not in result.rejected:
                lists[c.user] = apply_membership(lists[c.user], c)
        await self.tags.save_member_lists(lists)
        self.log.debug("pushwoosh.bulk.done", request_id=request_id, devices=len(devices))

    async def _set_tags(
        self,
        typed: list[TagEntry],
        changes: list[Membership],
        lists: dict[str, list[str]],
        result: DeliveryResult,
    ) -> None:
        """setTags per user, each user's records in order. A membership change sends the
        user's whole segment list (a plain list value, which setTags documents)."""
        tag = self.options.audience_tag
        done: dict[str, list[str]] = {}

        async def one(item: TagEntry | Membership) -> None:
            if isinstance(item, Membership):
                after = apply_membership(done.get(item.user, lists[item.user]), item)
                await self.client.set_tags({tag: after}, user_id=item.user)
                done[item.user] = after
                return
            names = list(item.tags)
            for start in range(0, len(names), SET_TAGS_MAX):
                chunk = {n: item.tags[n] for n in names[start : start + SET_TAGS_MAX]}
                await self.client.set_tags(chunk, user_id=item.user, hwid=item.hwid)

        items = sorted([*typed, *changes], key=lambda item: item.index)
        await self._run_per_user(
            [(i.index, i.user, i) for i in items], one, result, raise_if_none_done=True
        )
        if done:
            await self.tags.save_member_lists(done)


def _user_id(record: Record) -> str | None:
    value = record.get("userId")
    return None if value in (None, "") else str(value)
