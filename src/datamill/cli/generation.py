"""Commands that make records: generate, demo."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from datamill.cli.common import app, console, progress_bar

if TYPE_CHECKING:
    from datamill.llm.config import BackendConfig
    from datamill.store import Version


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


def backend_override(
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


def _run_outcome(version: Version, before: int) -> str:
    """Records kept (and how many failed verification, by check), items that made none."""
    summary: dict[str, Any] = version.stats.get("summary") or {}  # type: ignore[assignment]
    failed = version.stats.get("failures") or {}
    text = f"{version.counts['records'] - before} records"
    if unverified := summary.get("verification_failed"):
        checks = summary.get("verification") or {}
        which = ", ".join(f"{name} {c['failed']}" for name, c in checks.items() if c["failed"])
        text += f" ({unverified} failed verification: {which})"
    text += f", {version.counts.get('failed', 0)} failed"
    kinds = [(k, summary.get(k)) for k in ("parse_failures", "rejected", "call_errors")]
    if failed:
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in kinds if v)
        text += f" ({shown + ': ' if shown else ''}{escape(str(failed))})"
    return text


def _print_run(version: Version, label: str = "generated", before: int = 0) -> None:
    """A generation run's counts and model use; ``before``: records of the version it extends."""
    dropped = version.counts.get("near_duplicates")
    console.print(
        f"  {escape(label):<10} {_run_outcome(version, before)}"
        f"{f', {dropped} near-duplicates dropped' if dropped else ''} → version {version.version}"
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
    override = backend_override(backend, base_url, model, api_key_env, concurrency)
    dataset = Dataset.create(out)
    with progress_bar() as progress:
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
    n: Annotated[
        int, typer.Option("--n", min=1, help="Records to generate, shared by the families.")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Generate (domain Q&A, verified math, support chats), check, route and export a small
    dataset (on the embedded model unless told otherwise)."""
    from datamill.demo import run_demo

    override = backend_override(backend, base_url, model, api_key_env, concurrency)
    result = run_demo(out, n=n, seed=seed, backend=override, progress=progress_bar())
    console.print(f"\n[bold]datamill demo[/] done in {result.seconds:.0f}s")
    before = 0
    for version in result.generated:
        family = str(version.params["recipe"]["family"])  # type: ignore[index,call-overload]
        _print_run(version, family, before)
        before = version.counts["records"]
    checked, routed = result.checked, result.routed.counts
    failed = ", ".join(
        f"{k.removeprefix('failed_')} {v}" for k, v in checked.counts.items() if k != "records"
    )
    console.print(
        f"  checked    exact_dedup + length + safety{f' (failed: {failed})' if failed else ''}"
        f" → version {checked.version}"
    )
    console.print(
        f"  routed     accept {routed['accept']}, reject {routed['reject']}, human "
        f"{routed['human']} (audit {routed['audit']}) → version {result.routed.version}"
    )
    console.print(f"  exported   {result.exported} SFT examples, accepted and passing every check")
    where = escape(str(result.dataset))
    console.print(f"  dataset    {where}   (see: datamill info {where})")
    console.print(f"  SFT JSONL  {escape(str(result.sft))}")
