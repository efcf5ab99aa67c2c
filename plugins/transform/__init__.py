"""Generic, declarative mappings: ``fields`` and ``filter``."""

from connectord import hookimpl

from .mapping import FieldsMapping, FilterMapping


@hookimpl
def register_mappings(register):
    register(FieldsMapping)
    register(FilterMapping)
