"""The pull sources against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time, timedelta

import pytest
from structlog.testing import capture_logs

from connectord import AuthError, RetryableError
from connectord.plugins.pushwoosh.source import PushwooshMessageStats, PushwooshTrackingLog
from connectord.testing import make_context, run_source


def today():
    return datetime.now(UTC).date()


def at(days_ago: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), UTC)


def day(days_ago: int) -> str:
    return (today() - timedelta(days=days_ago)).isoformat()


@pytest.fixture
def pull_options(pushwoosh):
    def build(**overrides):
        return {
            "application": pushwoosh.application,
            "api_token": pushwoosh.api_token,
            "base_url": pushwoosh.url,
            "poll_interval": 0.01,
            "max_wait": 5,
            **overrides,
        }

    return build


def push_log(pushwoosh, days_ago, target, hwid, *statuses, code="TC-1"):
    """Tracking lines; ``target`` is the device id the push was addressed to."""
    for minute, status in enumerate(statuses):
        pushwoosh.add_tracking(at(days_ago, minute=minute), code, target, hwid, status, "ok")


# --- tracking log ---------------------------------------------------------------------


async def test_tracking_log_reads_complete_days_as_push_events(pushwoosh, pull_options):
    push_log(pushwoosh, 3, "push-token-1", "hw1", "created", "sent", "delivered", "opened")
    push_log(pushwoosh, 1, "", "hw2", "sent", code="TC-2")
    push_log(pushwoosh, 0, "hw3", "hw3", "sent", code="TC-3")  # today: not complete yet
    records, batches = await run_source(PushwooshTrackingLog, pull_options(initial_days=3))
    assert [b.checkpoint for b in batches] == [{"day": day(3)}, {"day": day(2)}, {"day": day(1)}]
    assert [r["event"] for r in records] == [
        "Push Sent",
        "Push Delivered",
        "Push Opened",
        "Push Sent",
    ]
    opened = records[2]
    assert "userId" not in opened  # the log names devices, never users
    assert opened["anonymousId"] == "hw1"
    assert opened["timestamp"] == at(3, minute=3).isoformat().replace("+00:00", ".000Z")
    assert opened["properties"] == {
        "tracking_code": "TC-1",
        "target_id": "push-token-1",
        "hwid": "hw1",
        "status": "opened",
        "description": "ok",
        "app_code": "ABCDE-12345",
    }
    assert opened["context"] == {
        "pushwoosh": {
            "application": "ABCDE-12345",
            "hwid": "hw1",
            "target_id": "push-token-1",
            "tracking_code": "TC-1",
        },
        "device": {"id": "hw1", "token": "push-token-1"},
    }
    # re-reading gives the same message ids: destinations upsert instead of doubling
    again, _ = await run_source(PushwooshTrackingLog, pull_options(initial_days=3))
    assert [r["messageId"] for r in again] == [r["messageId"] for r in records]
    assert len({r["messageId"] for r in records}) == 4
    polls = pushwoosh.requests_to("/json/1.3/getResults")
    assert len(polls) == 12  # not ready once, then ready, for each of 3 days, twice


async def test_the_payload_column_is_kept_as_json_not_glued_to_description(pushwoosh, pull_options):
    payload = {"aps": {"alert": "Hi; there", "badge": 0}, "md": {"uid": 1}, "p": "Zh"}
    pushwoosh.add_tracking(at(1), "TC-9", "hw9", "hw9", "delivered", "Success", payload)
    [record], _ = await run_source(PushwooshTrackingLog, pull_options(initial_days=1))
    assert record["properties"]["description"] == "Success"
    assert record["properties"]["payload"] == payload
    assert record["properties"]["app_code"] == "ABCDE-12345"


async def test_a_day_in_batches_carries_its_checkpoint_last(pushwoosh, pull_options):
    push_log(pushwoosh, 1, "u1", "hw1", "sent", "delivered", "opened", "sent", "delivered")
    _, batches = await run_source(PushwooshTrackingLog, pull_options(initial_days=1, batch_size=2))
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert [b.checkpoint for b in batches] == [None, None, {"day": day(1)}]


async def test_resumes_after_the_checkpoint_and_maps_statuses(pushwoosh, pull_options):
    push_log(pushwoosh, 2, "hw1", "hw1", "sent", "opened")
    push_log(pushwoosh, 1, "hw2", "hw2", "sent", "opened")
    records, batches = await run_source(
        PushwooshTrackingLog,
        pull_options(events={"opened": "pw_push_opened"}),
        checkpoint={"day": day(2)},
    )
    assert [(r["event"], r["anonymousId"]) for r in records] == [("pw_push_opened", "hw2")]
    assert records[0]["context"]["device"] == {"id": "hw2"}  # target_id = hwid: no token
    assert [b.checkpoint for b in batches] == [{"day": day(1)}]
    requested = [r.json()["request"]["date"] for r in pushwoosh.requests_to("/json/1.3/getTr")]
    assert requested == [day(1)]


async def test_an_empty_day_still_moves_the_checkpoint(pushwoosh, pull_options):
    records, batches = await run_source(PushwooshTrackingLog, pull_options(initial_days=2))
    assert records == []
    assert [b.checkpoint for b in batches] == [{"day": day(2)}, {"day": day(1)}]


async def test_days_beyond_the_14_day_log_are_reported_as_a_gap(pushwoosh, pull_options):
    with capture_logs() as logs:
        _, batches = await run_source(
            PushwooshTrackingLog, pull_options(), checkpoint={"day": day(30)}
        )
    assert batches[0].checkpoint == {"day": day(13)}
    assert len(batches) == 13
    [gap] = [e for e in logs if e["event"] == "pushwoosh.tracking_log.gap"]
    assert gap["missed_from"] == day(29) and gap["missed_to"] == day(14)


async def test_a_failing_day_stops_the_run_after_the_days_before_it(pushwoosh, pull_options):
    push_log(pushwoosh, 3, "u1", "hw1", "sent")
    push_log(pushwoosh, 2, "u2", "hw2", "sent")
    # One day at a time: the fault below hits "the next getTrackingLog", which is day 2's
    # only when no other day's request is in flight.
    source_options = PushwooshTrackingLog.Options(
        **pull_options(initial_days=3, attempts=2, max_concurrency=1)
    )
    batches = []
    async with make_context() as context:
        source = PushwooshTrackingLog(source_options, context)
        calls = 0

        original = source.client.request_tracking_log

        async def flaky(day_text):
            nonlocal calls
            calls += 1
            if day_text == day(2):
                pushwoosh.fail_next(1, status=502, paths=("/json/1.3/getTrackingLog",))
            return await original(day_text)

        source.client.request_tracking_log = flaky
        with pytest.raises(RetryableError, match="502"):
            async with contextlib.aclosing(source.read(None)) as reader:
                async for batch in reader:
                    batches.append(batch)
    assert [b.checkpoint for b in batches] == [{"day": day(3)}]


# --- message statistics ----------------------------------------------------------------


def message(pushwoosh, code, days_ago, **platforms):
    pushwoosh.add_message(
        code,
        at(days_ago),
        {int(p.lstrip("p")): v for p, v in platforms.items()},
        campaign="CAMP-1",
    )


async def test_message_stats_are_metrics_per_message_and_platform(pushwoosh, pull_options):
    message(pushwoosh, "M-1", 1, p1={"sends": 10, "deliveries": 9, "opens": 3}, p3={"sends": 5})
    message(pushwoosh, "M-2", 0, p11={"sends": 2, "errors": 1})
    records, batches = await run_source(PushwooshMessageStats, pull_options(initial_days=1))
    assert [b.checkpoint for b in batches] == [{"day": day(1)}, None]  # today is not done
    ios = records[0]
    assert ios == {
        "type": "metric",
        "metric": "push_stats",
        "period": "total",
        "timestamp": at(1).isoformat().replace("+00:00", ".000Z"),
        "dimensions": {
            "application": "ABCDE-12345",
            "message_code": "M-1",
            "message_id": 1,
            "platform": "ios",
            "platform_id": 1,
            "campaign": "CAMP-1",
            "source": "API",
        },
        "values": {
            "sends": 10,
            "deliveries": 9,
            "opens": 3,
            "inbox_opens": 0,
            "unshowable_sends": 0,
            "errors": 0,
        },
        "messageId": ios["messageId"],
    }
    assert [(r["dimensions"]["message_code"], r["dimensions"]["platform"]) for r in records] == [
        ("M-1", "ios"),
        ("M-1", "android"),
        ("M-2", "chrome"),
    ]
    list_call = pushwoosh.requests_to("/api/v2/messages:list")[0]
    assert list_call.headers["Authorization"] == "Token server-token-for-tests"


async def test_stats_rereads_replace_with_the_same_ids(pushwoosh, pull_options):
    message(pushwoosh, "M-1", 2, p3={"sends": 10, "opens": 1})
    first, _ = await run_source(PushwooshMessageStats, pull_options(initial_days=2))
    pushwoosh.messages[0]["push_info"]["metrics"][0]["opens"] = 4  # late opens
    second, batches = await run_source(
        PushwooshMessageStats, pull_options(lookback_days=2), checkpoint={"day": day(1)}
    )
    assert [b.checkpoint for b in batches] == [{"day": day(2)}, {"day": day(1)}, None]
    assert second[0]["messageId"] == first[0]["messageId"]
    assert (first[0]["values"]["opens"], second[0]["values"]["opens"]) == (1, 4)


async def test_stats_pages_and_retries(pushwoosh, pull_options):
    for n in range(5):
        message(pushwoosh, f"M-{n}", 1, p1={"sends": n})
    pushwoosh.fail_next(1, status=429, headers={"Retry-After": "0"}, paths=("/api/v2/messages",))
    records, _ = await run_source(
        PushwooshMessageStats, pull_options(initial_days=1, per_page=2), checkpoint=None
    )
    assert [r["values"]["sends"] for r in records if r["timestamp"].startswith(day(1))] == [
        0,
        1,
        2,
        3,
        4,
    ]
    pages = [r.json()["request"]["page"] for r in pushwoosh.requests_to("/api/v2/messages")]
    assert pages[:4] == [1, 1, 2, 3]  # the throttled first page was asked again


async def test_pull_sources_check_their_token(pushwoosh, pull_options):
    async with make_context() as context:
        good = PushwooshTrackingLog(PushwooshTrackingLog.Options(**pull_options()), context)
        assert await good.check() == (
            "api_token accepted by the server API (listFilters) for ABCDE-12345"
        )
        bad = PushwooshMessageStats(
            PushwooshMessageStats.Options(**pull_options(api_token="wrong")), context
        )
        with pytest.raises(AuthError, match="api_token rejected by the server API") as caught:
            await bad.check()
        assert "401" in str(caught.value) and "wrong" not in str(caught.value)


# --- tracking log: days in flight -------------------------------------------------------


def exports_in_flight_peak(pushwoosh) -> int:
    """The most tracking-log exports open at once as Pushwoosh sees them: from a day's
    ``getTrackingLog`` to the download of its file."""
    running = peak = 0
    for request in pushwoosh.requests:
        if request.path.endswith("/getTrackingLog"):
            running += 1
            peak = max(peak, running)
        elif request.path.startswith("/static/"):
            running -= 1
    return peak


async def test_tracking_log_reads_four_days_at_once_by_default(pushwoosh, pull_options):
    """No cap is documented for getTrackingLog, so the default is our own bound of 4:
    four exports are open at the emulator together, and checkpoints stay in day order."""
    pushwoosh.pending_polls = 3  # each export answers "not ready" three times
    for days_ago in range(1, 8):
        push_log(pushwoosh, days_ago, f"hw{days_ago}", f"hw{days_ago}", "sent")
    assert PushwooshTrackingLog.Options.model_fields["max_concurrency"].default == 4
    records, batches = await run_source(PushwooshTrackingLog, pull_options(initial_days=7))
    assert exports_in_flight_peak(pushwoosh) == 4
    assert [b.checkpoint["day"] for b in batches if b.checkpoint] == [
        day(n) for n in range(7, 0, -1)
    ]
    assert [r["context"]["device"]["id"] for r in records] == [f"hw{n}" for n in range(7, 0, -1)]


async def test_connectors_of_one_application_share_the_days_in_flight(pushwoosh, pull_options):
    """Two connectors reading the same application together stay within one cap."""
    pushwoosh.pending_polls = 3
    for days_ago in range(1, 8):
        push_log(pushwoosh, days_ago, f"hw{days_ago}", f"hw{days_ago}", "sent")
    options = pull_options(initial_days=7, max_concurrency=3)
    first, second = await asyncio.gather(
        run_source(PushwooshTrackingLog, options), run_source(PushwooshTrackingLog, options)
    )
    assert exports_in_flight_peak(pushwoosh) == 3
    assert len(first.records) == len(second.records) == 7
