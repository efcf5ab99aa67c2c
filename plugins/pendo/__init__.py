"""Pendo: the ``pendo`` destination (track events, visitor and account metadata)."""

from connectord import hookimpl

from .destination import PendoDestination


@hookimpl
def register_destinations(register):
    register(PendoDestination)
