"""A plugin installed from outside: examples/connectord-amplitude in a fresh virtualenv.

connectord and the example are pip-installed from their directories into a new venv;
the daemon of that venv finds the plugin only through its ``connectord`` entry point,
and records posted to an ``http.webhook`` source reach the Amplitude emulator.
"""

from __future__ import annotations

import importlib.util
import sys

import orjson
import pytest

from connectord.testing import DaemonProcess, free_port, write_config

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EXAMPLE = "examples/connectord-amplitude"


def load_emulator(repo):
    """The example's own Amplitude emulator (tests/emulator.py), imported by path."""
    path = repo / EXAMPLE / "tests" / "emulator.py"
    spec = importlib.util.spec_from_file_location("amplitude_example_emulator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def plugins_json(plugin_venv, allow):
    result = plugin_venv.run(
        "-m", "connectord", "plugins", "--json", env={"CONNECTORD_LOAD_PLUGINS": allow}
    )
    assert result.returncode == 0, result.stderr
    return {t["type"]: t for t in orjson.loads(result.stdout)}


def test_plugins_json_lists_it_through_the_entry_point(plugin_venv):
    described = plugins_json(plugin_venv, None)  # no allowlist: every installed plugin
    amplitude = described["amplitude"]
    assert amplitude["provider"] == "amplitude"  # the entry point's name
    assert (amplitude["package"], amplitude["version"]) == ("connectord-amplitude", "0.1.0")
    assert amplitude["kind"] == "destination"
    assert described["amplitude.export"]["mode"] == "pull"
    options = {o["name"]: o for o in amplitude["options"]}
    assert options["api_key"]["secret"] is True and options["api_key"]["required"] is True
    assert options["endpoint"]["choices"] == ["httpapi", "batch"]
    assert options["base_url"]["default"] == "https://api2.amplitude.com"
    assert all(o["description"] for o in amplitude["options"])
    assert described["http.webhook"]["package"] == "connectord"  # built-ins from the venv too

    assert "amplitude" not in plugins_json(plugin_venv, "")  # an empty allowlist loads none
    assert "amplitude" in plugins_json(plugin_venv, "amplitude")


def test_the_example_passes_its_own_tests(plugin_venv):
    result = plugin_venv.run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin_venv.sources / EXAMPLE
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_webhook_to_amplitude_end_to_end(plugin_venv, repo, tmp_path, emulator_server):
    emulators = load_emulator(repo)
    emulator = emulators.AmplitudeEmulator()
    server = emulator_server(emulator)
    (tmp_path / "amplitude.key").write_text(emulators.API_KEY + "\n")
    config = write_config(
        tmp_path,
        f"""
[connectors.web]
source = {{ type = "http.webhook", token = "${{WEB_TOKEN}}" }}
mapping = [{{ type = "filter", when = "type != 'page'" }}]

[connectors.web.destination]
type = "amplitude"
api_key_file = "amplitude.key"
base_url = "{server.url}"
batch_size = 2
""",
        port=free_port(),
    )
    env = {"CONNECTORD_LOAD_PLUGINS": "amplitude", "WEB_TOKEN": "t0ken-web"}
    check = plugin_venv.run("-m", "connectord", "check", "-c", str(config), env=env)
    assert check.returncode == 0, check.stdout + check.stderr

    daemon = DaemonProcess(config, python=plugin_venv.python, env=env)
    with daemon:
        status, body = daemon.post(
            "/ingest/web/",
            [
                {
                    "type": "track",
                    "userId": "user-0001",
                    "event": "Order Completed",
                    "properties": {"revenue": 42.5},
                    "messageId": "msg-0001",
                },
                {"type": "identify", "userId": "user-0001", "traits": {"plan": "pro"}},
                {"type": "page", "userId": "user-0001", "name": "Home"},
                {"type": "track", "anonymousId": "dev", "event": "Too Short"},
                {"type": "screen", "anonymousId": "device-0002", "name": "Settings"},
            ],
            headers={"Authorization": "Bearer t0ken-web"},
        )
        assert (status, body["accepted"]) == (200, 5)
        daemon.wait_for(lambda: len(emulator.ingested) == 3, message="three events at Amplitude")
        daemon.wait_for(
            lambda: daemon.metric("connectord_records_rejected", connector="web") == 1,
            message="one dead letter",
        )
        status_report = orjson.loads(daemon.cli("status", "--json", "-c", str(config)).stdout)
        dead = orjson.loads(daemon.cli("dlq", "list", "web", "--json", "-c", str(config)).stdout)
        logs = daemon.logs()
    assert daemon.process.returncode == 0

    events = {e["event_type"]: e for e in emulator.ingested}
    assert set(events) == {"Order Completed", "$identify", "Viewed Settings Screen"}
    assert events["Order Completed"]["insert_id"] == "msg-0001"
    assert events["Order Completed"]["revenue"] == 42.5
    assert events["$identify"]["user_properties"] == {"$set": {"plan": "pro"}}
    assert events["Viewed Settings Screen"]["device_id"] == "device-0002"
    assert len(emulator.requests_to("/2/httpapi")) == 2  # batch_size = 2
    uploads = [r.json() for r in emulator.requests_to("/2/httpapi")]
    assert {u["api_key"] for u in uploads} == {emulators.API_KEY}  # read from the *_file

    (letter,) = dead["dead_letters"]
    assert letter["record"]["event"] == "Too Short"
    assert "at least 5 characters" in letter["reason"]
    (connector,) = status_report["connectors"]
    assert connector["counts"]["delivered"] == 3
    assert emulators.API_KEY not in logs  # the secret never reaches a log line
