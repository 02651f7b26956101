"""Tiny inline SVG charts: horizontal bars and histograms, with every label escaped.

A report must open offline with no script and no CDN, so charts are plain SVG markup
written here (a few dozen lines) rather than drawn by a plotting library.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR = 18
LABEL_WIDTH = 180
CHART_WIDTH = 360


def bars(labels: Sequence[str], values: Sequence[float], unit: str = "") -> Markup:
    """One horizontal bar per label, scaled to the largest value."""
    if not values:
        return Markup("")
    top = max(max(values), 1e-12)
    height = BAR * len(values) + 4
    width = LABEL_WIDTH + CHART_WIDTH + 80
    parts = [
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" class="chart">'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = i * BAR + 2
        length = max(value, 0) / top * CHART_WIDTH
        text, shown = escape(str(label)[:40]), f"{value:.3g}{escape(unit)}"
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{text}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR - 4}">'
            f"<title>{text}: {shown}</title></rect>"
            f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + 13}">{shown}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(values: Sequence[float], bins: int = 10) -> Markup:
    """Counts of ``values`` in ``bins`` equal-width bins, as bars."""
    if not values:
        return Markup("")
    low, high = min(values), max(values)
    if high == low:
        return bars([f"{low:g}"], [float(len(values))])
    width = (high - low) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / width), bins - 1)] += 1
    labels = [f"{low + i * width:.3g}–{low + (i + 1) * width:.3g}" for i in range(bins)]
    return bars(labels, [float(c) for c in counts])
