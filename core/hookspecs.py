"""The hooks a connectord plugin can implement.

Every hook is synchronous and cheap: it hands classes to a ``register`` callback owned
by the framework, which checks them and remembers which plugin provided each type.
The I/O lives on the registered classes (see `connectord.api`).

Implementations may accept fewer arguments than the spec; call hooks with keywords.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .api import Destination, Mapping, Source

hookspec = pluggy.HookspecMarker("connectord")
hookimpl = pluggy.HookimplMarker("connectord")


# --- registration hooks --------------------------------------------------------------


@hookspec
def register_sources(register: Callable[[type[Source]], None]) -> None:
    """Register source classes (subclasses of `PullSource` or `PushSource`).

    :param register: call once per class: ``register(MySource)``. The class's ``type``
        attribute is the name used in ``connectors.toml``; two plugins registering the
        same type name is a startup error that names both.
    """


@hookspec
def register_mappings(register: Callable[[type[Mapping]], None]) -> None:
    """Register mapping classes (subclasses of `Mapping`).

    :param register: call once per class: ``register(MyMapping)``.
    """


@hookspec
def register_destinations(register: Callable[[type[Destination]], None]) -> None:
    """Register destination classes (subclasses of `Destination`).

    :param register: call once per class: ``register(MyDestination)``.
    """
