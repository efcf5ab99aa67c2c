"""Pushwoosh: the ``pushwoosh`` destination, the ``pushwoosh.relay`` push source and the
``pushwoosh.tracking_log`` / ``pushwoosh.message_stats`` pull sources."""

from connectord import hookimpl

from .destination import PushwooshDestination
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
