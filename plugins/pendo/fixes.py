"""Counting and logging what was changed to fit Pendo's rules.

The same bad property names come back record after record, so each name is logged
once (``pendo.name.renamed`` / ``pendo.name.dropped``, ``pendo.properties.too_large``
per event name), while every occurrence is counted: in `FixReport.counts` and in the
daemon's ``connectord_plugin_events_total{event="pendo_name_renamed"|...}``.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from . import const
from .payloads import Fixes

METRIC_EVENTS = {
    "renamed": "pendo_name_renamed",
    "dropped": "pendo_name_dropped",
    "properties_too_large": "pendo_properties_too_large",
}
"""The ``event`` label of ``connectord_plugin_events_total`` for each kind of fix."""

MAX_REPORTED = 10_000
"""Names already logged; beyond this many, new names are counted but not logged."""


class FixReport:
    def __init__(self, log: Any, count: Callable[..., None]) -> None:
        self.log = log
        self.count = count
        self.counts = Counter[str]()
        """``renamed``, ``dropped`` (names) and ``properties_too_large`` (events)."""
        self._reported: set[tuple[str, str]] = set()
        self._recent: OrderedDict[Any, None] = OrderedDict()
        """Records already counted, so that a retried batch is not counted again."""

    def note(self, fixes: Fixes, record: Any, event: str | None = None) -> None:
        """Count and log the fixes made to ``record`` (once per record: its
        ``messageId``), logging each name the first time only."""
        if not (fixes.names or fixes.too_large is not None) or self._seen(record):
            return
        for what, name, new in fixes.names:
            self.add("renamed" if new is not None else "dropped")
            if self._first(what, name):
                self.log.warning(
                    "pendo.name.renamed" if new is not None else "pendo.name.dropped",
                    kind=what,
                    name=name[:80],
                    renamed_to=new,
                )
        if fixes.too_large is not None:
            self.add("properties_too_large")
            if self._first("too large", event or ""):
                self.log.warning(
                    "pendo.properties.too_large",
                    event_name=(event or "")[:80],
                    bytes=fixes.too_large,
                    limit=const.MAX_PROPERTIES_BYTES,
                )

    def _seen(self, record: Any) -> bool:
        key = record.get("messageId") if isinstance(record, dict) else None
        if key is None:
            return False
        key = (record.get("type"), key)
        if key in self._recent:
            return True
        self._recent[key] = None
        if len(self._recent) > MAX_REPORTED:
            self._recent.popitem(last=False)
        return False

    def add(self, kind: str) -> None:
        self.counts[kind] += 1
        self.count(METRIC_EVENTS[kind])

    def _first(self, what: str, name: str) -> bool:
        key = (what, name)
        if key in self._reported or len(self._reported) >= MAX_REPORTED:
            return False
        self._reported.add(key)
        return True
