"""Run an export: records → rows of one format → one file per split (+ a dataset card)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from datamill.checks import passed
from datamill.errors import DatamillError
from datamill.export.files import FileFormat, SplitFiles
from datamill.export.rows import Format, Row, Skip, Style
from datamill.records import Record

FAILED_CHECKS = "failed_checks"


@dataclass
class Report:
    paths: dict[str, Path]
    rows: dict[str, int] = field(default_factory=dict)  # per split
    records: Counter[str] = field(default_factory=Counter)  # records that gave rows, per split
    left_out: Counter[str] = field(default_factory=Counter)  # records that gave none, by reason
    card: Path | None = None

    @property
    def written(self) -> int:
        return sum(self.rows.values())


def check_choice(fmt: Format, style: Style, file_format: FileFormat) -> None:
    if style not in fmt.styles:
        raise DatamillError(f"the {fmt.name} format has no {style} style")
    if file_format not in fmt.file_formats:
        raise DatamillError(f"the {fmt.name} format is written as {', '.join(fmt.file_formats)}")


def export_records(
    records: Iterable[Record],
    fmt: Format,
    paths: dict[str, Path],
    file_format: FileFormat = "jsonl",
    style: Style = "conversational",
    only_passed: bool | None = None,
    side: Callable[[int, Record], str] | None = None,
    observe: Callable[[Record, str | None, list[Row]], None] | None = None,
) -> Report:
    """Write the rows of ``records`` in ``fmt`` to the file of each record's split.

    ``side(number, record)`` names the split of the ``number``-th record (default: the
    only path's). ``only_passed`` (default: the format's) leaves out records that failed
    a check. ``observe(record, split, rows)`` sees every record and its rows, with ``split``
    None for one left out. Every file appears whole or not at all.
    """
    check_choice(fmt, style, file_format)
    if only_passed is None:
        only_passed = fmt.only_passed
    if side is None and len(paths) != 1:
        raise ValueError("several split files need side= to say where each record goes")
    default = next(iter(paths))
    report = Report(dict(paths))
    with SplitFiles(paths, file_format, fmt.schema(style)) as files:
        for number, record in enumerate(records):
            if only_passed and not passed(record):
                got: list[Row] | Skip = Skip(FAILED_CHECKS)
            else:
                got = fmt.rows(record, style)
            if isinstance(got, Skip) or not got:
                report.left_out[str(got) if isinstance(got, Skip) else "no_rows"] += 1
                if observe is not None:
                    observe(record, None, [])
                continue
            split = default if side is None else side(number, record)
            for row in got:
                files.write(split, row)
            report.records[split] += 1
            if observe is not None:
                observe(record, split, got)
        report.rows = files.rows
    return report


def export_dataset(
    path: Path,
    out: Path,
    fmt: Format,
    version: int | None = None,
    file_format: FileFormat = "jsonl",
    style: Style = "conversational",
    only_passed: bool | None = None,
    split: dict[str, float] | None = None,
    seed: int = 0,
    threshold: float = 0.8,
    card: bool = False,
) -> Report:
    """Export a dataset version. Without ``split``, ``out`` is the file; with it, ``out``
    is a directory holding ``<split>.<ext>`` per split. The card goes to ``README.md``
    in that directory, or beside the file as ``<name>.md``."""
    from datamill.export.card import CardStats, render
    from datamill.export.split import split_records
    from datamill.store import Dataset, atomic_write_bytes

    check_choice(fmt, style, file_format)
    ds = Dataset.open(path)
    number = ds.version(version).version  # both passes read the same version
    side = None
    if split is not None:
        parts = split_records(ds.records(number), split, seed=seed, threshold=threshold)
        paths = {name: out / f"{name}.{file_format}" for name in split}
        side = parts.side
    else:
        paths = {"train": out}
    stats = CardStats()
    report = export_records(
        ds.records(number), fmt, paths, file_format, style, only_passed, side, stats.add
    )
    if card:
        stats.left_out = report.left_out
        where = out / "README.md" if split is not None else out.with_suffix(".md")
        files = {name: p.name for name, p in paths.items()}
        text = render(stats, ds.manifest().name, fmt.name, files, f" from version {number}")
        atomic_write_bytes(where, text.encode())
        report.card = where
    return report
