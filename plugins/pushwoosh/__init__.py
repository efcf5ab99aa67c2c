"""Pushwoosh: the ``pushwoosh`` destination, the ``pushwoosh.relay`` push source, the
``pushwoosh.tracking_log`` / ``pushwoosh.message_stats`` pull sources and the
``pushwoosh.to_piano`` mapping."""

from connectord import hookimpl

from .destination import PushwooshDestination
from .mapping import PushwooshToPiano
from .relay import PushwooshRelay
from .source import PushwooshMessageStats, PushwooshTrackingLog


@hookimpl
def register_sources(register):
    register(PushwooshRelay)
    register(PushwooshTrackingLog)
    register(PushwooshMessageStats)


@hookimpl
def register_destinations(register):
    register(PushwooshDestination)


@hookimpl
def register_mappings(register):
    register(PushwooshToPiano)
