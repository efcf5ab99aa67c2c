"""``connectord check --online`` runs each plugin's lifecycle: ``start()``, then
``check()``, then ``close()``; failures are printed once each.

The scaffold from ``connectord new-plugin`` opens its client in ``start()``: left
untouched, it must pass ``check --online`` against its own emulator.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

import connectord.cli
from connectord import Destination, Options, hookimpl
from connectord.cli import cli
from connectord.registry import load_registry
from connectord.scaffold import create_plugin
from connectord.testing import write_config


def _use_plugins(monkeypatch: pytest.MonkeyPatch, *plugins: tuple[object, str]) -> None:
    """The CLI's registry: the built-ins plus ``plugins``, no installed entry points."""
    monkeypatch.setattr(
        connectord.cli,
        "load_registry",
        lambda: load_registry(load_entry_points=False, extra=list(plugins)),
    )


def _check(config: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["check", "--online", "-c", str(config)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def scaffold(tmp_path, monkeypatch):
    """A freshly generated plugin, importable, and its emulator module."""
    root = create_plugin("acme-events", tmp_path / "src", title="Acme Events")
    monkeypatch.syspath_prepend(str(root))
    package = importlib.import_module("connectord_acme_events")
    spec = importlib.util.spec_from_file_location(
        "acme_events_emulator", root / "tests/emulator.py"
    )
    assert spec and spec.loader
    emulator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emulator)
    _use_plugins(monkeypatch, (package, "acme_events"))
    return package, emulator


def test_an_untouched_scaffold_passes_check_online(scaffold, emulator_server, tmp_path):
    _, emulator = scaffold
    server = emulator_server(emulator.AcmeEventsEmulator())
    options = f'api_key = "{emulator.API_KEY}", base_url = "{server.url}"'
    config = write_config(
        tmp_path,
        f"""
[connectors.acme]
schedule = "manual"
source = {{ type = "acme_events.events", {options} }}
destination = {{ type = "acme_events", {options} }}
""",
    )
    code, out, err = _check(config)
    assert code == 0, out + err
    assert "ok   acme: source acme_events.events: API key accepted" in out
    assert "valid — 1 connector, 1 enabled" in out
    assert err == ""


def test_a_refused_key_is_reported_once(scaffold, emulator_server, tmp_path):
    _, emulator = scaffold
    server = emulator_server(emulator.AcmeEventsEmulator())
    config = write_config(
        tmp_path,
        f"""
[connectors.acme]
schedule = "manual"
source = {{ type = "acme_events.events", api_key = "wrong-key", base_url = "{server.url}" }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
""",
    )
    code, out, err = _check(config)
    assert code == 1
    failures = [line for line in (out + err).splitlines() if "acme: source" in line]
    assert len(failures) == 1, out + err
    assert failures[0].startswith("error: acme: source acme_events.events:")
    assert "401" in failures[0] and "wrong-key" not in out + err


class Lifecycle(Destination):
    """Records the calls the check makes, in order."""

    type = "test.lifecycle"
    calls: list[str] = []

    class Options(Options):
        fail_in: str = ""

    async def start(self) -> None:
        self._call("start")

    async def check(self) -> str:
        self._call("check")
        return "checked"

    async def close(self) -> None:
        self._call("close")

    async def send(self, records):  # pragma: no cover - never delivered here
        return None

    def _call(self, name: str) -> None:
        type(self).calls.append(name)
        if self.options.fail_in == name:
            raise RuntimeError(f"{name} broke")


class _Hooks:
    @hookimpl
    def register_destinations(self, register):
        register(Lifecycle)


@pytest.mark.parametrize(
    ("fail_in", "calls", "message"),
    [
        ("", ["start", "check", "close"], None),
        ("start", ["start", "close"], "start failed: RuntimeError: start broke"),
        (
            "check",
            ["start", "check", "close"],
            "RuntimeError: check broke (an error in the plugin, not a credential problem)",
        ),
    ],
)
def test_start_then_check_then_close_always(monkeypatch, tmp_path, fail_in, calls, message):
    _use_plugins(monkeypatch, (_Hooks(), "lifecycle"))
    Lifecycle.calls = []
    config = write_config(
        tmp_path,
        f"""
[connectors.life]
source = {{ type = "http.webhook", token = "t0ken-for-tests" }}
destination = {{ type = "test.lifecycle", fail_in = "{fail_in}" }}
""",
    )
    code, out, err = _check(config)
    assert Lifecycle.calls == calls
    if message is None:
        assert code == 0 and "ok   life: destination test.lifecycle: checked" in out
    else:
        assert code == 1
        assert err.count(message) == 1 and message not in out
