"""Commands that sum a dataset up: report (HTML + terminal) and ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from datamill.cli.common import DatasetArg, VersionOpt, app, console

RatesOpt = Annotated[
    Path | None,
    typer.Option(help="rates.yaml: annotator groups' hourly rates and model prices."),
]


@app.command()
def report(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    version: VersionOpt = None,
    rates: RatesOpt = None,
    embeddings: Annotated[
        bool, typer.Option(help="Embedding dispersion of the version (slower).")
    ] = False,
    threshold: Annotated[
        float, typer.Option(min=0.001, max=0.999, help="Diversity fall that warns.")
    ] = 0.15,
) -> None:
    """One self-contained offline HTML report (tables and SVG charts) and a terminal summary."""
    from datamill.ledger import Rates
    from datamill.quality.diversity import default_encoder
    from datamill.report import collect, write_report
    from datamill.report.terminal import print_summary
    from datamill.store import Dataset

    loaded = Rates.load(rates) if rates else None
    encoder = default_encoder() if embeddings else None
    data = collect(Dataset.open(dataset), version, loaded, encoder)
    path = write_report(data, out, threshold)
    print_summary(data, console)
    console.print(f"report → {escape(str(path))}")


@app.command()
def ledger(dataset: DatasetArg, version: VersionOpt = None, rates: RatesOpt = None) -> None:
    """Cost, speed, acceptance, quality and diversity per source: synthetic against human."""
    from datamill.ledger import Rates, build_ledger
    from datamill.report.terminal import ledger_table
    from datamill.store import Dataset

    loaded = Rates.load(rates) if rates else None
    book = build_ledger(Dataset.open(dataset).records(version), loaded)
    console.print(ledger_table(book))
    table = [("synthetic", book.comparison["synthetic"]), ("human", book.comparison["human"])]
    for side, measures in table:
        shown = ", ".join(
            f"{k.replace('_', ' ')} {'unknown' if v is None else f'{v:.3g}'}"
            for k, v in measures.items()
        )
        console.print(f"{side}: {shown}")
