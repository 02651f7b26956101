"""``datamill run``: a recipe with stages, from generation to exports, resumable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from datamill.cli.common import app, console, progress_bar
from datamill.cli.generation import (
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    KeyEnvOpt,
    ModelOpt,
    backend_override,
)


@app.command("run")
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file with `stages`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    n: Annotated[
        int | None, typer.Option("--n", min=1, help="Items to generate (default: the recipe's).")
    ] = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Run a recipe end to end; run it again to resume after a stop or a pause."""
    from datamill.pipeline import load_pipeline, run_pipeline

    pipeline = load_pipeline(recipe)
    override = backend_override(backend, base_url, model, api_key_env, concurrency)
    with progress_bar() as progress:

        def tick(name: str, total: int | None) -> Callable[[], None]:
            task = progress.add_task(name, total=total)
            return lambda: progress.advance(task)

        result = run_pipeline(
            pipeline, out, n=n, overrides={"generator": override} if override else None, tick=tick
        )
    for name, outcome in result.steps:
        where = f" → version {outcome.version.version}" if outcome.version else ""
        console.print(f"  {escape(name):<10} {escape(outcome.summary)}{where}")
    if result.paused:
        console.print(f"[yellow]paused:[/] {escape(result.paused)}")
        console.print("run the same command again to continue")
    else:
        console.print(f"done: {escape(str(result.dataset.path))} version {result.version}")
