"""connectord plugin for Amplitude: the ``amplitude`` destination (HTTP V2 and Batch
APIs) and the ``amplitude.export`` pull source (Export API).

This module is the ``connectord`` entry point named in pyproject.toml.
"""

from connectord import hookimpl

from .destination import AmplitudeDestination
from .source import AmplitudeExportSource


@hookimpl
def register_sources(register):
    register(AmplitudeExportSource)


@hookimpl
def register_destinations(register):
    register(AmplitudeDestination)
