"""Pushwoosh: the ``pushwoosh`` destination and the ``pushwoosh.relay`` source."""

from connectord import hookimpl

from .destination import PushwooshDestination
from .relay import PushwooshRelay


@hookimpl
def register_sources(register):
    register(PushwooshRelay)


@hookimpl
def register_destinations(register):
    register(PushwooshDestination)
