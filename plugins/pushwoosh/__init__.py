"""Pushwoosh: the ``pushwoosh`` destination."""

from connectord import hookimpl

from .destination import PushwooshDestination


@hookimpl
def register_destinations(register):
    register(PushwooshDestination)
