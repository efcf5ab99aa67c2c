"""Tags and segments for the ``pushwoosh`` destination: types, plan fallback, memberships.

Two Pushwoosh facts shape this module:

- the Tags API (``listTags``/``addTag``) is "for Custom Plan subscriptions only"
  (https://docs.pushwoosh.com/platform-docs/api-reference/tags). It is tried once; when
  Pushwoosh refuses it (403) the destination keeps tag types in its own state, still
  delivers (``setTags``; ``bulkSetTags`` with ``create_missing_tags``), and records what
  the operator must create by hand as *notices* (``connectord status``) and in the log
  (``pushwoosh.tags_api.unavailable``, ``pushwoosh.tags.create_by_hand``);
- ``createFilter``'s ``application`` field is for High-Speed Setup accounts only
  (https://docs.pushwoosh.com/platform-docs/api-reference/filters), so it is sent only
  with ``high_speed_setup = true``; a segment Pushwoosh will not create is a notice
  with its expression (``pushwoosh.segment.create_by_hand``), and membership tags are
  delivered all the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from connectord import DeliveryResult, Record

from .client import ArgumentError, PlanLimited, PushwooshClient
from .const import VENDOR, TagType
from .events import hwid_of
from .segments import membership_expression, segment_name
from .tagtypes import type_tags

TAG_KEY = "tag:"
FILTER_KEY = "filter:"
MEMBER_KEY = "member:"
NOTICE_KEY = "notice:"
TAGS_API_KEY = "plan:tags_api_refused_at"
TAGS_API_REPROBE = 24 * 3600.0
"""Seconds before a refused Tags API is tried again (plans change)."""


@dataclass
class TagEntry:
    """Tag values for one user from one record (an identify)."""

    index: int
    user: str
    tags: dict[str, Any]
    hwid: str | None = None


@dataclass
class Membership:
    """One audience record: ``user`` enters (``add``) or leaves the segment ``name``."""

    index: int
    user: str
    name: str
    add: bool


@dataclass
class TagSync:
    """Catalog of tag types, plan detection and segment bookkeeping for one connector."""

    client: PushwooshClient
    options: Any
    state: Any
    log: Any
    catalog: dict[str, TagType] | None = None
    filters: dict[str, Any] | None = None
    tags_api: bool | None = None
    text_tags: frozenset[str] = field(default_factory=frozenset)

    # --- Tags API, with the plan fallback --------------------------------------------

    async def tags_api_available(self) -> bool:
        """Whether listTags/addTag may be called (``create_tags`` on, not refused lately)."""
        if not self.options.create_tags:
            return False
        if self.tags_api is None:
            refused_at = await self.state.get(TAGS_API_KEY)
            self.tags_api = refused_at is None or time.time() - refused_at > TAGS_API_REPROBE
        return self.tags_api

    async def _tags_api_refused(self, err: PlanLimited) -> None:
        self.tags_api = False
        await self.state.set_many(
            {
                TAGS_API_KEY: time.time(),
                f"{NOTICE_KEY}tags_api": f"{err}. Tag types are kept by connectord; "
                "tags it cannot create are listed under notice:tags (create them in the "
                "Control Panel with those types).",
            }
        )
        self.log.warning("pushwoosh.tags_api.unavailable", method=err.method, error=str(err))

    async def load_catalog(self, *, refresh: bool = False) -> dict[str, TagType]:
        """Known tag types: the state's, overridden by ``listTags`` when the plan has it."""
        if self.catalog is not None and not refresh:
            return self.catalog
        stored = await self.state.scan(TAG_KEY)
        catalog = {key[len(TAG_KEY) :]: TagType(value) for key, value in stored.items()}
        if await self.tags_api_available():
            try:
                listed = await self.client.list_tags()
            except PlanLimited as err:
                await self._tags_api_refused(err)
            else:
                changed: dict[str, Any] = {
                    f"{TAG_KEY}{n}": int(t) for n, t in listed.items() if catalog.get(n) != t
                }
                catalog.update(listed)
                await self.state.set_many(changed | await self._notices_resolved(listed))
        self.catalog = catalog
        return catalog

    async def _notices_resolved(self, listed: dict[str, TagType]) -> dict[str, Any]:
        """State changes once listTags answers: the plan refusal is over, and tags that
        now exist need no creating by hand."""
        changes: dict[str, Any] = {TAGS_API_KEY: None, f"{NOTICE_KEY}tags_api": None}
        by_hand = await self.state.get(f"{NOTICE_KEY}tags") or {}
        if by_hand:
            left = {name: label for name, label in by_hand.items() if name not in listed}
            changes[f"{NOTICE_KEY}tags"] = left or None
        return changes

    async def create_tags(self, new_types: dict[str, TagType]) -> list[str]:
        """Create (or remember, and list for the operator) new tags; return those that
        Pushwoosh refused to create because they exist already."""
        catalog = await self.load_catalog()
        refused: list[str] = []
        by_hand: dict[str, str] = {}
        for name, tag_type in new_types.items():
            if await self.tags_api_available():
                try:
                    await self.client.add_tag(name, tag_type)
                except PlanLimited as err:
                    await self._tags_api_refused(err)
                except ArgumentError as err:  # created meanwhile, maybe with another type
                    self.log.info("pushwoosh.tag.exists", tag=name, error=str(err))
                    refused.append(name)
                    continue
                else:
                    self.log.info("pushwoosh.tag.created", tag=name, tag_type=tag_type.label)
            if self.options.create_tags and not self.tags_api:
                by_hand[name] = tag_type.label
            catalog[name] = tag_type
        remembered = {f"{TAG_KEY}{n}": int(t) for n, t in new_types.items() if n not in refused}
        await self.state.set_many(remembered)
        if by_hand:
            await self._note_tags_by_hand(by_hand)
        return refused

    async def _note_tags_by_hand(self, by_hand: dict[str, str]) -> None:
        key = f"{NOTICE_KEY}tags"
        listed = dict(await self.state.get(key) or {})
        listed.update(by_hand)
        await self.state.set(key, listed)
        self.log.warning("pushwoosh.tags.create_by_hand", tags=by_hand)

    # --- identify -------------------------------------------------------------------

    async def typed_identifies(
        self, items: list[tuple[int, Record]], result: DeliveryResult
    ) -> list[TagEntry]:
        """Type every identify's tags; create the new tags; reject conflicting records."""
        if not items:
            return []
        tags_of = {index: self.tags_from_traits(record) for index, record in items}
        catalog = await self.load_catalog()
        if any(name not in catalog for tags in tags_of.values() for name in tags):
            catalog = await self.load_catalog(refresh=True)
        for _attempt in range(2):
            entries, conflicts, new_types = self._type_all(items, tags_of, catalog)
            if not await self.create_tags(new_types):
                break
            catalog = await self.load_catalog(refresh=True)
        for index, reasons in conflicts.items():
            result.rejected[index] = "tag type conflict: " + "; ".join(reasons)
        return [e for e in entries if e.index not in result.rejected]

    def _type_all(
        self,
        items: list[tuple[int, Record]],
        tags_of: dict[int, dict[str, Any]],
        catalog: dict[str, TagType],
    ) -> tuple[list[TagEntry], dict[int, list[str]], dict[str, TagType]]:
        known = dict(catalog)
        new_types: dict[str, TagType] = {}
        entries: list[TagEntry] = []
        conflicts: dict[int, list[str]] = {}
        for index, record in items:
            typed = type_tags(
                tags_of[index],
                known,
                parse_strings=self.options.parse_strings,
                text_tags=self.text_tags,
            )
            if typed.conflicts:
                conflicts[index] = typed.conflicts
                continue
            for name, tag_type in typed.new_types.items():
                known[name] = new_types[name] = tag_type  # first record decides
            if typed.wire:  # an identify without tags needs no call
                hwid = hwid_of(record.get("context") or {})
                entries.append(TagEntry(index, str(record["userId"]), typed.wire, hwid))
        return entries, conflicts, new_types

    def tags_from_traits(self, record: Record) -> dict[str, Any]:
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

    # --- audiences ------------------------------------------------------------------

    async def memberships(
        self, items: list[tuple[int, Record]], result: DeliveryResult
    ) -> list[Membership]:
        """Membership changes of audience records, after making sure of tag and segments."""
        if not items:
            return []
        tag = self.options.audience_tag
        catalog = await self.load_catalog()
        if tag not in catalog:
            catalog = await self.load_catalog(refresh=True)
        existing = catalog.get(tag)
        if existing is None:
            if await self.create_tags({tag: TagType.LIST}):
                existing = (await self.load_catalog(refresh=True)).get(tag)
            else:
                existing = TagType.LIST
        if existing != TagType.LIST:
            for index, _ in items:
                result.rejected[index] = (
                    f"audience tag {tag!r} is {existing.label if existing else 'unknown'} in "
                    f"{VENDOR}, but segment membership needs a List tag; set audience_tag"
                )
            return []
        changes = []
        for index, record in items:
            name = segment_name(record["audience"])
            await self.ensure_filter(name, record["audience"])
            add = record.get("action") == "add"
            changes.append(Membership(index, str(record["userId"]), name, add))
        return changes

    async def ensure_filter(self, name: str, audience: dict[str, Any]) -> None:
        """Make sure the segment exists, or tell the operator how to create it."""
        key = f"{FILTER_KEY}{name}"
        if await self.state.get(key) is not None:
            return
        expression = membership_expression(self.options.audience_tag, name)
        if self.filters is None:
            self.filters = {f.get("name"): f for f in await self.client.list_filters()}
        if name not in self.filters:
            try:
                await self.client.create_filter(
                    name, expression, with_application=self.options.high_speed_setup
                )
            except (ArgumentError, PlanLimited) as err:
                self.filters = {f.get("name"): f for f in await self.client.list_filters()}
                if name not in self.filters:
                    await self._note_segment_by_hand(name, expression, str(err))
                    return
            else:
                self.log.info("pushwoosh.segment.created", segment=name)
                self.filters[name] = {"name": name, "filter_expression": expression}
        await self.state.set_many(
            {
                key: {
                    "name": name,
                    "expression": self.filters[name].get("filter_expression", expression),
                    "audience_id": str(audience.get("id")),
                    "source": audience.get("source"),
                },
                f"{NOTICE_KEY}segment:{name}": None,
            }
        )

    async def _note_segment_by_hand(self, name: str, expression: str, error: str) -> None:
        await self.state.set(
            f"{NOTICE_KEY}segment:{name}",
            f"create segment {name!r} in the Control Panel with the filter {expression} "
            f"({VENDOR} refused createFilter: {error}); memberships are delivered as tags",
        )
        self.log.warning(
            "pushwoosh.segment.create_by_hand", segment=name, expression=expression, error=error
        )

    async def member_lists(self, users: set[str]) -> dict[str, list[str]]:
        """Segments each user is in, as the destination last set them."""
        stored = await self.state.get_many([f"{MEMBER_KEY}{u}" for u in users])
        return {u: list(stored.get(f"{MEMBER_KEY}{u}") or []) for u in users}

    async def save_member_lists(self, lists: dict[str, list[str]]) -> None:
        await self.state.set_many({f"{MEMBER_KEY}{u}": v for u, v in lists.items()})


def apply_membership(current: list[str], change: Membership) -> list[str]:
    """The user's segment list after one change (order kept, no duplicates)."""
    if change.add:
        return current if change.name in current else [*current, change.name]
    return [name for name in current if name != change.name]
