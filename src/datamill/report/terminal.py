"""The report's short form for the terminal, with Rich; record text is escaped for Rich markup."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from datamill.ledger import Ledger
from datamill.report.collect import ReportData


def _num(value: float | None, digits: int = 3) -> str:
    return "unknown" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def ledger_table(ledger: Ledger) -> Table:
    table = Table(title=f"ledger ({ledger.currency})")
    for column in (
        "source",
        "kind",
        "items",
        "cost",
        "items/h",
        "accepted",
        "quality",
        "flagged",
        "halluc.",
        "distinct-2",
    ):
        table.add_column(column, justify="left" if column in ("source", "kind") else "right")
    for r in ledger.rows:
        cost = _num(r.cost, 4) + (f" +{r.unpriced}?" if r.unpriced and r.cost is not None else "")
        table.add_row(
            escape(r.source),
            r.kind,
            str(r.items),
            cost,
            _num(r.throughput, 1),
            _pct(r.acceptance),
            _num(r.quality, 2) if r.quality is not None else "—",
            _pct(r.flag_rate),
            _pct(r.hallucination_rate),
            _num(r.distinct_2) if r.distinct_2 is not None else "—",
        )
    return table


def print_summary(data: ReportData, console: Console) -> None:
    console.print(
        f"[bold]{escape(data.name)}[/] version {data.version.version}: {data.records} records, "
        f"{len(data.versions)} versions"
    )
    for name, c in sorted(data.checks.items()):
        console.print(f"  check {escape(name)}: {c.passed} passed, {c.failed} failed")
    for stage, outcomes in sorted(data.decisions.items()):
        shown = ", ".join(f"{escape(k)} {n}" for k, n in outcomes.most_common())
        console.print(f"  {escape(stage)}: {shown}")
    if data.annotations:
        answers = sum(data.annotations.values())
        console.print(f"  annotations: {answers} answers from {data.annotators} annotators")
    for a in data.agreement:
        console.print(f"  agreement {escape(a['question'])}: alpha {_num(a['alpha'])}")
    profile = data.diversity[-1][1]
    console.print(
        f"  diversity: distinct-2 {_num(profile.distinct_2)}, self-BLEU {_num(profile.self_bleu)}"
    )
    if data.ledger is not None:
        console.print(ledger_table(data.ledger))
    for note in data.notes:
        console.print(f"  [dim]{escape(note)}[/]")
