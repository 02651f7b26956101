"""The ``datamill`` command."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datamill import __version__
from datamill.errors import DatamillError

if TYPE_CHECKING:
    from datamill.llm.config import BackendConfig
    from datamill.store import Version

app = typer.Typer(
    name="datamill",
    help="Training data for LLMs: generate, check, annotate, export — with provenance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


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


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="JSONL, Parquet or CSV files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to write to.")],
    on_error: Annotated[
        OnError, typer.Option(help="raise: stop at the first bad row; quarantine: set it aside.")
    ] = OnError.raise_,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where quarantined rows go (default: OUT/rejects/import-TIME.jsonl)."),
    ] = None,
) -> None:
    """Import records from files into a new dataset version (all or nothing)."""
    from datamill.ingest import Rejects, read_records
    from datamill.records import utc_now
    from datamill.store import Dataset

    ds = Dataset.create(out)
    stamp = utc_now().strftime("%Y%m%dT%H%M%S")
    rejects_path = rejects or out / "rejects" / f"import-{stamp}.jsonl"
    params = {"files": [str(f) for f in files], "on_error": on_error.value}
    if on_error == OnError.quarantine:
        params["rejects"] = str(rejects_path)
    with (
        _progress() as progress,
        Rejects(rejects_path) as bad,
        ds.writer("import", params, parent=None) as w,  # type: ignore[arg-type]
    ):
        for file in files:
            task = progress.add_task(file.name[-9:], total=None)
            for record in read_records(file, on_error=on_error.value, rejects=bad):
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
    dataset: DatasetArg,
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
    names = [n.strip() for n in checks.split(",") if n.strip()]
    options = _parse_options(option or [])
    unused = sorted(set(options) - set(names))
    if unused:
        raise DatamillError(f"--option names check '{unused[0]}', which is not in --checks")
    specs = [{"name": n, "options": options.get(n, {})} for n in names]
    made = [make_check(n, options.get(n)) for n in names]
    ds = Dataset.open(dataset)
    with _progress() as progress:
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


class BackendKind(StrEnum):
    embedded = "embedded"
    openai = "openai"


BackendOpt = Annotated[
    BackendKind | None, typer.Option("--backend", help="Generator backend (default: the recipe's).")
]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server, e.g. http://localhost:8000/v1.")
]
ModelOpt = Annotated[str | None, typer.Option(help="Model name (a GGUF path for embedded).")]
KeyEnvOpt = Annotated[
    str | None, typer.Option(help="Name of the environment variable holding the API key.")
]
ConcurrencyOpt = Annotated[int | None, typer.Option(min=1, help="Calls in flight at once.")]


def _backend_override(
    backend: BackendKind | None,
    base_url: str | None,
    model: str | None,
    api_key_env: str | None,
    concurrency: int | None,
) -> BackendConfig | None:
    """A generator backend from the command line, or None to keep the recipe's."""
    from datamill.llm.config import BackendConfig

    if backend is None and base_url is None and model is None:
        return None
    kind = backend or (BackendKind.openai if base_url else BackendKind.embedded)
    fields = {"model": model, "base_url": base_url, "api_key_env": api_key_env}
    fields["concurrency"] = concurrency
    return BackendConfig(kind=kind.value, **{k: v for k, v in fields.items() if v is not None})


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _print_run(version: Version) -> None:
    failed = version.stats.get("failures") or {}
    console.print(
        f"  generated  {version.counts['records']} records, {version.counts.get('failed', 0)} "
        f"failed{' (' + escape(str(failed)) + ')' if failed else ''} → version {version.version}"
    )
    for role, llm in (version.stats.get("llm") or {}).items():  # type: ignore[union-attr]
        speed = llm["completion_tokens"] / llm["llm_seconds"] if llm["llm_seconds"] else 0.0
        cost = f", cost {llm['cost']:.4f}" if llm["cost"] else ""
        retries = sum(llm["retries"].values())
        console.print(
            f"  {escape(role):<10} {llm['requests']} calls ({llm['cached']} cached, {retries} "
            f"retries), {llm['prompt_tokens']}+{llm['completion_tokens']} tokens, "
            f"{speed:.0f} tokens/s{cost}"
        )


@app.command()
def generate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory.")],
    n: Annotated[
        int | None, typer.Option("--n", min=1, help="Items (default: the recipe's).")
    ] = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    cache: Annotated[
        Path | None, typer.Option(help="Request cache (default: OUT/.cache/llm.sqlite).")
    ] = None,
) -> None:
    """Generate records from a recipe into a new dataset version (resumable: calls are cached)."""
    from datamill.generate.run import run_generation
    from datamill.recipe import load_recipe
    from datamill.store import Dataset

    loaded = load_recipe(recipe)
    override = _backend_override(backend, base_url, model, api_key_env, concurrency)
    dataset = Dataset.create(out)
    with _progress() as progress:
        task = progress.add_task("generate", total=n or loaded.n)
        version = asyncio.run(
            run_generation(
                loaded,
                dataset,
                n=n,
                cache=cache,
                overrides={"generator": override} if override else None,
                advance=lambda: progress.advance(task),
            )
        )
    _print_run(version)
    console.print(f"  dataset    {escape(str(dataset.path))}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("out/demo"),
    n: Annotated[int, typer.Option("--n", min=1, help="Records to generate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Generate, check and export a small dataset (on the embedded model unless told otherwise)."""
    from datamill.demo import run_demo

    override = _backend_override(backend, base_url, model, api_key_env, concurrency)
    result = run_demo(out, n=n, seed=seed, backend=override, progress=_progress())
    console.print(f"\n[bold]datamill demo[/] done in {result.seconds:.0f}s")
    _print_run(result.generated)
    console.print(f"  checked    exact_dedup + length → version {result.checked.version}")
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
