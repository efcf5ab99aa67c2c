"""``segment.to_pendo``: Segment records in the shape the ``pendo`` destination reads.

The defaults follow Segment's Pendo destinations:

- ``userId`` is the Pendo visitor id; a user known only by ``anonymousId`` becomes
  Pendo's anonymous visitor ``_PENDO_T_<anonymousId>`` when ``anonymous_visitors`` is on,
  and is dropped otherwise.
- ``identify`` traits (completed by ``context.traits``) are visitor metadata; ``group``
  (``groupId`` and traits) is account metadata, whoever the user is.
- ``track`` (and ``page``/``screen``) carry the account as ``context.groupId``: the
  message's own, else the ``groupId`` of the user's last ``group`` call.
- ``alias`` has no Pendo equivalent and is dropped; so is anything whose
  ``integrations`` switch Pendo off.

The output stays in the record model: the ``pendo`` destination builds Pendo payloads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from connectord import Mapping, Options, Record, as_record_list

ANONYMOUS_PREFIX = "_PENDO_T_"
"""Pendo's prefix for anonymous visitor ids (as its agent and Segment's Pendo Web use)."""

PENDO_TYPES = frozenset({"identify", "group", "track", "page", "screen"})
ACCOUNT_TYPES = frozenset({"identify", "track", "page", "screen"})
"""Record types that carry the visitor's account as ``context.groupId``."""

CACHE_SIZE = 50_000


def visitor_id(record: Record, *, anonymous_visitors: bool) -> str | None:
    """The Pendo visitor id of a record's user, or ``None`` when it has none."""
    user = record.get("userId")
    if user not in (None, ""):
        return str(user)
    anonymous = record.get("anonymousId")
    if anonymous_visitors and anonymous not in (None, ""):
        return f"{ANONYMOUS_PREFIX}{anonymous}"
    return None


def pendo_enabled(record: Record, name: str) -> bool:
    """Segment's ``integrations`` switch: ``{name: false}``, or ``{All: false}`` without
    ``{name: true}``, keeps the record away from this destination."""
    integrations = record.get("integrations")
    if not isinstance(integrations, dict):
        return True
    if name in integrations:
        return integrations[name] is not False
    return integrations.get("All", True) is not False


def group_membership(record: Record, *, anonymous_visitors: bool) -> tuple[str, str] | None:
    """``(visitor, account)`` that a ``group`` call establishes, if it names both."""
    if record.get("type") != "group" or record.get("groupId") in (None, ""):
        return None
    visitor = visitor_id(record, anonymous_visitors=anonymous_visitors)
    return None if visitor is None else (visitor, str(record["groupId"]))


def needs_account(record: Record) -> bool:
    """Whether the record wants an account it does not name itself."""
    if record.get("type") not in ACCOUNT_TYPES:
        return False
    context = record.get("context")
    return not (isinstance(context, dict) and context.get("groupId") not in (None, ""))


def identify_traits(record: Record) -> Any:
    """An identify's traits, completed by ``context.traits``: RudderStack's libraries send
    identify traits only there, Segment's send them at the root (which wins)."""
    traits = record.get("traits")
    context = record.get("context")
    copy = context.get("traits") if isinstance(context, dict) else None
    if not isinstance(copy, dict) or not copy:
        return traits
    if traits is None:
        return dict(copy)
    return {**copy, **traits} if isinstance(traits, dict) else traits


def to_pendo(
    record: Record,
    *,
    anonymous_visitors: bool = False,
    account: str | None = None,
    integration_name: str = "Pendo",
) -> Record | None:
    """Map one record; ``account`` is the user's last known ``groupId`` (if any).

    Pure: the same inputs give the same output and nothing else changes.
    """
    kind = record.get("type")
    if kind not in PENDO_TYPES or not pendo_enabled(record, integration_name):
        return None
    out = dict(record)
    if kind == "identify" and (traits := identify_traits(record)) is not None:
        out["traits"] = traits
    visitor = visitor_id(record, anonymous_visitors=anonymous_visitors)
    if visitor is None:
        if kind != "group":  # account metadata needs no visitor
            return None
    else:
        out["userId"] = visitor
    if account is not None and needs_account(record):
        context = record.get("context")
        out["context"] = {**(context if isinstance(context, dict) else {}), "groupId": account}
    return out


class SegmentToPendo(Mapping):
    """Segment spec → Pendo visitors, accounts and track events (default mapping)."""

    type = "segment.to_pendo"

    class Options(Options):
        anonymous_visitors: bool = Field(
            False,
            description="Send users known only by anonymousId as Pendo anonymous visitors "
            "`_PENDO_T_<anonymousId>`; off drops them.",
        )
        remember_groups: bool = Field(
            True,
            description="Give track/page/screen/identify records without context.groupId the "
            "groupId of the user's last group call (kept in the state database).",
        )
        integration_name: str = Field(
            "Pendo",
            min_length=1,
            description="The key in a message's `integrations` that switches Pendo on or off, "
            'e.g. {"Pendo": false}.',
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self._accounts: OrderedDict[str, str | None] = OrderedDict()
        """Recently seen visitor → account (``None``: none known); the state database is
        the durable copy. Only this mapping instance writes those keys, so a cached
        answer stays true."""

    def map(self, record: Record) -> Record | None:
        return to_pendo(
            record,
            anonymous_visitors=self.options.anonymous_visitors,
            integration_name=self.options.integration_name,
        )

    async def map_batch(self, records: Sequence[Record]) -> list[list[Record] | Exception]:
        """Map in order, with each user's last group call in hand.

        Prefetch the accounts of the batch's visitors, let group calls in the batch
        update them as they come (a track after a group call in the same batch gets its
        account), and store what was learned.
        """
        options = self.options
        anonymous = options.anonymous_visitors
        accounts = await self._prefetch(records) if options.remember_groups else {}
        learned: dict[str, str] = {}
        out: list[list[Record] | Exception] = []
        for record in records:
            try:
                membership = group_membership(record, anonymous_visitors=anonymous)
                if membership is not None and options.remember_groups:
                    accounts[membership[0]] = learned[membership[0]] = membership[1]
                visitor = visitor_id(record, anonymous_visitors=anonymous)
                mapped = to_pendo(
                    record,
                    anonymous_visitors=anonymous,
                    account=accounts.get(visitor) if visitor is not None else None,
                    integration_name=options.integration_name,
                )
                out.append(as_record_list(mapped))
            except Exception as err:  # one bad record must not sink its batch
                out.append(err)
        if learned:
            await self.context.state.set_many({_key(v): a for v, a in learned.items()})
            self._remember(learned)
        return out

    async def _prefetch(self, records: Sequence[Record]) -> dict[str, str | None]:
        anonymous = self.options.anonymous_visitors
        wanted = {
            visitor
            for record in records
            if needs_account(record)
            and (visitor := visitor_id(record, anonymous_visitors=anonymous)) is not None
        }
        accounts = {v: self._accounts[v] for v in wanted if v in self._accounts}
        missing = [v for v in wanted if v not in accounts]
        if missing:
            stored = await self.context.state.get_many(_key(v) for v in missing)
            found = {v: stored.get(_key(v)) for v in missing}
            accounts.update(found)
            self._remember(found)
        return accounts

    def _remember(self, accounts: dict[str, str | None]) -> None:
        cache = self._accounts
        for visitor, account in accounts.items():
            cache[visitor] = account
            cache.move_to_end(visitor)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)


def _key(visitor: str) -> str:
    return f"account:{visitor}"
