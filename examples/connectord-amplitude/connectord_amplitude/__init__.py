"""connectord plugin for Amplitude.

This module is the entry point named in pyproject.toml: connectord imports it and
calls the hooks below once at start-up. Hooks only hand over classes; the work
happens in the classes.
"""

from connectord import hookimpl

from .destination import AmplitudeDestination
from .mapping import AmplitudeRenameEvents
from .source import AmplitudeEventsSource


@hookimpl
def register_sources(register):
    register(AmplitudeEventsSource)


@hookimpl
def register_mappings(register):
    register(AmplitudeRenameEvents)


@hookimpl
def register_destinations(register):
    register(AmplitudeDestination)
