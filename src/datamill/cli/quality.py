"""Commands that judge records: check, filter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from datamill.cli.common import DatasetArg, VersionOpt, app, console, progress_bar
from datamill.errors import DatamillError


def _parse_options(options: list[str]) -> dict[str, dict[str, object]]:
    """``check.option=value`` pairs, values read as YAML (numbers, booleans, lists)."""
    import yaml

    parsed: dict[str, dict[str, object]] = {}
    for item in options:
        key, sep, value = item.partition("=")
        check, dot, option = key.partition(".")
        if not (sep and dot and check and option):
            raise DatamillError(f"cannot read the option {item!r}; write CHECK.OPTION=VALUE")
        parsed.setdefault(check, {})[option] = yaml.safe_load(value)
    return parsed


@app.command()
def check(
    dataset: Annotated[
        Path | None, typer.Argument(help="Dataset directory (not needed with --list).")
    ] = None,
    checks: Annotated[
        str | None, typer.Option("--checks", "-c", help="Comma-separated check names.")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="CHECK.OPTION=VALUE, repeatable.")
    ] = None,
    version: VersionOpt = None,
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks.")] = False,
) -> None:
    """Run checks on a version; writes a new version with every result on every record."""
    from datamill.checks import available, make_check, options_of
    from datamill.checks.stage import check_dataset
    from datamill.store import Dataset

    if list_checks or not checks:
        for name, cls in available().items():
            opts = ", ".join(f"{k}={v!r}" for k, v in options_of(cls).items())
            console.print(f"{name:<16} {escape(opts)}")
        return
    if dataset is None:
        raise DatamillError("name the dataset to check: datamill check DATASET --checks …")
    names = [n.strip() for n in checks.split(",") if n.strip()]
    options = _parse_options(option or [])
    unused = sorted(set(options) - set(names))
    if unused:
        raise DatamillError(f"--option names check '{unused[0]}', which is not in --checks")
    specs = [{"name": n, "options": options.get(n, {})} for n in names]
    made = [make_check(n, options.get(n)) for n in names]
    ds = Dataset.open(dataset)
    with progress_bar() as progress:
        task = progress.add_task("check", total=ds.count(version))
        done = asyncio.run(
            check_dataset(ds, made, specs, version, advance=lambda: progress.advance(task))
        )
    failed = ", ".join(
        f"{k.removeprefix('failed_')} {n}" for k, n in done.counts.items() if k != "records"
    )
    console.print(
        f"checked {done.counts['records']} records → version {done.version}"
        f"{'; failed: ' + escape(failed) if failed else ''}"
    )


@app.command("filter")
def filter_(
    dataset: DatasetArg,
    rule: Annotated[
        list[str], typer.Option("--rule", "-r", help="NAME or NAME.score>=X; repeatable.")
    ],
    rejected: Annotated[
        Path | None, typer.Option(help="Dataset for rejected records (default: DATASET/rejected).")
    ] = None,
    version: VersionOpt = None,
) -> None:
    """Keep records that pass every rule; the others go, with reasons, to a rejected set."""
    from datamill.checks.rules import parse_rule
    from datamill.checks.stage import filter_dataset
    from datamill.store import Dataset

    rules = [parse_rule(r) for r in rule]
    ds = Dataset.open(dataset)
    bin_ = Dataset.create(rejected or ds.path / "rejected", name=f"{ds.manifest().name}-rejected")
    keep, drop = filter_dataset(ds, rules, bin_, version)
    console.print(f"kept {keep.counts['records']} → {escape(str(ds.path))} version {keep.version}")
    console.print(
        f"rejected {drop.counts['records']} → {escape(str(bin_.path))} version {drop.version}"
    )
    if drop.stats.get("rejected_by"):
        console.print(f"  by rule: {escape(str(drop.stats['rejected_by']))}")
