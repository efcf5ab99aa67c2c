"""What ``connectord sync`` prints: the progress line and the final report, on stderr.

`connectord.sync` runs the connector and says what happens through a `SyncOutput`; this
module is the terminal side of it, so the core module does no terminal output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from .connector import RunSummary
from .pull import units_of


class _Progress:
    """One line, rewritten in place on a terminal; a line per 5 s otherwise. The rate
    is the current one (since the previous line, at least a second), not the average;
    a source that plans units (a backfill's days) adds ``days done/total``."""

    def __init__(
        self, source: Any = None, units: Callable[[], tuple[int, int] | None] | None = None
    ) -> None:
        self.source = source
        self.units = units
        self.shown_units = False
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.mark = (time.monotonic(), 0)  # (when, records read then)
        self.rate = 0.0

    def __call__(self, summary: RunSummary) -> None:
        now = time.monotonic()
        units = units_of(self.source) if self.units is None else self.units()
        first_units = units is not None and not self.shown_units
        if not self.tty and now - self.last < 5 and not first_units:
            return
        self.last = now
        self.shown_units = self.shown_units or units is not None
        since, count = self.mark
        if now - since >= 1.0:
            self.rate = (summary.records_in - count) / (now - since)
            self.mark = (now, summary.records_in)
        elif not self.rate:
            self.rate = (summary.records_in - count) / max(now - since, 1e-6)
        text = line(summary, self.rate, units)
        click.echo(f"\r{text}\033[K" if self.tty else text, err=True, nl=not self.tty)

    def done(self) -> None:
        if self.tty:
            click.echo("", err=True)


def line(summary: RunSummary, rate: float, units: tuple[int, int] | None = None) -> str:
    """The progress line: days (when the source plans them), records, current rate."""
    days = ""
    if units is not None:
        done, total = units
        days = f"{done}/{total} days, "
    return (
        f"{days}{summary.records_in} read, {summary.records_out} delivered, "
        f"{summary.rejected} rejected  ({rate:,.0f} records/s)"
    )


class TerminalOutput:
    """The `SyncOutput` of the command line."""

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def progress(
        self, source: Any = None, units: Callable[[], tuple[int, int] | None] | None = None
    ) -> _Progress:
        return _Progress(source, units)

    def report(self, summary: RunSummary) -> None:
        rate = summary.records_in / summary.seconds if summary.seconds else 0
        click.echo(
            f"{summary.connector}: {summary.status} — {summary.records_in} read, "
            f"{summary.records_out} delivered, {summary.rejected} rejected in "
            f"{summary.seconds:.1f}s ({rate:,.0f} records/s)",
            err=True,
        )
        if summary.error:
            click.echo(f"error: {summary.error}", err=True)
