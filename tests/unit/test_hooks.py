"""Each hook, exercised the way docs/plugins.md shows it: a module-level @hookimpl that
calls ``register`` once per class."""

from __future__ import annotations

from types import SimpleNamespace

from connectord import Destination, Mapping, Options, PullSource, PushSource, hookimpl


class Events(PullSource):
    """Read events."""

    type = "hooktest.events"


class Hook(PushSource):
    """Receive events."""

    type = "hooktest.http"


class Rename(Mapping):
    """Rename events."""

    type = "hooktest.rename"


class Sink(Destination):
    """Store events."""

    type = "hooktest"

    class Options(Options):
        pass


def plugin(**hooks) -> SimpleNamespace:
    """A plugin module stand-in holding the given hook functions."""
    return SimpleNamespace(**hooks)


def test_hook_register_sources(register_plugin):
    @hookimpl
    def register_sources(register):
        register(Events)
        register(Hook)

    registry = register_plugin(plugin(register_sources=register_sources), name="hooktest")
    events, http = (
        registry.get("source", "hooktest.events"),
        registry.get("source", "hooktest.http"),
    )
    assert (events.cls, events.mode, events.provider) == (Events, "pull", "hooktest")
    assert (http.cls, http.mode) == (Hook, "push")
    assert events.describe()["summary"] == "Read events."


def test_hook_register_mappings(register_plugin):
    @hookimpl
    def register_mappings(register):
        register(Rename)

    registry = register_plugin(plugin(register_mappings=register_mappings), name="hooktest")
    rename = registry.get("mapping", "hooktest.rename")
    assert (rename.kind, rename.cls, rename.mode) == ("mapping", Rename, None)


def test_hook_register_destinations(register_plugin):
    @hookimpl
    def register_destinations(register):
        register(Sink)

    registry = register_plugin(plugin(register_destinations=register_destinations), name="hooktest")
    sink = registry.get("destination", "hooktest")
    assert (sink.kind, sink.cls, sink.provider) == ("destination", Sink, "hooktest")
    assert sink.describe()["options"] == []


def test_a_plugin_may_implement_any_subset_of_hooks(register_plugin):
    @hookimpl
    def register_sources(register):
        register(Events)

    @hookimpl
    def register_destinations(register):
        register(Sink)

    registry = register_plugin(
        plugin(register_sources=register_sources, register_destinations=register_destinations)
    )
    assert registry.get("source", "hooktest.events") and registry.get("destination", "hooktest")
    assert registry.get("mapping", "hooktest.rename") is None


def test_hooks_are_called_once_per_registry(register_plugin):
    calls = []

    @hookimpl
    def register_mappings(register):
        calls.append(register)
        register(Rename)

    register_plugin(plugin(register_mappings=register_mappings))
    assert len(calls) == 1
