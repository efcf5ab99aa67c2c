"""Twilio Segment: the ``segment.http`` Tracking API source and the ``segment.to_pendo``
mapping."""

from connectord import hookimpl

from .mapping import SegmentToPendo
from .source import SegmentSource


@hookimpl
def register_sources(register):
    register(SegmentSource)


@hookimpl
def register_mappings(register):
    register(SegmentToPendo)
