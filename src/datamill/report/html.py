"""Render a report as one HTML file: inline CSS and SVG, no script, no external URL.

Jinja2 autoescape is on, so every piece of record text (check names, labels, sources,
notes) is escaped; charts escape their own labels (``svg.py``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from datamill import __version__
from datamill.quality.collapse import compare
from datamill.report import svg
from datamill.report.collect import ReportData
from datamill.store import atomic_write_bytes


def _fmt(value: object, digits: int = 3, missing: str = "—") -> str:
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("datamill.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {"fmt": _fmt, "pct": _pct, "money": partial(_fmt, missing="unknown")}
    env.globals |= {"bars": svg.bars, "histogram": svg.histogram}
    return env


def render_html(data: ReportData, threshold: float = 0.15) -> str:
    changes = []  # each version against its parent
    by_version = {v.version: p for v, p in data.diversity}
    for v, profile in data.diversity:
        parent = by_version.get(v.parent) if v.parent is not None else None
        if parent is not None and parent.texts and profile.texts:
            found = compare(parent, profile, threshold)
            if found.warnings:
                changes.append((v.parent, v.version, found.warnings))
    labels = [f"v{v.version} {v.stage}" for v in data.versions]
    profiles = [p for _, p in data.diversity]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            collapse=changes,
            threshold=threshold,
            datamill_version=__version__,
            version_chart=svg.bars(labels, [v.counts.get("records", 0) for v in data.versions]),
            diversity_chart=svg.bars(labels, [p.distinct_2 or 0.0 for p in profiles]),
        )
    )


def write_report(data: ReportData, out: str | Path, threshold: float = 0.15) -> Path:
    """Write the report atomically: a reader never sees half a file."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, render_html(data, threshold).encode("utf-8"))
    return path
