"""``python -m connectord``: the same as the ``connectord`` command."""

from .cli import main

main()
