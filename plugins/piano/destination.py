"""``piano.collect``: send track, page and screen records to Piano Analytics' Collection API.

One request per visitor (and per end-user agent/address) per delivery batch, at most 50
events or 64 KB each, several requests in flight at once. The body follows what
``piano-analytics-js`` 6.17 sends (see `payloads`). Records of other types, and records
whose property keys cannot be sent (unless ``invalid_keys = "drop"``), become dead
letters with the reason; events a privacy mode withholds are counted and
logged, not sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import aiohttp
import orjson
from pydantic import AfterValidator, AnyHttpUrl, Field

from connectord import (
    ConnectordError,
    DeliveryResult,
    Destination,
    Options,
    PermanentError,
    Record,
    RecordRejected,
    RetryableError,
    __version__,
)

from .client import COLLECT_VENDOR, CollectClient
from .const import (
    COLLECT_PATH,
    COLLECTION_DOMAIN,
    EVENT_NAME,
    MAX_EVENTS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    PARALLEL_POSTS,
    PRIVACY_MODES,
)
from .payloads import Outgoing, to_outgoing

PrivacyMode = Literal["optin", "optout", "exempt", "no-consent", "no-storage"]
assert set(PrivacyMode.__args__) == set(PRIVACY_MODES)  # type: ignore[attr-defined]


def validate_collection_domain(value: str) -> str:
    """A bare host name: no scheme, no path, no port."""
    text = value.strip().lower()
    scheme, sep, rest = text.partition("://")
    if sep:
        host = rest.split("/", 1)[0]
        raise ValueError(
            f"collection_domain is a host name, not a URL: write {host!r} without "
            f"{scheme}:// (to reach a proxy or an emulator, set base_url instead)"
        )
    if "/" in text:
        host, _, path = text.partition("/")
        raise ValueError(
            f"collection_domain must not carry a path: write {host!r} without '/{path}' "
            f"(the path is the `path` option, {COLLECT_PATH!r} by default)"
        )
    if ":" in text:
        raise ValueError("collection_domain must not carry a port; set base_url for that")
    if not COLLECTION_DOMAIN.match(text):
        raise ValueError(
            "collection_domain is not a host name; expected your organisation's "
            "collection domain such as 'abcdefg.pa-cd.com' (Piano Analytics → "
            "Data Collection → Collection Domains)"
        )
    return text


def validate_path(value: str) -> str:
    path = value.strip().strip("/")
    if not path or any(c in path for c in "?#& "):
        raise ValueError("path is the collection path such as 'event': not empty, no query")
    return path


class PianoCollectDestination(Destination):
    """Send track, page and screen records to Piano Analytics (Collection API)."""

    type = "piano.collect"
    max_batch_size: ClassVar[int] = 500

    class Options(Options):
        site_id: int = Field(ge=1, description="Numeric Piano Analytics site id (`s=`).")
        collection_domain: Annotated[str, AfterValidator(validate_collection_domain)] = Field(
            description="Your organisation's collection domain, a host name such as "
            "`abcdefg.pa-cd.com` (Data Collection → Collection Domains), or your CNAME."
        )
        base_url: AnyHttpUrl | None = Field(
            None,
            description="Send to this URL instead of `https://<collection_domain>` "
            "(a proxy or an emulator).",
        )
        path: Annotated[str, AfterValidator(validate_path)] = Field(
            COLLECT_PATH, description="Collection path; Piano's default is `event`."
        )
        privacy_mode: PrivacyMode = Field(
            "optin",
            description="Privacy mode for records that carry none in "
            "`context.piano.privacy_mode`: `optin` sends everything with consent; "
            "`optout` and `no-consent` send events with only privacy and timing "
            "properties under a fixed visitor id; `exempt` sends only page and click "
            "events with Piano's exempt allow-list; `no-storage` sends everything under "
            "the `no-storage` visitor id.",
        )
        keys: Literal["as_given", "normalise"] = Field(
            "as_given",
            description='Property keys: "as_given" sends them unchanged, as Piano\'s JS '
            'SDK does (only keys over 40 characters are refused); "normalise" makes them '
            "lowercase letters, digits and '_' as the Android SDK requires "
            "(`Order Total` → `order_total`).",
        )
        invalid_keys: Literal["reject", "drop"] = Field(
            "reject",
            description='A property key that cannot be made valid: "reject" dead-letters '
            'the record with the reason; "drop" sends it without that property and logs '
            "`piano.property.dropped`.",
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        base = str(options.base_url) if options.base_url else f"https://{options.collection_domain}"
        self.base_url = base.rstrip("/")
        self.client = CollectClient(context.http, self.base_url, options.site_id, options.path)
        self._parallel = asyncio.Semaphore(PARALLEL_POSTS)
        self._unusual_names: set[str] = set()

    async def check(self) -> str:
        """The collection endpoint takes no credentials: prove the host answers."""
        try:
            status = await self.client.probe()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ConnectordError(
                f"cannot reach the collection endpoint {self.base_url}: "
                f"{err or type(err).__name__}; check collection_domain "
                f"({self.options.collection_domain!r})"
            ) from err
        if status >= 500:
            raise RetryableError(f"{COLLECT_VENDOR} at {self.base_url} answered HTTP {status}")
        return f"collection endpoint {self.base_url} answers (site {self.options.site_id})"

    # --- delivery ---------------------------------------------------------------------

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        result = DeliveryResult()
        groups = self.prepare(records, result)
        chunks = [chunk for group in groups.values() for chunk in request_chunks(group)]
        errors: list[RetryableError] = []
        outcomes = await asyncio.gather(*(self.post(chunk, result, errors) for chunk in chunks))
        if errors and not any(outcomes) and not result.rejected:
            raise errors[0]  # nothing got through: let the framework back off as a whole
        if errors:
            result.retry_after = max((e.retry_after or 0 for e in errors), default=0) or None
        return result if result.rejected or result.retry else None

    def prepare(
        self, records: Sequence[Record], result: DeliveryResult
    ) -> dict[tuple[str, str | None, str | None], list[tuple[int, Outgoing]]]:
        """Turn records into events grouped per request; reject what cannot be sent."""
        groups: dict[tuple[str, str | None, str | None], list[tuple[int, Outgoing]]] = {}
        withheld = 0
        dropped: dict[str, int] = {}
        for index, record in enumerate(records):
            try:
                outgoing = to_outgoing(
                    record,
                    default_mode=self.options.privacy_mode,
                    version=__version__,
                    drop_invalid_keys=self.options.invalid_keys == "drop",
                    normalise_keys=self.options.keys == "normalise",
                )
            except RecordRejected as err:
                result.rejected[index] = str(err)
                continue
            if outgoing is None:
                withheld += 1
                continue
            for problem in outgoing.dropped_keys:
                dropped[str(problem)] = dropped.get(str(problem), 0) + 1
            self.note_event_name(outgoing.event["name"])
            groups.setdefault(outgoing.request_key, []).append((index, outgoing))
        if dropped:
            self.log.warning("piano.property.dropped", problems=dropped)
        if withheld:
            self.log.info(
                "piano.privacy.withheld", count=withheld, default_mode=self.options.privacy_mode
            )
        return groups

    def note_event_name(self, name: str) -> None:
        """Warn once per name that Piano's lowercase dotted convention would not accept."""
        if not EVENT_NAME.match(name) and name not in self._unusual_names:
            self._unusual_names.add(name)
            self.log.warning(
                "piano.event_name.unusual",
                name=name,
                hint="Piano event names are lowercase letters, digits, '_' and '.'",
            )

    async def post(
        self,
        chunk: list[tuple[int, Outgoing]],
        result: DeliveryResult,
        errors: list[RetryableError],
    ) -> bool:
        """Send one request; on a 4xx split it to find the events at fault.

        Returns whether any event of the chunk was accepted.
        """
        first = chunk[0][1]
        try:
            async with self._parallel:
                await self.client.send(
                    first.visitor_id,
                    [o.event for _, o in chunk],
                    user_agent=first.user_agent,
                    ip=first.ip,
                )
        except PermanentError as err:
            if len(chunk) == 1:
                result.rejected[chunk[0][0]] = str(err)
                return False
            middle = len(chunk) // 2
            halves = await asyncio.gather(
                self.post(chunk[:middle], result, errors), self.post(chunk[middle:], result, errors)
            )
            return any(halves)
        except RetryableError as err:
            result.retry.update(index for index, _ in chunk)
            errors.append(err)
            return False
        except (aiohttp.ClientError, TimeoutError) as err:
            result.retry.update(index for index, _ in chunk)
            errors.append(RetryableError(f"{COLLECT_VENDOR} unreachable: {err!r}"))
            return False
        return True


def request_chunks(group: list[tuple[int, Outgoing]]) -> list[list[tuple[int, Outgoing]]]:
    """Split one visitor's events into requests of at most 50 events and ~64 KB."""
    chunks: list[list[tuple[int, Outgoing]]] = []
    current: list[tuple[int, Outgoing]] = []
    size = 0
    for item in group:
        event_size = len(orjson.dumps(item[1].event)) + 1
        if current and (
            len(current) >= MAX_EVENTS_PER_REQUEST or size + event_size > MAX_REQUEST_BYTES
        ):
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += event_size
    if current:
        chunks.append(current)
    return chunks
