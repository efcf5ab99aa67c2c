"""Plugin registration rules: one door for built-ins and installed packages, loud errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from connectord import Destination, Mapping, Options, PullSource, PushSource, Source, hookimpl
from connectord.errors import PluginError
from connectord.registry import (
    LOAD_PLUGINS_ENV,
    builtin_plugins,
    collect,
    get_plugin_manager,
    load_registry,
)
from connectord.testing import ThrowawayPlugin


class Beacon(PushSource):
    """A push source."""

    type = "beacon.http"


class OtherBeacon(PushSource):
    """The same type name, from somewhere else."""

    type = "beacon.http"


class Drain(Destination):
    """A destination."""

    type = "drain"


def registry_with(*plugins):
    pm = get_plugin_manager(
        load_entry_points=False, extra=[(p, f"plugin-{i}") for i, p in enumerate(plugins)]
    )
    return collect(pm)


# --- built-ins --------------------------------------------------------------------------


def test_builtins_come_through_the_hooks_like_any_plugin():
    assert {"connectord.plugins.webhook", "connectord.plugins.warehouse"} <= set(builtin_plugins())
    registry = load_registry(load_entry_points=False)
    webhook = registry.get("source", "http.webhook")
    assert webhook.provider == "connectord.plugins.webhook"
    assert (webhook.package, webhook.mode) == ("connectord", "push")
    assert registry.get("destination", "warehouse").provider == "connectord.plugins.warehouse"


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_type_names_name_both_providers():
    with pytest.raises(PluginError) as caught:
        registry_with(ThrowawayPlugin(Beacon), ThrowawayPlugin(OtherBeacon))
    message = str(caught.value)
    assert "source type 'beacon.http' is registered twice" in message
    assert "'plugin-0'" in message and "'plugin-1'" in message
    assert f"{__name__}.Beacon" in message and f"{__name__}.OtherBeacon" in message


def test_a_plugin_may_not_replace_a_builtin_type():
    class FakeWebhook(PushSource):
        type = "http.webhook"

    with pytest.raises(PluginError, match=r"registered twice: by 'connectord\.plugins\.webhook'"):
        registry_with(ThrowawayPlugin(FakeWebhook))


def test_the_same_name_in_different_kinds_is_allowed():
    class DrainSource(PushSource):
        type = "drain"

    registry = registry_with(ThrowawayPlugin(DrainSource, Drain))
    assert registry.get("source", "drain").cls is DrainSource
    assert registry.get("destination", "drain").cls is Drain


# --- wrong classes -----------------------------------------------------------------------


def registering(hook: str, thing: object) -> SimpleNamespace:
    """A plugin that hands exactly ``thing`` to one hook."""

    @hookimpl(specname=hook)
    def register_it(register):
        register(thing)

    return SimpleNamespace(register_it=register_it)


@pytest.mark.parametrize(
    ("hook", "thing", "message"),
    [
        (
            "register_sources",
            Drain,
            "registered .*Drain.* as a source, but it is not a subclass of connectord.Source",
        ),
        (
            "register_destinations",
            Beacon,
            "as a destination, but it is not a subclass of connectord.Destination",
        ),
        (
            "register_mappings",
            object(),
            "as a mapping, but it is not a subclass of connectord.Mapping",
        ),
        ("register_sources", "beacon.http", "is not a subclass"),
    ],
)
def test_wrong_classes_are_refused_naming_the_plugin(hook, thing, message):
    with pytest.raises(PluginError, match=message) as caught:
        registry_with(registering(hook, thing))
    assert "'plugin-0'" in str(caught.value)


def test_a_source_must_be_pull_or_push():
    class Vague(Source):
        type = "vague"

    with pytest.raises(PluginError, match="source 'vague' must subclass PullSource or PushSource"):
        registry_with(ThrowawayPlugin(Vague))


def test_a_class_without_a_type_name_is_refused():
    class Nameless(Mapping):
        """No type."""

    with pytest.raises(
        PluginError, match=r'Nameless has no `type` name; set e\.g\. type = "vendor\.mapping"'
    ):
        registry_with(ThrowawayPlugin(Nameless))


def test_options_must_be_a_connectord_options_model():
    class BadOptions(PullSource):
        type = "bad.options"
        Options = dict  # type: ignore[assignment]

    with pytest.raises(PluginError, match=r"'bad.options'.Options must be a connectord.Options"):
        registry_with(ThrowawayPlugin(BadOptions))


# --- hookimpls ----------------------------------------------------------------------------


class Misspelled:
    @hookimpl
    def register_source(self, register):  # the spec is register_sources
        register(Beacon)


def test_a_misspelled_hookimpl_fails_check_pending_loudly():
    with pytest.raises(PluginError) as caught:
        get_plugin_manager(load_entry_points=False, extra=[(Misspelled(), "typo")])
    message = str(caught.value)
    assert "register_source" in message and "typo" in message
    assert "register_sources, register_mappings and register_destinations" in message


class ExtraArgument:
    @hookimpl
    def register_sources(self, register, registry):
        register(Beacon)


def test_a_hookimpl_with_unknown_arguments_is_refused_with_the_plugin_name():
    with pytest.raises(PluginError) as caught:
        get_plugin_manager(load_entry_points=False, extra=[(ExtraArgument(), "extra-arg")])
    message = str(caught.value)
    assert "plugin 'extra-arg' is invalid" in message and "registry" in message


class NoArguments:
    calls = 0

    @hookimpl
    def register_destinations(self):
        NoArguments.calls += 1


def test_hookimpls_may_take_fewer_arguments_than_the_spec():
    registry_with(NoArguments())
    assert NoArguments.calls == 1


# --- installed packages (entry points) ----------------------------------------------------


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Install fake distributions by writing their dist-info onto sys.path."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(LOAD_PLUGINS_ENV, raising=False)
    created: list[str] = []

    def install(dist: str, entry: str, module: str, code: str, version: str = "1.2.3") -> Path:
        (root / f"{module}.py").write_text(textwrap.dedent(code))
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[connectord]\n{entry} = {module}\n")
        (info / "top_level.txt").write_text(f"{module}\n")
        (info / "RECORD").write_text(f"{module}.py,,\n")
        created.append(module)
        return root

    yield install
    for module in created:
        sys.modules.pop(module, None)


GOOD_PLUGIN = """
from connectord import Destination, hookimpl


class Gauge(Destination):
    '''Count what arrives.'''

    type = "gauge"


@hookimpl
def register_destinations(register):
    register(Gauge)
"""


def test_an_installed_package_is_loaded_through_its_entry_point(site):
    site("connectord-gauge", "gauge", "connectord_gauge_fake", GOOD_PLUGIN)
    registry = load_registry()
    gauge = registry.get("destination", "gauge")
    assert (gauge.provider, gauge.package, gauge.version) == ("gauge", "connectord-gauge", "1.2.3")
    described = gauge.describe()
    assert (described["package"], described["version"]) == ("connectord-gauge", "1.2.3")


def test_a_plugin_whose_import_fails_names_the_package(site):
    site("connectord-broken", "broken", "connectord_broken_fake", "import not_a_real_module_xyz\n")
    with pytest.raises(PluginError) as caught:
        load_registry()
    message = str(caught.value)
    assert (
        "plugin 'broken' (package connectord-broken, connectord_broken_fake) failed to import"
        in message
    )
    assert "not_a_real_module_xyz" in message
    assert LOAD_PLUGINS_ENV in message  # the hint says how to leave it out


def test_a_plugin_failing_at_import_with_any_error_is_reported(site):
    site("connectord-raises", "raises", "connectord_raises_fake", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match=r"package connectord-raises.*RuntimeError\('boom'\)"):
        load_registry()


def test_two_packages_with_the_same_plugin_name_are_refused(site):
    site("connectord-gauge", "gauge", "connectord_gauge_fake", GOOD_PLUGIN)
    site("connectord-gauge-fork", "gauge", "connectord_gauge_fork_fake", GOOD_PLUGIN)
    with pytest.raises(PluginError) as caught:
        load_registry()
    message = str(caught.value)
    assert "two installed packages provide the connectord plugin 'gauge'" in message
    assert "connectord-gauge" in message and "connectord-gauge-fork" in message


def test_allowlist_loads_only_the_named_plugins(site, monkeypatch):
    site("connectord-gauge", "gauge", "connectord_gauge_fake", GOOD_PLUGIN)
    site("connectord-broken", "broken", "connectord_broken_fake", "import not_a_real_module_xyz\n")
    monkeypatch.setenv(LOAD_PLUGINS_ENV, " gauge , ")
    registry = load_registry()  # broken is never imported
    assert registry.get("destination", "gauge") is not None
    assert "connectord_broken_fake" not in sys.modules


def test_an_empty_allowlist_loads_no_installed_plugin(site, monkeypatch):
    site("connectord-gauge", "gauge", "connectord_gauge_fake", GOOD_PLUGIN)
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "")
    registry = load_registry()
    assert registry.get("destination", "gauge") is None
    assert registry.get("destination", "webhook") is not None  # built-ins always load


def test_an_unset_allowlist_loads_every_installed_plugin(site):
    site("connectord-gauge", "gauge", "connectord_gauge_fake", GOOD_PLUGIN)
    assert load_registry().get("destination", "gauge") is not None


def test_an_allowlist_naming_a_missing_plugin_is_an_error(site, monkeypatch):
    site("connectord-gauge", "gauge", "connectord_gauge_fake", GOOD_PLUGIN)
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "gauge,guage")
    with pytest.raises(PluginError) as caught:
        load_registry()
    assert str(caught.value) == (
        f"{LOAD_PLUGINS_ENV} names 'guage', but no installed package provides a connectord "
        "plugin of that name; installed: gauge"
    )


def test_load_entry_points_false_ignores_installed_packages(site):
    site("connectord-broken", "broken", "connectord_broken_fake", "import not_a_real_module_xyz\n")
    assert load_registry(load_entry_points=False).get("destination", "webhook") is not None


def test_options_subclass_is_the_default_schema():
    assert issubclass(Beacon.Options, Options)
