"""Find plugins and collect the types they register.

Built-in plugins and third-party packages (entry-point group ``connectord``) go
through the same door: each is a module with `hookimpl` functions, registered with the
plugin manager, and asked for its classes through the `register_*` hooks.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .api import Destination, Mapping, Plugin, PullSource, PushSource, Source
from .errors import PluginError

BUILTIN_PACKAGE = "connectord.plugins"


def builtin_plugins() -> list[str]:
    """Built-in plugin modules: every package in `connectord.plugins` (one per vendor).

    They are registered exactly like third-party plugins, through the hooks.
    """
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(
        f"{BUILTIN_PACKAGE}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if info.ispkg
    )


ENTRY_POINT_GROUP = "connectord"
LOAD_PLUGINS_ENV = "CONNECTORD_LOAD_PLUGINS"
"""Comma-separated allowlist of third-party plugins to load; empty loads none."""

_KINDS: dict[str, type[Plugin]] = {
    "source": Source,
    "mapping": Mapping,
    "destination": Destination,
}


def get_plugin_manager(
    *,
    load_entry_points: bool = True,
    extra: Iterable[tuple[object, str]] = (),
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins and installed plugins registered.

    :param load_entry_points: load third-party plugins from the ``connectord``
        entry-point group (filtered by ``CONNECTORD_LOAD_PLUGINS`` when set).
    :param extra: ``(module_or_object, name)`` pairs to register too (tests).
    :raises PluginError: a plugin implements a hook that does not exist.
    """
    pm = pluggy.PluginManager("connectord")
    pm.add_hookspecs(hookspecs)
    for module_name in builtin_plugins():
        register_plugin(pm, importlib.import_module(module_name), module_name)
    if load_entry_points:
        _load_entry_points(pm)
    for plugin, name in extra:
        register_plugin(pm, plugin, name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        name = pm.get_name(err.plugin) or repr(err.plugin)
        raise PluginError(f"plugin {name!r}: {err}\nHint: {_HOOKS_HINT}") from err
    return pm


_HOOKS_HINT = (
    "the hooks are register_sources, register_mappings and register_destinations, "
    "each taking `register` (docs/plugins.md)"
)


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """``pm.register`` with pluggy's validation errors turned into a `PluginError`."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as err:
        raise PluginError(f"plugin {name!r} is invalid: {err}\nHint: {_HOOKS_HINT}") from err
    except ValueError as err:  # pluggy: a name or object registered twice
        raise PluginError(f"plugin {name!r} cannot be registered: {err}") from err


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = allowed_plugins()
    installed = metadata.entry_points(group=ENTRY_POINT_GROUP)
    if allowed:
        missing = sorted(allowed - {ep.name for ep in installed})
        if missing:
            raise PluginError(
                f"{LOAD_PLUGINS_ENV} names {', '.join(map(repr, missing))}, but no installed "
                f"package provides a connectord plugin of that name; installed: "
                f"{', '.join(sorted({ep.name for ep in installed})) or 'none'}"
            )
    providers: dict[str, str] = {}
    for ep in installed:
        if allowed is not None and ep.name not in allowed:
            continue
        dist = _distribution(ep)
        if ep.name in providers:
            if providers[ep.name] != dist:
                raise PluginError(
                    f"two installed packages provide the connectord plugin {ep.name!r}: "
                    f"{providers[ep.name]} and {dist}; uninstall one of them"
                )
            continue  # the same distribution seen twice on sys.path
        providers[ep.name] = dist
        try:
            plugin = ep.load()
        except Exception as err:
            raise PluginError(
                f"plugin {ep.name!r} (package {dist}, {ep.value}) failed to import: {err!r}"
                f"\nHint: reinstall the package, or leave it out with {LOAD_PLUGINS_ENV}"
            ) from err
        register_plugin(pm, plugin, ep.name)


def allowed_plugins() -> set[str] | None:
    """The names in ``CONNECTORD_LOAD_PLUGINS``; ``None`` when it is unset (load all)."""
    allow = os.environ.get(LOAD_PLUGINS_ENV)
    if allow is None:
        return None
    return {name.strip() for name in allow.split(",") if name.strip()}


def _distribution(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def provider_package(plugin: object) -> tuple[str, str] | None:
    """``(distribution, version)`` of the installed package a plugin module comes from."""
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    top = module.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


@dataclass(frozen=True)
class PluginType:
    """One registered class and who provided it."""

    kind: str
    name: str
    cls: type[Plugin]
    provider: str
    package: str | None = None
    """The installed distribution the provider comes from, e.g. ``connectord-amplitude``."""
    version: str | None = None

    @property
    def options_model(self) -> type[BaseModel]:
        return self.cls.Options

    @property
    def mode(self) -> str | None:
        if issubclass(self.cls, PushSource):
            return "push"
        if issubclass(self.cls, PullSource):
            return "pull"
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: what ``connectord plugins --json`` prints."""
        from .schema import describe_options

        doc = (self.cls.__doc__ or "").strip()
        return {
            "kind": self.kind,
            "type": self.name,
            "mode": self.mode,
            "provider": self.provider,
            "package": self.package,
            "version": self.version,
            "summary": " ".join(doc.split("\n\n")[0].split()) if doc else "",
            "description": doc,
            "options": describe_options(self.options_model),
        }


@dataclass
class Registry:
    """Every source, mapping and destination type, by kind and name."""

    types: dict[str, dict[str, PluginType]] = field(
        default_factory=lambda: {kind: {} for kind in _KINDS}
    )

    def get(self, kind: str, name: str) -> PluginType | None:
        return self.types[kind].get(name)

    def all(self) -> list[PluginType]:
        return [t for kind in _KINDS for t in sorted(self.types[kind].values(), key=_by_name)]

    def add(
        self, kind: str, cls: object, provider: str, package: tuple[str, str] | None = None
    ) -> None:
        base = _KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"plugin {provider!r} registered {cls!r} as a {kind}, "
                f"but it is not a subclass of connectord.{base.__name__}"
            )
        name = getattr(cls, "type", None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"plugin {provider!r}: {cls.__name__} has no `type` name; "
                f'set e.g. type = "vendor.{kind}"'
            )
        if kind == "source" and not issubclass(cls, (PullSource, PushSource)):
            raise PluginError(
                f"plugin {provider!r}: source {name!r} must subclass PullSource or PushSource"
            )
        if not (isinstance(cls.Options, type) and issubclass(cls.Options, BaseModel)):
            raise PluginError(f"plugin {provider!r}: {name!r}.Options must be a connectord.Options")
        existing = self.types[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"{kind} type {name!r} is registered twice: by {existing.provider!r} "
                f"({existing.cls.__module__}.{existing.cls.__qualname__}) and by {provider!r} "
                f"({cls.__module__}.{cls.__qualname__}); uninstall one of them"
            )
        dist, version = package or (None, None)
        self.types[kind][name] = PluginType(kind, name, cls, provider, dist, version)


def _by_name(t: PluginType) -> str:
    return t.name


def collect(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin for its classes; duplicates and wrong types raise `PluginError`."""
    registry = Registry()
    hooks = {
        "source": pm.hook.register_sources,
        "mapping": pm.hook.register_mappings,
        "destination": pm.hook.register_destinations,
    }
    packages: dict[str, tuple[str, str] | None] = {}
    for kind, hook in hooks.items():
        for impl in hook.get_hookimpls():
            provider = impl.plugin_name
            if provider not in packages:
                packages[provider] = provider_package(impl.plugin)

            def register(
                cls: object,
                _kind: str = kind,
                _provider: str = provider,
                _package: tuple[str, str] | None = packages[provider],
            ) -> None:
                registry.add(_kind, cls, _provider, _package)

            impl.function(**_hook_kwargs(impl, register))
    return registry


def _hook_kwargs(impl: pluggy.HookImpl, register: Any) -> dict[str, Any]:
    # Opt-in arguments: an implementation may take fewer arguments than the spec.
    return {"register": register} if "register" in impl.argnames else {}


def load_registry(**kwargs: Any) -> Registry:
    """`get_plugin_manager` then `collect`: the registry the daemon and CLI use."""
    return collect(get_plugin_manager(**kwargs))
