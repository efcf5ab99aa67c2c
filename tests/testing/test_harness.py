"""run_source, deliver and map_records against an emulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import pytest
from aiohttp import web
from pydantic import Field

from connectord import (
    Batch,
    DeliveryResult,
    Destination,
    Mapping,
    Options,
    PermanentError,
    PullSource,
    Record,
    RecordRejected,
    RetryableError,
    Secret,
)
from connectord.http import raise_for_status
from connectord.records import stable_message_id
from connectord.testing import (
    VendorEmulator,
    assert_valid_records,
    deliver,
    identify,
    json_response,
    make_context,
    map_records,
    paginate,
    run_source,
    track,
)

ENTRIES = [{"id": i, "user": f"user-{i % 3}", "kind": "signup"} for i in range(1, 8)]


class Ledger(VendorEmulator):
    """Entries paged by cursor after an id; uploads that refuse records without a user."""

    def __init__(self) -> None:
        super().__init__()
        self.uploaded: list[dict[str, Any]] = []

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/entries", self.entries)
        app.router.add_post("/upload", self.upload)

    async def entries(self, request: web.Request) -> web.Response:
        self.require_bearer(request, "key-1")
        after = int(request.query.get("after", "0"))
        newer = [e for e in ENTRIES if e["id"] > after]
        page = paginate(newer, cursor=request.query.get("cursor"), limit=3)
        return json_response({"entries": page.items, "next": page.next_cursor})

    async def upload(self, request: web.Request) -> web.Response:
        self.require_bearer(request, "key-1")
        rows = (await request.json())["rows"]
        errors = {str(i): "user missing" for i, row in enumerate(rows) if not row.get("user")}
        self.uploaded += [row for i, row in enumerate(rows) if str(i) not in errors]
        return json_response({"errors": errors})


class LedgerSource(PullSource):
    """Read ledger entries newer than the checkpoint."""

    type = "ledger.entries"

    class Options(Options):
        base_url: str = Field(description="API host.")
        api_key: Secret = Field(description="Bearer key.")

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        after, cursor = checkpoint or 0, None
        while True:
            params = {"after": str(after), **({"cursor": cursor} if cursor else {})}
            async with self.context.http().get(
                f"{self.options.base_url}/entries", params=params, headers=self.auth()
            ) as response:
                raise_for_status(
                    response.status, response.headers, await response.text(), vendor="ledger"
                )
                body = await response.json()
            records = [
                {
                    "type": "track",
                    "event": entry["kind"],
                    "userId": entry["user"],
                    "messageId": stable_message_id("ledger", entry["id"]),
                }
                for entry in body["entries"]
            ]
            last = body["entries"][-1]["id"] if body["entries"] else None
            yield Batch(records, checkpoint=last, state={"last_seen": last} if last else None)
            cursor = body["next"]
            if cursor is None:
                return

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.options.api_key.get_secret_value()}"}


class LedgerDestination(Destination):
    """Upload records as rows; the vendor refuses rows without a user."""

    type = "ledger"
    max_batch_size: ClassVar[int] = 2

    class Options(Options):
        base_url: str = Field(description="API host.")
        api_key: Secret = Field(description="Bearer key.")

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        rows = [{"user": r.get("userId"), "event": r.get("event")} for r in records]
        async with self.context.http().post(
            f"{self.options.base_url}/upload",
            json={"rows": rows},
            headers={"Authorization": f"Bearer {self.options.api_key.get_secret_value()}"},
        ) as response:
            raise_for_status(
                response.status, response.headers, await response.text(), vendor="ledger"
            )
            errors = (await response.json())["errors"]
        return (
            DeliveryResult(rejected={int(i): why for i, why in errors.items()}) if errors else None
        )


class Shout(Mapping):
    """Upper-case event names; refuse records without one, drop identifies."""

    type = "ledger.shout"

    def map(self, record: Record) -> Record | None:
        if record["type"] == "identify":
            return None
        if not record.get("event"):
            raise RecordRejected("no event to shout")
        return {**record, "event": record["event"].upper()}


@pytest.fixture
def ledger(emulator_server):
    emulator = Ledger()
    server = emulator_server(emulator)
    return emulator, {"base_url": server.url, "api_key": "key-1"}


async def test_run_source_collects_records_and_checkpoints(ledger):
    emulator, options = ledger
    run = await run_source(LedgerSource, options)
    records, batches = run  # unpacks like the historical tuple
    assert [r["userId"] for r in records] == [e["user"] for e in ENTRIES]
    assert run.checkpoints == [3, 6, 7]
    assert run.checkpoint == 7
    assert run.state == {"last_seen": 7}
    assert len(batches) == 3
    assert_valid_records(records)
    assert len(emulator.requests_to("/entries")) == 3


async def test_run_source_resumes_from_a_checkpoint(ledger):
    _, options = ledger
    run = await run_source(LedgerSource, options, checkpoint=5)
    assert [r["messageId"] for r in run.records] == [
        stable_message_id("ledger", 6),
        stable_message_id("ledger", 7),
    ]
    again = await run_source(LedgerSource, options, checkpoint=run.checkpoint)
    assert again.records == []
    assert again.checkpoint is None  # nothing new: the stored checkpoint stays


async def test_run_source_stops_after_max_batches(ledger):
    _, options = ledger
    run = await run_source(LedgerSource, options, max_batches=1)
    assert run.checkpoints == [3]


async def test_run_source_propagates_vendor_errors(ledger):
    emulator, options = ledger
    emulator.fail_next(status=503)
    with pytest.raises(RetryableError, match="ledger answered HTTP 503"):
        await run_source(LedgerSource, options)
    with pytest.raises(PermanentError):
        emulator.fail_next(status=404)
        await run_source(LedgerSource, options)


async def test_deliver_chunks_and_reports_indices_into_the_input(ledger):
    emulator, options = ledger
    records = [track(user_id="u-1"), track(user_id=None, anonymousId="a"), track(user_id="u-3")]
    result = await deliver(LedgerDestination, options, records)
    assert result.rejected == {1: "user missing"}
    assert result.retry == set()
    assert len(emulator.requests_to("/upload")) == 2  # max_batch_size = 2
    assert [row["user"] for row in emulator.uploaded] == ["u-1", "u-3"]


async def test_deliver_raises_what_the_destination_raises(ledger):
    emulator, options = ledger
    emulator.throttle_next(retry_after=12)
    with pytest.raises(RetryableError) as caught:
        await deliver(LedgerDestination, options, [track()])
    assert caught.value.retry_after == 12


async def test_map_records_returns_outputs_or_errors_per_input():
    results = await map_records(Shout, {}, [track("paid"), identify(), {"type": "track"}])
    assert results[0][0]["event"] == "PAID"
    assert results[1] == []
    assert isinstance(results[2], RecordRejected)


async def test_make_context_shares_one_session_and_closes_it():
    async with make_context("c1") as context:
        session = context.http()
        assert context.http() is session
        await context.state.set("k", {"v": 1})
        assert await context.state.get("k") == {"v": 1}
    assert session.closed
