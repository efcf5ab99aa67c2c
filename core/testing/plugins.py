"""Register throwaway plugin classes for one test, and validate config against them.

The suite's installed plugins stay out of the way: `plugin_manager` loads the built-ins
only (no entry points), and the ``register_plugin`` fixture registers extra classes for
one test and unregisters them afterwards, as datasette's tests do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy

from ..api import Destination, Mapping, Plugin, Source
from ..config import Config, load_config
from ..hookspecs import hookimpl
from ..registry import Registry, collect, get_plugin_manager, register_plugin


class ThrowawayPlugin:
    """A plugin object whose ``register_*`` hooks hand over the given classes.

    Each class goes to the hook of its kind (`Source`, `Mapping` or `Destination`).
    Anything else is passed to ``register_sources``, so that tests can check how the
    registry refuses it.
    """

    def __init__(self, *classes: Any) -> None:
        self.classes = classes

    def _of(self, kind: type[Plugin]) -> list[Any]:
        return [c for c in self.classes if isinstance(c, type) and issubclass(c, kind)]

    @hookimpl
    def register_sources(self, register: Any) -> None:
        others = [
            c
            for c in self.classes
            if not (isinstance(c, type) and issubclass(c, (Source, Mapping, Destination)))
        ]
        for cls in [*self._of(Source), *others]:
            register(cls)

    @hookimpl
    def register_mappings(self, register: Any) -> None:
        for cls in self._of(Mapping):
            register(cls)

    @hookimpl
    def register_destinations(self, register: Any) -> None:
        for cls in self._of(Destination):
            register(cls)


def plugin_manager(*, load_entry_points: bool = False) -> pluggy.PluginManager:
    """A plugin manager with the built-ins (and, if asked, installed plugins)."""
    return get_plugin_manager(load_entry_points=load_entry_points)


class PluginRegistrar:
    """What the ``register_plugin`` fixture hands a test: register, then `registry`."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.names: list[str] = []

    def __call__(self, *classes_or_plugin: Any, name: str | None = None) -> Registry:
        """Register classes (or one ready-made plugin object or module); return the
        registry with them in it. Errors are the `PluginError` the daemon would raise."""
        if len(classes_or_plugin) == 1 and not isinstance(classes_or_plugin[0], type):
            plugin = classes_or_plugin[0]
        else:
            plugin = ThrowawayPlugin(*classes_or_plugin)
        name = name or f"throwaway-{len(self.names)}"
        register_plugin(self.pm, plugin, name)
        self.names.append(name)
        return self.registry()

    def registry(self) -> Registry:
        return collect(self.pm)

    def unregister_all(self) -> None:
        for name in reversed(self.names):
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
        self.names.clear()


def validate_config(
    connectors_toml: str,
    registry: Registry | None = None,
    *,
    env: dict[str, str] | None = None,
    directory: Path | None = None,
    files: dict[str, str] | Iterable[tuple[str, str]] = (),
) -> Config:
    """Validate a ``connectors.toml`` text exactly as ``connectord check`` does.

    Returns the `Config`, or raises `connectord.config.ConfigError` whose ``issues``
    hold each problem (path, message, expected, found, line) — test that your options
    explain themselves. ``files`` are written next to the config first (``*_file``
    secrets); ``env`` replaces the environment for ``${VAR}``.
    """
    registry = registry or collect(plugin_manager(load_entry_points=True))
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(directory or scratch)
        for relative, content in dict(files).items():
            (base / relative).parent.mkdir(parents=True, exist_ok=True)
            (base / relative).write_text(content, encoding="utf-8")
        path = base / "connectors.toml"
        path.write_text(connectors_toml, encoding="utf-8")
        return load_config(path, registry, environ=env or {})
