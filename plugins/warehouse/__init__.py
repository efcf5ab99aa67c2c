"""The ``warehouse`` destination: records into SQL tables a BI tool can query."""

from connectord import hookimpl

from .destination import WarehouseDestination


@hookimpl
def register_destinations(register):
    register(WarehouseDestination)
