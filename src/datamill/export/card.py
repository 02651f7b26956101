"""A dataset card (Markdown, with the YAML header the Hugging Face Hub reads) that says what
an export holds: where its records came from (models, recipes, prompt templates), the mix
of synthetic, human and imported data, the checks applied and their pass rates, human
agreement where the resolve stage measured it, the licenses of the sources, and the
counts per split.

:class:`CardStats` watches records go by during the export (memory grows with the number of
distinct models, checks, licenses... not with records); :func:`render` writes the card.
Every value that came from data is escaped: a model name cannot inject HTML into the card.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml

from datamill.export.rows import Row
from datamill.records import Record

_SOURCE_COLUMNS = ("preference_source", "label_source", "score_source")


@dataclass
class CardStats:
    records: Counter[str] = field(default_factory=Counter)  # exported records per split
    rows: Counter[str] = field(default_factory=Counter)  # rows per split
    left_out: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)  # provenance.source
    candidate_sources: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    recipes: Counter[str] = field(default_factory=Counter)
    templates: Counter[str] = field(default_factory=Counter)
    licenses: Counter[str] = field(default_factory=Counter)
    checks: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    annotated: int = 0
    annotations: int = 0
    annotators: set[str] = field(default_factory=set)
    decided_by: Counter[str] = field(default_factory=Counter)
    agreement: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    row_sources: Counter[str] = field(default_factory=Counter)

    def add(self, record: Record, split: str | None, rows: list[Row]) -> None:
        if split is None:
            return
        self.records[split] += 1
        self.rows[split] += len(rows)
        p = record.provenance
        self.sources[p.source] += 1
        for value, counter in ((p.model, self.models), (p.recipe, self.recipes)):
            if value:
                counter[value] += 1
        if p.template:
            self.templates[f"{p.template}@{p.template_version or '?'}"] += 1
        for c in record.candidates:
            self.candidate_sources[c.source] += 1
            if c.model:
                self.models[c.model] += 1
        license_ = record.metadata.get("license") or p.params.get("license")
        self.licenses[str(license_) if license_ else "not stated"] += 1
        for name, check in record.checks.items():
            verdict = {True: "passed", False: "failed", None: "no verdict"}[check.passed]
            self.checks[name][verdict] += 1
        if record.annotations:
            self.annotated += 1
            self.annotations += len(record.annotations)
            self.annotators.update(a.annotator for a in record.annotations)
        if (resolved := record.decisions.get("resolve")) is not None:
            self.decided_by[resolved.by] += 1
            _agreement(resolved.details.get("agreement"), "", self.agreement)
        for row in rows:
            for column in _SOURCE_COLUMNS:
                if column in row:
                    self.row_sources[str(row[column])] += 1


def _agreement(value: Any, name: str, into: dict[str, list[float]]) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        into[name or "overall"].append(float(value))
    elif isinstance(value, dict):
        for key, inner in value.items():
            _agreement(inner, f"{name}.{key}" if name else str(key), into)


def _md(value: object) -> str:
    """Data text made safe for a Markdown table cell."""
    text = html.escape(str(value)).replace("|", "\\|").replace("`", "&#96;")
    return " ".join(text.split())


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _counts(title: str, counter: Counter[str], total: int, unit: str = "records") -> list[str]:
    if not counter:
        return []
    rows = [(k, n, _pct(n, total)) for k, n in counter.most_common()]
    return [f"### {title}", "", *_table(("", unit, "share"), rows)]


def render(
    stats: CardStats,
    name: str,
    format_name: str,
    files: dict[str, str],
    source: str = "",
) -> str:
    """The card's Markdown. ``files`` maps each split to its file name."""
    total = sum(stats.records.values())
    licenses = [k for k in stats.licenses if k != "not stated"]
    header: dict[str, Any] = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f} for s, f in files.items()],
            }
        ],
        "tags": ["datamill", format_name],
    }
    if len(licenses) == 1 and stats.licenses[licenses[0]] == total:
        header["license"] = licenses[0].lower()
    out = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", ""]
    out += [f"# {_md(name)}", ""]
    out += [f"A {format_name} export of {total} records made by datamill{source}.", ""]
    out += ["## Splits", ""]
    out += _table(
        ("split", "file", "records", "rows"),
        [(s, f, stats.records[s], stats.rows[s]) for s, f in files.items()],
    )
    if stats.left_out:
        out += ["Left out: " + ", ".join(f"{n} {_md(k)}" for k, n in stats.left_out.items()), ""]
    out += ["## Provenance", ""]
    out += _counts("Sources", stats.sources, total)
    out += _counts(
        "Candidate responses",
        stats.candidate_sources,
        stats.candidate_sources.total(),
        "candidates",
    )
    out += _counts("Models", stats.models, total)
    out += _counts("Recipes", stats.recipes, total)
    out += _counts("Prompt templates", stats.templates, total)
    out += _counts("Licenses of the sources", stats.licenses, total)
    if stats.row_sources:
        out += _counts(
            "Where each row's label came from", stats.row_sources, sum(stats.rows.values())
        )
    out += ["## Checks", ""]
    if stats.checks:
        rows = [
            (check, c["passed"], c["failed"], c["no verdict"], _pct(c["passed"], c.total()))
            for check, c in sorted(stats.checks.items())
        ]
        out += _table(("check", "passed", "failed", "no verdict", "pass rate"), rows)
    else:
        out += ["No automatic checks were run on these records.", ""]
    out += ["## Human annotation", ""]
    if stats.annotated or stats.decided_by:
        out += [
            f"{stats.annotated} records ({_pct(stats.annotated, total)}) carry "
            f"{stats.annotations} answers from {len(stats.annotators)} annotators.",
            "",
        ]
        out += _counts("Decided by", stats.decided_by, total)
        if stats.agreement:
            rows = [
                (k, len(v), f"{statistics.fmean(v):.3f}")
                for k, v in sorted(stats.agreement.items())
            ]
            out += ["### Agreement", "", *_table(("measure", "records", "mean"), rows)]
    else:
        out += ["No human annotations.", ""]
    return "\n".join(out)
