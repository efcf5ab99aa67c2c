"""connectord plugin for My Vendor.

This module is the entry point named in pyproject.toml: connectord imports it and
calls the hooks below once at start-up. Hooks only hand over classes; the work
happens in the classes.
"""

from connectord import hookimpl

from .destination import MyVendorDestination
from .mapping import MyVendorRenameEvents
from .source import MyVendorEventsSource


@hookimpl
def register_sources(register):
    register(MyVendorEventsSource)


@hookimpl
def register_mappings(register):
    register(MyVendorRenameEvents)


@hookimpl
def register_destinations(register):
    register(MyVendorDestination)
