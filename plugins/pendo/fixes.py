"""Counting and logging what was changed to fit Pendo's rules.

The same bad property names come back record after record, so each name is logged
once (``pendo.name.renamed`` / ``pendo.name.dropped``, ``pendo.properties.too_large``
per event name), while `FixReport.counts` keeps the totals.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import const
from .payloads import Fixes

MAX_REPORTED = 10_000
"""Names already logged; beyond this many, new names are counted but not logged."""


class FixReport:
    def __init__(self, log: Any) -> None:
        self.log = log
        self.counts = Counter[str]()
        """``renamed``, ``dropped`` (names) and ``properties_too_large`` (events)."""
        self._reported: set[tuple[str, str]] = set()

    def note(self, fixes: Fixes, event: str | None = None) -> None:
        for what, name, new in fixes.names:
            self.counts["renamed" if new is not None else "dropped"] += 1
            if self._first(what, name):
                self.log.warning(
                    "pendo.name.renamed" if new is not None else "pendo.name.dropped",
                    kind=what,
                    name=name[:80],
                    renamed_to=new,
                )
        if fixes.too_large is not None:
            self.counts["properties_too_large"] += 1
            if self._first("too large", event or ""):
                self.log.warning(
                    "pendo.properties.too_large",
                    event_name=(event or "")[:80],
                    bytes=fixes.too_large,
                    limit=const.MAX_PROPERTIES_BYTES,
                )

    def _first(self, what: str, name: str) -> bool:
        key = (what, name)
        if key in self._reported or len(self._reported) >= MAX_REPORTED:
            return False
        self._reported.add(key)
        return True
