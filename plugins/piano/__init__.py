"""Piano Analytics: the ``piano.collect`` destination and the ``piano.segment`` source."""

from connectord import hookimpl

from .destination import PianoCollectDestination
from .source import PianoSegmentSource


@hookimpl
def register_sources(register):
    register(PianoSegmentSource)


@hookimpl
def register_destinations(register):
    register(PianoCollectDestination)
