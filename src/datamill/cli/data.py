"""Commands that move data in, out and describe it: info, import, export."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datamill.cli.common import DatasetArg, VersionOpt, app, console, progress_bar


@app.command()
def info(dataset: DatasetArg, version: VersionOpt = None) -> None:
    """Counts, versions, lineage and checks of a dataset."""
    from datamill.store import Dataset
    from datamill.summary import summarise

    ds = Dataset.open(dataset)
    manifest = ds.manifest()
    if not manifest.versions:
        console.print(f"{escape(manifest.name)} — {escape(str(ds.path))}: no versions yet")
        return
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


class ImportFormat(StrEnum):
    auto = "auto"
    records = "records"
    hf = "hf"
    argilla = "argilla"
    labelstudio = "labelstudio"
    oasst = "oasst"
    hh_rlhf = "hh-rlhf"


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="JSONL, Parquet, CSV or JSON files, or saved HF dataset directories."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to write to.")],
    format: Annotated[
        ImportFormat, typer.Option(help="Input format (auto: guessed from each file).")
    ] = ImportFormat.auto,
    on_error: Annotated[
        OnError, typer.Option(help="raise: stop at the first bad row; quarantine: set it aside.")
    ] = OnError.raise_,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where quarantined rows go (default: OUT/rejects/import-TIME.jsonl)."),
    ] = None,
    license: Annotated[
        str | None, typer.Option(help="The source's license, kept on every record for the card.")
    ] = None,
) -> None:
    """Import records from files into a new dataset version (all or nothing)."""
    from datamill.importers import read
    from datamill.ingest import Rejects
    from datamill.records import utc_now
    from datamill.store import Dataset

    ds = Dataset.create(out)
    stamp = utc_now().strftime("%Y%m%dT%H%M%S")
    rejects_path = rejects or out / "rejects" / f"import-{stamp}.jsonl"
    params = {"files": [str(f) for f in files], "on_error": on_error.value}
    params["format"] = format.value
    if license:
        params["license"] = license
    if on_error == OnError.quarantine:
        params["rejects"] = str(rejects_path)
    with (
        progress_bar() as progress,
        Rejects(rejects_path) as bad,
        ds.writer("import", params, parent=None) as w,  # type: ignore[arg-type]
    ):
        for file in files:
            task = progress.add_task(file.name[-9:], total=None)
            for record in read(file, format.value, on_error.value, bad, license):
                w.write(record)
                progress.advance(task)
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
    preference = "preference"
    kto = "kto"
    reward = "reward"
    openai = "openai"
    sharegpt = "sharegpt"


class FileFormat(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


class Style(StrEnum):
    conversational = "conversational"
    standard = "standard"


class Pairs(StrEnum):
    all = "all"
    best = "best"
    extremes = "extremes"


LEFT_OUT = {
    "failed_checks": "failed a check",
    "no_assistant_reply": "have no assistant reply",
    "prompt_not_single_user_turn": "are not single-turn (the standard style needs one user turn)",
    "awaiting_adjudication": "await adjudication",
}


@app.command()
def export(
    dataset: DatasetArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="File to write; a directory with --split.")
    ],
    format: Annotated[ExportFormat, typer.Option(help="Output format.")] = ExportFormat.sft,
    file_format: Annotated[FileFormat, typer.Option(help="File format.")] = FileFormat.jsonl,
    style: Annotated[
        Style, typer.Option(help="TRL style: message lists, or plain text (single-turn only).")
    ] = Style.conversational,
    split: Annotated[
        str | None,
        typer.Option(help="e.g. test=0.1 or validation=0.1,test=0.1; train takes the rest."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="Near-duplicate prompts at this Jaccard stay on one side.")
    ] = 0.8,
    card: Annotated[bool, typer.Option("--card", help="Write a dataset card.")] = False,
    pairs: Annotated[
        Pairs, typer.Option(help="Preference pairs: all, best vs rest, best vs worst.")
    ] = Pairs.all,
    judge: Annotated[
        str | None, typer.Option(help="The check whose verdicts rank candidates.")
    ] = None,
    version: VersionOpt = None,
    all_records: Annotated[
        bool, typer.Option("--all", help="Include records that failed a check.")
    ] = False,
) -> None:
    """Export a dataset version for training (SFT, preference, KTO, reward, OpenAI, ShareGPT)."""
    from datamill.export import make_format
    from datamill.export.run import export_dataset
    from datamill.export.split import parse_split

    report = export_dataset(
        dataset,
        out,
        make_format(format.value, pairs.value, judge),
        version=version,
        file_format=file_format.value,  # type: ignore[arg-type]
        style=style.value,  # type: ignore[arg-type]
        only_passed=False if all_records else None,
        split=parse_split(split) if split else None,
        seed=seed,
        threshold=threshold,
        card=card,
    )
    for name, path in report.paths.items():
        console.print(
            f"{escape(name)}: {report.rows.get(name, 0)} rows from "
            f"{report.records[name]} records → {escape(str(path))}"
        )
    if report.left_out:
        why = ", ".join(
            f"{n} {LEFT_OUT.get(k, k.replace('_', ' '))}" for k, n in report.left_out.items()
        )
        console.print(f"left out: {escape(why)}")
    if report.card is not None:
        console.print(f"card → {escape(str(report.card))}")
