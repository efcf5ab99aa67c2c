"""``files``: records into gzip CSV, JSON lines or Parquet files, named like CleverTap's
cloud export."""

from connectord import hookimpl

from .destination import FilesDestination


@hookimpl
def register_destinations(register):
    register(FilesDestination)
