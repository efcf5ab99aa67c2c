"""Pushwoosh connectors in the real daemon: relay, destination, audiences, pulls."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from connectord.testing import write_config
from tests.plugins.pushwoosh.emulator import INTEGER, LIST, PushwooshEmulator

pytestmark = pytest.mark.e2e

APP = "ABCDE-12345"
DEVICE = "device-token-for-tests"
TOKEN = {"Authorization": f"Token {DEVICE}"}


def rows(path, sql):
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def table_ready(path, table):
    def ready():
        if not path.exists():
            return False
        with sqlite3.connect(path) as db:
            found = db.execute(
                "select count(*) from sqlite_master where name = ?", (table,)
            ).fetchone()[0]
            return found and db.execute(f"select count(*) from {table}").fetchone()[0]

    return ready


def relay_source(url: str) -> str:
    return (
        f'{{ type = "pushwoosh.relay", application = "{APP}", device_token = "{DEVICE}", '
        f'base_url = "{url}" }}'
    )


def test_relay_answers_like_pushwoosh_and_records_reach_the_warehouse(
    connectord_daemon, emulator_server
):
    pushwoosh = PushwooshEmulator(application=APP, device_token=DEVICE)
    url = emulator_server(pushwoosh).url
    daemon = connectord_daemon(
        f"""
[connectors.pw]
source = {relay_source(url)}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
"""
    )
    base = "/ingest/pw/json/1.3"
    status, answer = daemon.post(
        f"{base}/registerDevice",
        {"request": {"application": APP, "hwid": "hw-1", "device_type": 1, "userId": "u1"}},
        headers=TOKEN,
    )
    assert (status, answer["status_code"]) == (200, 200)
    status, answer = daemon.post(
        f"{base}/setTags",
        {"request": {"application": APP, "userId": "u1", "tags": {"Country": "FR"}}},
        headers=TOKEN,
    )
    assert (status, answer["status_code"]) == (200, 200)
    status, answer = daemon.post(
        f"{base}/postEvent",
        {
            "request": {
                "application": APP,
                "userId": "u1",
                "hwid": "hw-1",
                "event": "PW_SiteOpened",
                "attributes": {"page": "home"},
            }
        },
        headers=TOKEN,
    )
    assert status == 200
    assert answer["response"]["code"]  # Pushwoosh's answer, passed through
    assert pushwoosh.events_of("u1")[0]["event"] == "PW_SiteOpened"
    assert pushwoosh.tags_of("u1") == {"Country": "FR"}

    warehouse = daemon.config.parent / "warehouse.db"
    daemon.wait_for(table_ready(warehouse, "pw_site_opened"), message="event row")
    assert rows(
        warehouse,
        "select user_id, page, context_traits_country, context_device_id, "
        "context_pushwoosh_platform_id from pw_site_opened",
    ) == [("u1", "home", "FR", "hw-1", 1)]
    daemon.wait_for(table_ready(warehouse, "users"), message="users row")
    assert rows(warehouse, "select id, country from users") == [("u1", "FR")]
    assert daemon.stop() == 0


def test_relay_feeds_a_second_pushwoosh_app_with_typed_tags(connectord_daemon, emulator_server):
    source = PushwooshEmulator(application=APP, device_token=DEVICE)
    target = PushwooshEmulator(
        application="FGHIJ-67890", api_token="b-server", device_token="b-dev"
    )
    source_url = emulator_server(source).url
    target_url = emulator_server(target).url
    daemon = connectord_daemon(
        f"""
[connectors.mirror]
source = {relay_source(source_url)}
destination = {{ type = "pushwoosh", application = "FGHIJ-67890", api_token = "b-server", \
device_token = "b-dev", base_url = "{target_url}", poll_interval = 0.05 }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}
"""
    )
    base = "/ingest/mirror/json/1.3"
    daemon.post(
        f"{base}/setTags",
        {"request": {"application": APP, "userId": "u7", "tags": {"Level": "12", "Paid": True}}},
        headers=TOKEN,
    )
    daemon.post(
        f"{base}/postEvent",
        {"request": {"application": APP, "userId": "u7", "event": "Level Up", "attributes": {}}},
        headers=TOKEN,
    )
    daemon.wait_for(lambda: target.events_of("u7"), message="event in the second app")
    daemon.wait_for(lambda: target.tags_of("u7"), message="tags in the second app")
    assert target.tags_of("u7") == {"Level": 12, "Paid": True}
    assert target.tag_type("Level") == INTEGER
    assert target.events_of("u7")[0]["event"] == "Level Up"
    assert daemon.stop() == 0


def test_bad_input_at_the_relay_gets_4xx_and_loses_nothing_next_to_it(
    connectord_daemon, emulator_server
):
    pushwoosh = PushwooshEmulator(application=APP, device_token=DEVICE)
    url = emulator_server(pushwoosh).url
    daemon = connectord_daemon(
        f"""
[connectors.pw]
source = {relay_source(url)}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
"""
    )
    path = "/ingest/pw/json/1.3/postEvent"

    def event(n):
        return {
            "request": {
                "application": APP,
                "userId": f"u{n}",
                "event": "Tested",
                "attributes": {"n": n},
            }
        }

    bad = [
        (b"{broken", TOKEN, 400, 210),
        (orjson.dumps({"request": []}), TOKEN, 400, 210),
        (orjson.dumps({"request": {"application": APP, "userId": "x"}}), TOKEN, 400, 210),
        (orjson.dumps(event(0)), {}, 401, 401),
        (orjson.dumps(event(0)), {"Authorization": "Token wrong"}, 401, 401),
        (
            orjson.dumps({"request": {**event(0)["request"], "application": "ZZZZZ-00000"}}),
            TOKEN,
            403,
            403,
        ),
        (b'{"request": {"a": "' + b"x" * (2 * 1024 * 1024) + b'"}}', TOKEN, 413, 413),
    ]
    for n in range(1, 4):
        status, _ = daemon.post(path, event(n), headers=TOKEN)
        assert status == 200
        body, headers, want_status, want_code = bad[(n - 1) * 2 % len(bad)]
        status, answer = daemon.post(path, body, headers=headers)
        assert (status, answer["status_code"]) == (want_status, want_code), answer
        assert answer["status_message"]
    for body, headers, want_status, want_code in bad:
        status, answer = daemon.post(path, body, headers=headers)
        assert (status, answer["status_code"]) == (want_status, want_code), answer
    status, _ = daemon.post(path, event(4), headers=TOKEN)
    assert status == 200
    assert daemon.health()["status"] == "ok"
    warehouse = daemon.config.parent / "warehouse.db"
    daemon.wait_for(lambda: table_ready(warehouse, "tested")() == 4, message="the four good events")
    assert sorted(r[0] for r in rows(warehouse, "select n from tested")) == [1, 2, 3, 4]
    assert len(pushwoosh.events) == 4
    assert daemon.stop() == 0


def test_audience_changes_drive_segment_membership(connectord_daemon, emulator_server):
    pushwoosh = PushwooshEmulator(application=APP, device_token=DEVICE)
    url = emulator_server(pushwoosh).url
    daemon = connectord_daemon(
        f"""
[connectors.audiences]
source = {{ type = "http.webhook", token = "t0ken-for-tests" }}
destination = {{ type = "pushwoosh", application = "{APP}", \
api_token = "server-token-for-tests", device_token = "{DEVICE}", base_url = "{url}", \
poll_interval = 0.05 }}
delivery = {{ concurrency = 1 }}
"""
    )
    auth = {"Authorization": "Bearer t0ken-for-tests"}

    def change(user, action):
        return {
            "type": "audience",
            "action": action,
            "userId": user,
            "audience": {"id": "77", "name": "Churn risk", "source": "mparticle"},
        }

    segment = "Churn risk (mParticle)"
    daemon.post("/ingest/audiences/", [change("a", "add"), change("b", "add")], headers=auth)
    daemon.wait_for(lambda: pushwoosh.filters and pushwoosh.members_of(segment) == {"a", "b"})
    daemon.post("/ingest/audiences/", [change("a", "remove"), change("c", "add")], headers=auth)
    daemon.wait_for(
        lambda: pushwoosh.members_of(segment) == {"b", "c"}, message="membership follows"
    )
    assert pushwoosh.tag_type("connectord_audiences") == LIST
    assert pushwoosh.filter_names() == [segment]
    assert daemon.stop() == 0


def test_without_the_custom_plan_status_says_what_to_create_by_hand(
    connectord_daemon, emulator_server
):
    """The Tags API refused (not a Custom plan): tags still arrive, and `connectord
    status` lists the tags the operator must create, with their types."""
    pushwoosh = PushwooshEmulator(application=APP, device_token=DEVICE, plan="basic")
    url = emulator_server(pushwoosh).url
    daemon = connectord_daemon(
        f"""
[connectors.tags]
source = {{ type = "http.webhook", token = "t0ken-for-tests" }}
destination = {{ type = "pushwoosh", application = "{APP}", \
api_token = "server-token-for-tests", device_token = "{DEVICE}", base_url = "{url}" }}
"""
    )
    auth = {"Authorization": "Bearer t0ken-for-tests"}
    record = {"type": "identify", "userId": "u1", "traits": {"plan": "pro", "seats": 5}}
    daemon.post("/ingest/tags/", [record], headers=auth)
    daemon.wait_for(lambda: pushwoosh.tags_of("u1") == {"plan": "pro", "seats": 5})
    assert daemon.stop() == 0
    status = cli(daemon.config, "status", "--json")
    notices = orjson.loads(status.stdout)["connectors"][0]["notices"]
    assert notices["pushwoosh tags"] == {"plan": "String", "seats": "Integer"}
    assert "listTags refused" in notices["pushwoosh tags_api"]
    text = cli(daemon.config, "status").stdout
    assert 'notice:       pushwoosh tags: {"plan":"String","seats":"Integer"}' in text
    assert "pushwoosh.tags_api.unavailable" in daemon.logs()


# --- tracking log pulls: resume from the last complete day ------------------------------


def tracking_setup(pushwoosh):
    """Four complete days of log lines (one opened push per day)."""
    days = []
    for days_ago in (4, 3, 2, 1):
        moment = datetime.now(UTC) - timedelta(days=days_ago)
        moment = moment.replace(hour=9, minute=30, second=0, microsecond=0)
        device = f"hw{days_ago}"  # target_id: the device the push was addressed to
        pushwoosh.add_tracking(moment, f"TC-{days_ago}", device, device, "opened")
        days.append(moment.date().isoformat())
    return days


def tracking_connector(url: str, schedule: str, extra: str = "") -> str:
    return f"""
[connectors.pushlog]
schedule = "{schedule}"
source = {{ type = "pushwoosh.tracking_log", application = "{APP}", \
api_token = "server-token-for-tests", base_url = "{url}", initial_days = 4, \
poll_interval = 0.05, max_wait = 120, attempts = 1 {extra} }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}
"""


def opened_devices(warehouse) -> list[str]:
    """Devices with an opened push: the tracking log is keyed by device, not by user."""
    try:
        return sorted(r[0] for r in rows(warehouse, "select anonymous_id from push_opened"))
    except sqlite3.Error:
        return []


def requested_days(pushwoosh) -> list[str]:
    return [r.json()["request"]["date"] for r in pushwoosh.requests_to("/json/1.3/getTrackingLog")]


def cli(config, *args):
    return subprocess.run(
        [sys.executable, "-m", "connectord", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


ONE_DAY_AT_A_TIME = ", max_concurrency = 1"


def test_a_failed_tracking_log_run_resumes_from_the_last_complete_day(tmp_path, emulator_server):
    """Days read one at a time, so the exact order of requests can be asserted."""
    pushwoosh = PushwooshEmulator(application=APP)
    url = emulator_server(pushwoosh).url
    days = tracking_setup(pushwoosh)
    pushwoosh.unavailable_days.add(days[2])
    config = write_config(tmp_path, tracking_connector(url, "manual", ONE_DAY_AT_A_TIME))
    failed = cli(config, "sync", "pushlog")
    assert failed.returncode == 1
    assert "getTrackingLog answered HTTP 500" in failed.stderr
    warehouse = tmp_path / "warehouse.db"
    assert opened_devices(warehouse) == ["hw3", "hw4"]
    status = orjson.loads(cli(config, "status", "--json").stdout)
    assert status["connectors"][0]["checkpoint"] == {"day": days[1]}

    pushwoosh.unavailable_days.clear()
    resumed = cli(config, "sync", "pushlog")
    assert resumed.returncode == 0, resumed.stderr
    assert opened_devices(warehouse) == ["hw1", "hw2", "hw3", "hw4"]
    assert requested_days(pushwoosh) == [days[0], days[1], days[2], days[2], days[3]]
    status = orjson.loads(cli(config, "status", "--json").stdout)
    assert status["connectors"][0]["checkpoint"] == {"day": days[3]}


def test_a_killed_daemon_resumes_the_tracking_log_where_it_stopped(
    connectord_daemon, emulator_server
):
    pushwoosh = PushwooshEmulator(application=APP)
    url = emulator_server(pushwoosh).url
    days = tracking_setup(pushwoosh)
    pushwoosh.held_days.add(days[2])  # its export never gets ready while the daemon runs
    daemon = connectord_daemon(tracking_connector(url, "every 3s", ONE_DAY_AT_A_TIME))
    warehouse = daemon.config.parent / "warehouse.db"
    daemon.wait_for(lambda: opened_devices(warehouse) == ["hw3", "hw4"], message="two days in")
    daemon.wait_for(lambda: requested_days(pushwoosh)[-1:] == [days[2]], message="third day")
    daemon.kill()  # SIGKILL in the middle of the third day

    pushwoosh.held_days.clear()
    daemon.start()
    daemon.wait_for(
        lambda: opened_devices(warehouse) == ["hw1", "hw2", "hw3", "hw4"], message="all four days"
    )
    assert requested_days(pushwoosh)[:5] == [days[0], days[1], days[2], days[2], days[3]]
    assert daemon.stop() == 0


def test_days_read_together_resume_from_the_last_complete_day(tmp_path, emulator_server):
    """With the default of four days in flight, a day that fails stops delivery at the
    day before it even though later days were already fetched, and the next run starts
    again at the failed day: days already checkpointed are not requested again."""
    pushwoosh = PushwooshEmulator(application=APP)
    url = emulator_server(pushwoosh).url
    days = tracking_setup(pushwoosh)
    pushwoosh.unavailable_days.add(days[2])
    config = write_config(tmp_path, tracking_connector(url, "manual"))
    failed = cli(config, "sync", "pushlog")
    assert failed.returncode == 1
    assert "getTrackingLog answered HTTP 500" in failed.stderr
    assert sorted(requested_days(pushwoosh)) == days  # all four asked for at once
    warehouse = tmp_path / "warehouse.db"
    assert opened_devices(warehouse) == ["hw3", "hw4"]  # days[3] fetched, not delivered
    status = orjson.loads(cli(config, "status", "--json").stdout)
    assert status["connectors"][0]["checkpoint"] == {"day": days[1]}

    pushwoosh.unavailable_days.clear()
    resumed = cli(config, "sync", "pushlog")
    assert resumed.returncode == 0, resumed.stderr
    assert opened_devices(warehouse) == ["hw1", "hw2", "hw3", "hw4"]
    assert sorted(requested_days(pushwoosh)[4:]) == [days[2], days[3]]
    status = orjson.loads(cli(config, "status", "--json").stdout)
    assert status["connectors"][0]["checkpoint"] == {"day": days[3]}


def test_relay_through_the_piano_mapping(connectord_daemon, emulator_server):
    """relay → pushwoosh.to_piano → warehouse: what a Piano destination would be given."""
    pushwoosh = PushwooshEmulator(application=APP, device_token=DEVICE)
    url = emulator_server(pushwoosh).url
    daemon = connectord_daemon(
        f"""
[connectors.to_piano]
source = {relay_source(url)}
mapping = [{{ type = "pushwoosh.to_piano" }}]
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
"""
    )
    base = "/ingest/to_piano/json/1.3"
    daemon.post(
        f"{base}/registerDevice",
        {"request": {"application": APP, "hwid": "hw-5", "device_type": 11, "userId": "u5"}},
        headers=TOKEN,
    )
    daemon.post(
        f"{base}/setTags",
        {"request": {"application": APP, "userId": "u5", "tags": {"Country": "DE"}}},
        headers=TOKEN,
    )
    daemon.post(
        f"{base}/postEvent",
        {
            "request": {
                "application": APP,
                "userId": "u5",
                "hwid": "hw-5",
                "event": "PW_SiteOpened",
                "attributes": {"CampaignID": "CAMP-3"},
            }
        },
        headers=TOKEN,
    )
    warehouse = daemon.config.parent / "warehouse.db"
    daemon.wait_for(table_ready(warehouse, "pw_siteopened"), message="mapped event")
    assert rows(
        warehouse,
        "select user_id, pushwooshid, src_medium, device_type, country from pw_siteopened",
    ) == [("u5", "u5", "CAMP-3", "Chrome", "DE")]
    assert rows(warehouse, "select count(*) from sqlite_master where name = 'identifies'") == [
        (0,)
    ]  # identify records were dropped by the mapping
    assert daemon.stop() == 0


def test_check_online_names_what_failed(tmp_path, emulator_server):
    pushwoosh = PushwooshEmulator(application=APP, device_token=DEVICE)
    url = emulator_server(pushwoosh).url
    config = write_config(
        tmp_path,
        f"""
[connectors.good]
source = {{ type = "http.webhook", token = "t0ken-for-tests" }}
destination = {{ type = "pushwoosh", application = "{APP}", \
api_token = "server-token-for-tests", device_token = "{DEVICE}", base_url = "{url}" }}

[connectors.bad]
schedule = "manual"
source = {{ type = "pushwoosh.tracking_log", application = "{APP}", api_token = "leaky-1", \
base_url = "{url}" }}
destination = {{ type = "pushwoosh", application = "{APP}", \
api_token = "server-token-for-tests", device_token = "leaky-2", base_url = "{url}" }}
""",
    )
    result = cli(config, "check", "--online")
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert (
        "good: destination pushwoosh: api_token accepted by the server API (listFilters) "
        "for ABCDE-12345; device_token accepted by the Device API (getTags)"
    ) in out
    assert "bad: source pushwoosh.tracking_log" in out and "401" in out
    assert "bad: destination pushwoosh: device_token rejected by the Device API (getTags)" in out
    assert "leaky-" not in out  # no token in the output


def test_check_refuses_a_destination_without_its_device_token(tmp_path):
    """A config error naming file, line, key, what is expected and what was found."""
    config = write_config(
        tmp_path,
        f"""
[connectors.to_pw]
source = {{ type = "http.webhook", token = "t0ken-for-tests" }}
destination = {{ type = "pushwoosh", application = "{APP}", api_token = "server-token" }}
""",
    )
    result = cli(config, "check")
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "connectors.to_pw.destination.device_token: required option is missing" in out
    assert "Pushwoosh refuses the server token on the Device API" in out
    assert f"{config}:" in out and "found nothing" in out
