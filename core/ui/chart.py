"""Records in/out per minute as an inline SVG: no script, no external asset.

Colours and fonts come from classes in ``static/ui.css`` (no ``style`` attributes, so
the page's Content-Security-Policy needs no ``'unsafe-inline'``). Minutes with no
sample (the daemon was down) break the lines instead of pretending to be zero.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 640, 140, 28


def _nice(value: float) -> int:
    """A round axis maximum at or above ``value``."""
    for power in range(0, 12):
        for step in (1, 2, 5):
            candidate = step * 10**power
            if candidate >= value:
                return candidate
    return int(value)


def _segments(points: list[dict[str, Any]], key: str) -> list[list[tuple[int, int]]]:
    segments: list[list[tuple[int, int]]] = []
    previous = None
    for point in points:
        if previous is None or point["minute"] != previous + 1:
            segments.append([])
        segments[-1].append((point["minute"], point[key]))
        previous = point["minute"]
    return segments


def render_chart(points: list[dict[str, Any]], hours: float, last_minute: int, label: str) -> str:
    first = last_minute - int(hours * 60)
    top = _nice(max([1, *(max(p["in"], p["out"]) for p in points)]))
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(minute: int, value: int) -> str:
        x = PAD + plot_w * (minute - first) / max(1, last_minute - first)
        y = PAD + plot_h * (1 - value / top)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for key in ("in", "out"):
        for segment in _segments(points, key):
            if len(segment) == 1:
                segment = [segment[0], segment[0]]
            coords = " ".join(xy(m, v) for m, v in segment)
            lines.append(f'<polyline class="line-{key}" points="{coords}"/>')
        if points:  # the latest value, visible even when it is the only one
            x, y = xy(points[-1]["minute"], points[-1][key]).split(",")
            lines.append(f'<circle class="dot-{key}" cx="{x}" cy="{y}" r="2.5"/>')
    axis_y = PAD + plot_h
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<line class="axis" x1="{PAD}" y1="{axis_y}" x2="{WIDTH - PAD}" y2="{axis_y}"/>'
        f'<line class="grid" x1="{PAD}" y1="{PAD}" x2="{WIDTH - PAD}" y2="{PAD}"/>'
        f'<text class="tick" x="{PAD}" y="{PAD - 6}">{top:,}/min</text>'
        f'<text class="tick" x="{PAD}" y="{HEIGHT - 8}">-{hours:g}h</text>'
        f'<text class="tick end" x="{WIDTH - PAD}" y="{HEIGHT - 8}">now</text>'
        f'<text class="legend-in" x="{WIDTH - PAD - 110}" y="{PAD - 6}">in</text>'
        f'<text class="legend-out" x="{WIDTH - PAD - 60}" y="{PAD - 6}">out</text>'
        + "".join(lines)
        + (
            f'<text class="tick" x="{WIDTH / 2}" y="{HEIGHT / 2}">no samples yet</text>'
            if not points
            else ""
        )
        + "</svg>"
    )
