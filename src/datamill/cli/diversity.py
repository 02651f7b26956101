"""``datamill diversity``: a version's diversity profile, and its fall against a baseline.

The profile is printed (and written as JSON with ``--json``), not stored as a new dataset
version: measuring changes no record, a version that only repeats its parent's records
would stand in lineage as the "latest" data every later stage reads, and the figures are
deterministic (fixed-seed sample), so measuring again gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datamill.cli.common import DatasetArg, VersionOpt, app, console
from datamill.errors import DatamillError

if TYPE_CHECKING:
    from datamill.quality.collapse import Comparison
    from datamill.quality.diversity import Profile, Profiler
    from datamill.records import Record


class PartOpt(StrEnum):
    response = "response"
    prompt = "prompt"
    conversation = "conversation"


def source_records(path: Path, version: int | None = None) -> Iterator[Record]:
    """Records of a dataset directory, or of a JSONL/Parquet/CSV file."""
    from datamill.ingest import read_records
    from datamill.store import MANIFEST, Dataset

    if path.is_dir() and (path / MANIFEST).exists():
        return Dataset.open(path).records(version)
    if not path.exists():
        raise DatamillError(f"{path}: no such dataset or file")
    return read_records(path)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_profile(profile: Profile, title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("records / texts", f"{profile.records} / {profile.texts}"),
        ("tokens", str(profile.tokens)),
        ("sample (texts)", str(profile.sample)),
        ("distinct-1 / 2 / 3", " / ".join(_fmt(getattr(profile, f"distinct_{n}")) for n in "123")),
        (f"MATTR (window {profile.mattr_window})", _fmt(profile.mattr)),
        ("compression ratio (gzip)", _fmt(profile.compression_ratio, 2)),
        ("self-BLEU", _fmt(profile.self_bleu)),
        (f"embedding dispersion ({profile.dispersion_sample})", _fmt(profile.dispersion)),
    ]
    for name, cov in profile.coverage.items():
        more = "+" if cov.capped else ""
        rows.append(
            (f"{name} coverage", f"{cov.distinct}{more} values, evenness {cov.evenness:.2f}")
        )
    for metric, value in rows:
        table.add_row(escape(metric), escape(value))
    console.print(table)


def print_comparison(comparison: Comparison, baseline: str) -> None:
    table = Table(title=f"against {baseline}")
    for column in ("metric", "baseline", "current", "diversity change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for c in comparison.changes:
        change = "—" if c.drop is None else f"{-c.drop:+.1%}"
        style = "bold red" if c.warn else ""
        table.add_row(escape(c.label), _fmt(c.baseline), _fmt(c.current), change, style=style)
    console.print(table)
    for note in comparison.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    for c in comparison.warnings:
        console.print(
            f"[bold red]warning:[/] {escape(c.label)} fell {c.drop:.0%} "
            f"(threshold {comparison.threshold:.0%}): diversity is collapsing"
        )
    if not comparison.warnings:
        console.print(f"no metric fell more than {comparison.threshold:.0%}")


@app.command()
def diversity(
    dataset: DatasetArg,
    version: VersionOpt = None,
    against: Annotated[
        int | None, typer.Option(help="Compare with this version of the same dataset.")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Compare with a reference set: dataset dir or data file.")
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0.001, max=0.999, help="Warn when a metric falls this much.")
    ] = 0.15,
    part: Annotated[PartOpt, typer.Option(help="Which text to measure.")] = PartOpt.response,
    sample: Annotated[
        int, typer.Option(min=2, help="Texts sampled for distinct-n, self-BLEU.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    embeddings: Annotated[
        bool, typer.Option(help="Embedding dispersion (needs datamill[semantic]).")
    ] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Diversity of a version (distinct-n, MATTR, compression, self-BLEU, dispersion,
    coverage); with --against or --reference, warns when diversity fell past --threshold."""
    from datamill.quality.collapse import compare
    from datamill.quality.diversity import Profiler, default_encoder
    from datamill.store import Dataset, atomic_write_bytes

    if against is not None and reference is not None:
        raise DatamillError("give --against or --reference, not both")
    ds = Dataset.open(dataset)
    encoder = default_encoder() if embeddings else None
    if embeddings and encoder is None:
        console.print("[dim]no sentence encoder installed: no embedding dispersion[/]")

    def profiler(records: Iterator[Record]) -> Profiler:
        return Profiler(part=part.value, sample=sample, seed=seed, encoder=encoder).add_all(records)

    current = profiler(ds.records(version))
    baseline, label = None, ""
    if against is not None:
        baseline, label = profiler(ds.records(against)), f"version {against}"
    elif reference is not None:
        baseline, label = profiler(source_records(reference)), str(reference)
    limit = None if baseline is None else min(current.sampled, baseline.sampled)
    profile = current.profile(limit)
    shown = ds.version(version).version
    print_profile(profile, f"diversity of {ds.path} version {shown} ({part.value})")
    out: dict[str, object] = {"profile": profile.model_dump(mode="json")}
    if baseline is not None:
        base = baseline.profile(limit)
        comparison = compare(base, profile, threshold)
        print_comparison(comparison, label)
        out |= {"baseline": base.model_dump(mode="json"), "comparison": comparison.model_dump()}
    if json_out is not None:
        import json

        atomic_write_bytes(json_out, json.dumps(out, indent=2).encode())
        console.print(f"profile → {escape(str(json_out))}")
