"""CleverTap → DuckDB end to end: ``connectord sync`` as a real process, the emulator
over HTTP on 127.0.0.1, a real DuckDB file that a BI tool then opens read-only. Event
counts and profile counts (Get Profile Count) land beside the events."""

from __future__ import annotations

import duckdb
import pytest

from connectord.testing import write_config
from tests.plugins.clevertap.common import source_options, sync, toml_inline
from tests.plugins.clevertap.emulator import CleverTapEmulator, Dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_events_event_counts_and_profile_counts_into_duckdb(tmp_path, emulator_server):
    data = Dataset(days=3, events_per_day=1_500, users=300)
    emulator = CleverTapEmulator(data, count_polls=2)
    server = emulator_server(emulator)
    events = source_options(emulator, server.url, events=["Charged"], batch_size=500)
    counts = source_options(emulator, server.url, events=["Charged", "App Launched"], profiles=True)
    destination = '{ type = "warehouse", url = "duckdb:///bi.duckdb", schema = "clevertap" }'
    config = write_config(
        tmp_path,
        f"""
[connectors.clevertap_daily]
schedule = "manual"
source = {{ type = "clevertap.events", {toml_inline(events)[2:-2]} }}
destination = {destination}

[connectors.clevertap_counts]
schedule = "manual"
source = {{ type = "clevertap.counts", {toml_inline(counts)[2:-2]} }}
destination = {destination}
""",
    )
    for name in ("clevertap_daily", "clevertap_counts", "clevertap_counts"):  # counts twice
        result = sync(config, name)
        assert result.returncode == 0, result.stderr[-3000:]

    # the daemon has exited and released the file: a BI tool attaches it read-only
    with duckdb.connect(str(tmp_path / "bi.duckdb"), read_only=True) as db:
        assert db.execute(
            "SELECT count(*), count(DISTINCT id) FROM clevertap.charged"
        ).fetchone() == (data.total("Charged"), data.total("Charged"))
        profiles = db.execute(
            "SELECT CAST(timestamp AT TIME ZONE 'UTC' AS DATE), event, \"count\" "
            "FROM clevertap.metric_profile_count ORDER BY 1, 2"
        ).fetchall()
        assert profiles == [
            (day, name, len(data.users_with(name, [day])))
            for day in data.day_list()
            for name in sorted(["Charged", "App Launched"])
        ]
        # a re-run replaced each day's count instead of adding rows
        assert db.execute("SELECT count(*) FROM clevertap.metric_event_count").fetchone() == (
            2 * len(data.day_list()),
        )
        # profiles that charged each day, against that day's Charged events in the table
        (mismatches,) = db.execute(
            "SELECT count(*) FROM clevertap.metric_profile_count p JOIN ("
            "  SELECT CAST(timestamp AT TIME ZONE 'UTC' AS DATE) AS day, "
            "  count(DISTINCT anonymous_id) AS users FROM clevertap.charged GROUP BY 1"
            ") e ON e.day = CAST(p.timestamp AT TIME ZONE 'UTC' AS DATE) "
            "WHERE p.event = 'Charged' AND p.\"count\" <> e.users"
        ).fetchone()
        assert mismatches == 0
        types = dict(
            db.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'clevertap' AND table_name = 'metric_profile_count'"
            ).fetchall()
        )
        assert types["count"] == "BIGINT"
        assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
