"""register_plugin fixture, ThrowawayPlugin and validate_config."""

from __future__ import annotations

import pytest
from pydantic import Field

from connectord import Destination, Options, PushSource, Secret
from connectord.config import ConfigError
from connectord.errors import PluginError
from connectord.testing import PluginRegistrar, ThrowawayPlugin, plugin_manager, validate_config


class Sink(Destination):
    """Accept everything."""

    type = "sink"

    class Options(Options):
        api_key: Secret = Field(description="Key.")
        region: str = Field("eu", pattern="^(eu|us)$", description="Region.")


def test_register_plugin_adds_classes_for_one_test(register_plugin):
    registry = register_plugin(Sink, name="sink-plugin")
    found = registry.get("destination", "sink")
    assert found is not None and found.provider == "sink-plugin"
    assert registry.get("destination", "webhook") is not None  # built-ins stay


def test_the_previous_test_left_nothing_behind():
    registry_names = {t.name for t in PluginRegistrar(plugin_manager()).registry().all()}
    assert "sink" not in registry_names


def test_unregister_all_removes_what_was_registered():
    registrar = PluginRegistrar(plugin_manager())
    registrar(Sink)
    registrar.unregister_all()
    assert registrar.registry().get("destination", "sink") is None
    assert registrar.names == []


def test_register_plugin_reports_registry_errors(register_plugin):
    class NoType(PushSource):
        """No type name."""

    with pytest.raises(PluginError, match="NoType has no `type` name"):
        register_plugin(NoType)


def test_a_ready_made_plugin_object_can_be_registered(register_plugin):
    registry = register_plugin(ThrowawayPlugin(Sink), name="ready")
    assert registry.get("destination", "sink").provider == "ready"


def test_validate_config_accepts_a_valid_table(register_plugin):
    registry = register_plugin(Sink)
    config = validate_config(
        """
[connectors.out]
source = { type = "http.webhook", token = "${TOKEN}" }
destination = { type = "sink", api_key_file = "sink.key" }
""",
        registry,
        env={"TOKEN": "t0ken"},
        files={"sink.key": "k-123\n"},
    )
    destination = config.connectors["out"].destination.options
    assert destination.api_key.get_secret_value() == "k-123"
    assert "k-123" in config.secrets


def test_validate_config_reports_every_issue_without_echoing_secrets(register_plugin):
    registry = register_plugin(Sink)
    with pytest.raises(ConfigError) as caught:
        validate_config(
            """
[connectors.out]
source = { type = "http.webhook", token = "t0ken" }
destination = { type = "sink", api_key = 42, regoin = "us" }
""",
            registry,
        )
    issues = {".".join(map(str, i.path)): i for i in caught.value.issues}
    assert set(issues) == {
        "connectors.out.destination.api_key",
        "connectors.out.destination.regoin",
    }
    assert issues["connectors.out.destination.regoin"].hint == "did you mean 'region'?"
    assert issues["connectors.out.destination.api_key"].found == "a value (hidden: it is a secret)"
    assert issues["connectors.out.destination.regoin"].line == 4
