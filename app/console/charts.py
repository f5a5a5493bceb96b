"""Line charts as inline SVG, drawn on the server (no JavaScript library, no CDN).

`line_chart` is pure: series in, SVG text out. Text is escaped; colours come from CSS classes
(`series-0` ...) so the page's stylesheet decides them, light or dark.
"""

from __future__ import annotations

import math
from html import escape

from pydantic import BaseModel, Field


class Point(BaseModel):
    x: float
    y: float
    label: str = ""


class Series(BaseModel):
    name: str
    points: list[Point]
    marker: float | None = Field(default=None, description="An x to mark on this series (the promoted step).")


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    out, value = [], first
    while value <= high + step * 1e-9:
        out.append(round(value, 10))
        value += step
    return out


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


MAX_DOTS = 40
"""Series with more points are drawn as a line only (a loss curve has one point per logged step)."""


def _legend(series: list[Series], left: int, right_edge: int) -> tuple[list[str], int]:
    """Legend entries in rows under the title (wrapping at the right edge); returns them and the plot's top."""
    parts: list[str] = []
    x, row = left, 0
    for index, s in enumerate(series):
        needed = 22 + 7 * len(s.name)
        if x > left and x + needed > right_edge:
            x, row = left, row + 1
        y = 27 + 14 * row
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="3" class="chart-key series-{index % 6}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 5}" class="chart-legend">{escape(s.name)}</text>')
        x += needed
    return parts, 44 + 14 * row


def line_chart(
    series: list[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 240,
    y_range: tuple[float, float] | None = None,
) -> str:
    """An SVG line chart with axes, ticks, a legend and a title (for screen readers too)."""
    points = [p for s in series for p in s.points]
    if not points:
        return (
            f'<svg class="chart" viewBox="0 0 {width} 60" role="img" aria-label="{escape(title)}: no data">'
            f'<text x="8" y="34" class="chart-empty">{escape(title)}: no data yet</text></svg>'
        )
    left, right, bottom = 52, 12, 40
    legend, top = _legend(series, left, width - right)
    xs = [p.x for p in points]
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_range is not None:
        y_low, y_high = y_range
    else:
        ys = [p.y for p in points]
        y_low, y_high = min(ys), max(ys)
        pad = (y_high - y_low) * 0.08 or abs(y_high) * 0.1 or 1.0
        y_low, y_high = y_low - pad, y_high + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y_low) / (y_high - y_low)) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="14" class="chart-title">{escape(title)}</text>',
    ]
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="chart-grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-tick">{_fmt(tick)}</text>'
        )
    for tick in _ticks(x_low, x_high, 5):
        x = sx(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" class="chart-tick">'
            f"{_fmt(tick)}</text>"
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" class="chart-axis"/>')
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" '
        f'class="chart-axis"/>'
    )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="chart-label">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text transform="translate(12 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'class="chart-label">{escape(y_label)}</text>'
    )
    for index, s in enumerate(series):
        ordered = sorted(s.points, key=lambda p: p.x)
        if not ordered:
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(p.x):.1f},{sy(p.y):.1f}" for i, p in enumerate(ordered))
        parts.append(f'<path d="{path}" class="chart-line series-{index % 6}"/>')
        dots = ordered if len(ordered) <= MAX_DOTS else []
        for p in dots:
            tip = f"{s.name}: {_fmt(p.y)} at {x_label} {_fmt(p.x)}" + (f" ({p.label})" if p.label else "")
            parts.append(
                f'<circle cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="3" class="chart-dot series-{index % 6}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        if s.marker is not None:
            x = sx(s.marker)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" class="chart-marker"/>'
            )
            parts.append(f'<text x="{x + 3:.1f}" y="{top + 10}" class="chart-marker-label">promoted</text>')
    parts += legend
    parts.append("</svg>")
    return "".join(parts)
