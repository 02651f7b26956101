"""The ``datamill`` command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from datamill import __version__
from datamill.errors import DatamillError

app = typer.Typer(
    name="datamill",
    help="Training data for LLMs: generate, check, annotate, export — with provenance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"datamill {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass


DatasetArg = Annotated[Path, typer.Argument(help="Dataset directory.")]
VersionOpt = Annotated[
    int | None, typer.Option("--version", "-v", help="Version (default: latest).")
]


@app.command()
def info(dataset: DatasetArg, version: VersionOpt = None) -> None:
    """Counts, versions, lineage and checks of a dataset."""
    from datamill.store import Dataset
    from datamill.summary import summarise

    ds = Dataset.open(dataset)
    manifest = ds.manifest()
    current = ds.version(version)
    table = Table(title=f"{manifest.name} — {ds.path}")
    for column in ("version", "parent", "stage", "records", "counts", "created"):
        table.add_column(column)
    for v in manifest.versions:
        extra = ", ".join(f"{k}={n}" for k, n in v.counts.items() if k != "records")
        table.add_row(
            f"[bold]{v.version}[/]" if v.version == current.version else str(v.version),
            "-" if v.parent is None else str(v.parent),
            escape(v.stage),
            str(v.counts.get("records", 0)),
            escape(extra),
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)
    summary = summarise(ds, current.version)
    console.print(f"version {current.version}: {summary.records} records")
    for label, counter in (("tasks", summary.tasks), ("domains", summary.domains)):
        if counter:
            console.print(
                f"  {label}: " + ", ".join(f"{escape(k)} {n}" for k, n in counter.most_common())
            )
    for name, c in sorted(summary.checks.items()):
        console.print(
            f"  check {escape(name)}: {c.passed} passed, {c.failed} failed, "
            f"{c.no_verdict} without verdict"
        )


class OnError(StrEnum):
    raise_ = "raise"
    quarantine = "quarantine"


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="JSONL, Parquet or CSV files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to write to.")],
    on_error: Annotated[
        OnError, typer.Option(help="raise: stop at the first bad row; quarantine: set it aside.")
    ] = OnError.raise_,
    rejects: Annotated[
        Path | None, typer.Option(help="Where quarantined rows go (default: OUT/rejects.jsonl).")
    ] = None,
) -> None:
    """Import records from files into a new dataset version (all or nothing)."""
    from datamill.ingest import Rejects, read_records
    from datamill.store import Dataset

    ds = Dataset.create(out)
    rejects_path = rejects or out / "rejects.jsonl"
    params = {"files": [str(f) for f in files], "on_error": on_error.value}
    with Rejects(rejects_path) as bad, ds.writer("import", params, parent=None) as w:  # type: ignore[arg-type]
        for file in files:
            w.write_all(read_records(file, on_error=on_error.value, rejects=bad))
        w.counts["rejected"] = bad.count
    assert w.committed is not None
    console.print(
        f"imported {w.committed.counts['records']} records → {escape(str(out))} "
        f"(version {w.committed.version})"
    )
    if bad.count:
        console.print(f"[yellow]{bad.count} rows quarantined[/] → {escape(str(rejects_path))}")


class ExportFormat(StrEnum):
    sft = "sft"


@app.command()
def export(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    format: Annotated[ExportFormat, typer.Option(help="Output format.")] = ExportFormat.sft,
    version: VersionOpt = None,
    all_records: Annotated[
        bool, typer.Option("--all", help="Include records that failed a check.")
    ] = False,
) -> None:
    """Export a dataset version for training."""
    from datamill.export.sft import write_sft_jsonl
    from datamill.store import Dataset

    counts = write_sft_jsonl(Dataset.open(dataset).records(version), out, not all_records)
    console.print(f"wrote {counts.written} examples → {escape(str(out))}")
    if counts.failed_checks or counts.no_reply:
        console.print(
            f"left out: {counts.failed_checks} failed a check, "
            f"{counts.no_reply} have no assistant reply"
        )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("out/demo"),
    n: Annotated[int, typer.Option("--n", min=1, help="Records to generate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Generate, check and export a small dataset on the embedded model (offline)."""
    from datamill.demo import run_demo
    from datamill.llm.embedded import EmbeddedBackend

    result = run_demo(EmbeddedBackend(), out, n=n, seed=seed, console=console)
    g, c = result.generated, result.checked
    llm = result.llm
    speed = llm.completion_tokens / llm.llm_seconds if llm.llm_seconds else 0.0
    console.print(
        f"\n[bold]datamill demo[/] done in {result.seconds:.0f}s on the embedded model: "
        f"{llm.requests} calls ({llm.cached} from cache), {llm.completion_tokens} tokens "
        f"generated at {speed:.0f} tokens/s"
    )
    console.print(
        f"  generated  {g.counts['records']} records ({g.counts.get('failed', 0)} failed) "
        f"→ version {g.version}"
    )
    console.print(f"  checked    exact_dedup + length → version {c.version}")
    console.print(f"  exported   {result.exported} SFT examples")
    where = escape(str(result.dataset))
    console.print(f"  dataset    {where}   (see: datamill info {where})")
    console.print(f"  SFT JSONL  {escape(str(result.sft))}")


def main() -> None:
    """Entry point: user errors print as one line, not a traceback."""
    try:
        app()
    except DatamillError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        raise SystemExit(1) from None
