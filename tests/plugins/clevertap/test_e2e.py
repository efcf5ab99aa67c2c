"""CleverTap → warehouse end to end: ``connectord sync`` as a real process, the emulator
over HTTP on 127.0.0.1, real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from connectord.testing import write_config
from tests.plugins.clevertap.common import source_options, sync, sync_command, toml_inline
from tests.plugins.clevertap.emulator import EVENT_NAMES, CleverTapEmulator, Dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TABLES = {name: name.lower().replace(" ", "_") for name in EVENT_NAMES}


def connectors(emulator: CleverTapEmulator, url: str, destination: str, **events) -> str:
    events_source = source_options(emulator, url, **{"events": list(EVENT_NAMES), **events})
    profiles_source = source_options(emulator, url)
    return f"""
[connectors.clevertap_daily]
schedule = "manual"
source = {{ type = "clevertap.events", {toml_inline(events_source)[2:-2]} }}
destination = {destination}

[connectors.clevertap_profiles]
schedule = "manual"
source = {{ type = "clevertap.profiles", {toml_inline(profiles_source)[2:-2]} }}
destination = {destination}
"""


def query(path: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def checkpoint(state: Path, name: str):
    rows = query(state, "SELECT value FROM checkpoints WHERE connector = ?", name)
    return orjson.loads(rows[0][0]) if rows else None


def ts_iso(raw_ts: int) -> str:
    t = str(raw_ts)
    return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}Z"


def test_100k_events_and_profiles_into_sqlite(tmp_path, emulator_server):
    data = Dataset()  # 5 days, 4 event names, ~110,000 events
    assert data.total() >= 100_000
    emulator = CleverTapEmulator(data)
    server = emulator_server(emulator)
    config = write_config(
        tmp_path,
        connectors(emulator, server.url, '{ type = "warehouse", url = "sqlite:///bi.db" }'),
    )
    for name in ("clevertap_daily", "clevertap_profiles"):
        result = sync(config, name)
        assert result.returncode == 0, result.stderr[-3000:]
    bi = tmp_path / "bi.db"

    for event, table in TABLES.items():
        assert query(bi, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [
            (data.total(event), data.total(event))
        ]
    assert query(bi, "SELECT count(*) FROM tracks") == [(data.total(),)]

    # Spot values: one Charged event of day 2, as the emulator defines it.
    day = data.day_list()[1]
    raw = data.event(day, "Charged", 1234, app=True, profile=False)
    [row] = query(
        bi,
        "SELECT user_id, anonymous_id, amount, currency, delivery_date, context_session_source,"
        " context_os_name, items FROM charged WHERE timestamp = ? AND anonymous_id = ?",
        ts_iso(raw["ts"]),
        raw["profile"]["objectId"],
    )
    assert row == (
        raw["profile"].get("identity"),
        raw["profile"]["objectId"],
        raw["event_props"]["Amount"],
        raw["event_props"]["Currency"],
        "2024-01-05T00:00:00.000Z",
        raw["session_props"]["session_source"],
        raw["profile"]["platform"],
        orjson.dumps(raw["items"]).decode(),
    )

    # A property that first appears on day 3 becomes a column; earlier rows are NULL.
    columns = {c[1] for c in query(bi, "PRAGMA table_info(charged)")}
    assert "coupon" in columns
    by_day = dict(
        query(
            bi,
            "SELECT substr(timestamp, 1, 10), count(coupon) FROM charged GROUP BY 1 ORDER BY 1",
        )
    )
    assert by_day["2024-01-01"] == by_day["2024-01-02"] == 0
    assert by_day["2024-01-03"] == data.count(data.day_list()[2], "Charged")

    # Profiles land in users (identified) and identifies (everyone), joinable with events.
    identified = {data.identity(k) for k in range(data.users) if data.identity(k)}
    users = {r[0] for r in query(bi, "SELECT id FROM users")}
    assert users <= identified and len(users) > 0.8 * len(identified)
    [(joined, plans)] = query(
        bi,
        "SELECT count(*), count(DISTINCT u.plan) FROM charged e JOIN users u ON u.id = e.user_id",
    )
    assert joined > 0.8 * data.total("Charged") and plans == 3
    [(everyone,)] = query(
        bi,
        "SELECT count(*) FROM charged e WHERE e.anonymous_id IN "
        "(SELECT anonymous_id FROM identifies)",
    )
    assert everyone == data.total("Charged")

    # The joins documented in docs/integrations/clevertap-bi.md run as written.
    doc = (Path(__file__).resolve().parents[3] / "docs/integrations/clevertap-bi.md").read_text()
    joins = doc.split("### Joining events with profiles")[1].split("```sql")[1].split("```")[0]
    revenue_sql, everyone_sql = [q.strip() for q in joins.split(";") if q.strip()]
    revenue = query(bi, revenue_sql)
    assert {plan for plan, _, _ in revenue} == {"free", "pro", "team"}
    assert sum(orders for _, orders, _ in revenue) == joined
    launches = query(bi, everyone_sql)
    assert {platform for platform, _ in launches} == {"Android", "iOS", "Web"}

    # A second run finds nothing new and the checkpoint holds the last complete day.
    assert checkpoint(tmp_path / "state.db", "clevertap_daily")["done"] == "2024-01-05"
    result = sync(config, "clevertap_daily")
    assert result.returncode == 0, result.stderr[-2000:]
    assert query(bi, "SELECT count(*) FROM tracks") == [(data.total(),)]


def test_into_postgresql_with_new_and_widened_columns(tmp_path, emulator_server, postgres_url):
    data = Dataset(days=5, events_per_day=4_000, users=500)
    emulator = CleverTapEmulator(data)
    server = emulator_server(emulator)
    destination = f'{{ type = "warehouse", url = "{postgres_url}", schema = "clevertap" }}'
    config = write_config(tmp_path, connectors(emulator, server.url, destination, batch_size=1000))
    for name in ("clevertap_daily", "clevertap_profiles"):
        result = sync(config, name)
        assert result.returncode == 0, result.stderr[-3000:]

    with psycopg.connect(postgres_url) as db:
        for event, table in TABLES.items():
            assert db.execute(
                f"SELECT count(*), count(DISTINCT id) FROM clevertap.{table}"
            ).fetchone() == (data.total(event), data.total(event))
        types = dict(
            db.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'clevertap' AND table_name = 'added_to_cart'"
            ).fetchall()
        )
        # "Ref" is an integer for four days, then text: the column keeps its type and
        # the text values are kept in _discards, nothing lost.
        assert types["ref"] == "bigint"
        assert types["quantity"] == "bigint"
        assert types["timestamp"] == "timestamp with time zone"
        refs = dict(
            db.execute(
                "SELECT (timestamp AT TIME ZONE 'UTC')::date::text, min(ref) "
                "FROM clevertap.added_to_cart GROUP BY 1"
            ).fetchall()
        )
        assert isinstance(refs["2024-01-01"], int) and refs["2024-01-05"] is None
        (discarded,) = db.execute(
            "SELECT min(column_value) FROM clevertap._discards "
            "WHERE table_name = 'added_to_cart' AND column_name = 'ref'"
        ).fetchone()
        assert discarded.startswith("R-")
        charged = {
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'clevertap' AND table_name = 'charged'"
            )
        }
        assert "coupon" in charged
        raw = data.event(data.day_list()[3], "Charged", 77, app=True, profile=False)
        amount, user = db.execute(
            "SELECT amount, user_id FROM clevertap.charged WHERE anonymous_id = %s "
            "AND timestamp = %s",
            (raw["profile"]["objectId"], ts_iso(raw["ts"])),
        ).fetchone()
        assert (amount, user) == (raw["event_props"]["Amount"], raw["profile"].get("identity"))
        joined = db.execute(
            "SELECT count(*) FROM clevertap.charged e JOIN clevertap.users u ON u.id = e.user_id"
        ).fetchone()[0]
        assert joined > 0.8 * data.total("Charged")


@pytest.mark.parametrize("single_use", [False, True], ids=["cursor-resume", "cursor-expired"])
def test_killed_mid_day_and_run_again_gives_every_event_once(tmp_path, emulator_server, single_use):
    data = Dataset(days=3, events_per_day=6_000, users=400)
    emulator = CleverTapEmulator(data, latency=0.03, single_use_cursors=single_use)
    server = emulator_server(emulator)
    config = write_config(
        tmp_path,
        connectors(
            emulator,
            server.url,
            '{ type = "warehouse", url = "sqlite:///bi.db" }',
            events=list(EVENT_NAMES),
            batch_size=250,
        ),
    )
    bi, state = tmp_path / "bi.db", tmp_path / "state.db"
    first_day = data.count(data.day_list()[0], "App Launched")
    process = subprocess.Popen(
        sync_command(config, "clevertap_daily"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            loaded = 0
            if bi.exists():
                try:
                    loaded = query(bi, "SELECT count(*) FROM tracks")[0][0]
                except sqlite3.OperationalError:
                    loaded = 0
            if first_day // 3 <= loaded:
                break
            assert process.poll() is None, "sync finished before it could be killed"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    interrupted = checkpoint(state, "clevertap_daily")
    assert interrupted is not None and interrupted["done"] is None  # killed on day 1
    assert interrupted["cursor"] is not None or interrupted["event"] != "App Launched"
    loaded_before = query(bi, "SELECT count(*) FROM tracks")[0][0]
    assert 0 < loaded_before < data.total()

    served_before = emulator.records_served
    result = sync(config, "clevertap_daily")
    assert result.returncode == 0, result.stderr[-3000:]
    for event, table in TABLES.items():
        assert query(bi, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [
            (data.total(event), data.total(event))
        ]
    assert query(bi, "SELECT count(*) FROM tracks") == [(data.total(),)]
    read_again = emulator.records_served - served_before
    if (
        single_use and interrupted["cursor"]
    ):  # the stored cursor is gone: day 1's query starts again (and upserts)
        assert "clevertap.cursor.expired" in result.stderr + result.stdout
    else:  # the stored cursor continues the day: nothing before it is read again
        assert read_again <= data.total() - loaded_before + 3 * 250
