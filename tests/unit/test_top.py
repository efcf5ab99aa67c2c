"""`connectord top`: one frame rendered to text from two status snapshots."""

from __future__ import annotations

from rich.console import Console

from connectord.top import render


def entry(name, received, delivered, **extra):
    return {
        "name": name,
        "mode": "push",
        "health": "ok",
        "counts": {"received": received, "delivered": delivered, "last_delivered_at": None},
        "queue_depth": 0,
        "dead_letter_count": 0,
        "runs": [],
        "history": [],
        "last_error": None,
        **extra,
    }


def text(frame) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(frame)
    return console.export_text()


def test_rates_come_from_the_counters_growth_between_polls():
    before = {"generated_at": 100.0, "connectors": [entry("relay", 1000, 900)]}
    now = {"generated_at": 102.0, "connectors": [entry("relay", 1100, 960, queue_depth=140)]}
    out = text(render(now, before, source="http://127.0.0.1:8787"))
    row = next(line for line in out.splitlines() if "relay" in line)
    assert "50.0" in row and "30.0" in row and "140" in row
    assert "http://127.0.0.1:8787" in out


def test_first_frame_uses_the_last_minute_of_history():
    now = {
        "generated_at": 100.0,
        "connectors": [entry("relay", 5, 5, history=[{"minute": 1, "in": 120, "out": 60}])],
    }
    row = next(line for line in text(render(now)).splitlines() if "relay" in line)
    assert "2.0" in row and "1.0" in row


def test_health_dead_letters_last_run_and_error_are_shown():
    run = {"status": "failed", "started_at": 40.0, "seconds": 3.25}
    now = {
        "generated_at": 100.0,
        "connectors": [
            entry(
                "daily",
                0,
                0,
                mode="pull",
                health="credentials refused",
                dead_letter_count=12,
                runs=[run],
                last_error="pendo answered HTTP 401: bad key",
            )
        ],
    }
    out = text(render(now))
    assert "credentials refused" in out
    assert "12" in out
    assert "failed 60s ago (3.2s)" in out or "failed 60s ago (3.3s)" in out
    assert "HTTP 401: bad key" in out


def test_an_unreachable_daemon_is_reported_in_the_view():
    out = text(render({"connectors": []}, error="cannot reach the daemon at http://x"))
    assert "cannot reach the daemon" in out
