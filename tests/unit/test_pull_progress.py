"""The ``connectord sync`` progress line: days done/total (when the source plans days)
and the current rate."""

from __future__ import annotations

from connectord.cli_sync import _Progress, line
from connectord.connector import RunSummary
from connectord.pull import UnitProgress


def test_the_line_shows_days_records_and_rate():
    summary = RunSummary("backfill", "running", records_in=1200, records_out=1190, rejected=10)
    text = line(summary, 412.4, (31, 1096))
    assert text == "31/1096 days, 1200 read, 1190 delivered, 10 rejected  (412 records/s)"
    assert line(summary, 0.0) == "1200 read, 1190 delivered, 10 rejected  (0 records/s)"


def test_the_rate_is_the_current_one_not_the_average(monkeypatch, capsys):
    clock = [100.0]
    monkeypatch.setattr("connectord.cli_sync.time.monotonic", lambda: clock[0])

    class Source:
        progress = UnitProgress()

    source = Source()
    source.progress.plan(10)
    progress = _Progress(source)
    progress.tty = False
    summary = RunSummary("backfill", "running")
    clock[0], summary.records_in = 110.0, 10_000  # 1,000 records/s over the first 10 s
    source.progress.advance(5)
    progress(summary)
    clock[0], summary.records_in = 120.0, 10_500  # then 50 records/s
    source.progress.advance(2)
    progress(summary)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "5/10 days, 10000 read, 0 delivered, 0 rejected  (1,000 records/s)",
        "7/10 days, 10500 read, 0 delivered, 0 rejected  (50 records/s)",
    ]
