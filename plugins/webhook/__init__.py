"""Generic HTTP: the ``http.webhook`` push source and the ``webhook`` destination."""

from connectord import hookimpl

from .destination import WebhookDestination
from .source import WebhookSource


@hookimpl
def register_sources(register):
    register(WebhookSource)


@hookimpl
def register_destinations(register):
    register(WebhookDestination)
