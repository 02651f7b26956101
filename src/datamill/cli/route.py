"""The route command: accept, reject or send each record to humans, by a policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from datamill.cli.common import DatasetArg, VersionOpt, app, console, progress_bar


@app.command()
def route(
    dataset: DatasetArg,
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Routing policy YAML file.")],
    project: Annotated[
        str | None, typer.Option(help="Project for human items (default: the policy's).")
    ] = None,
    budget: Annotated[
        int | None, typer.Option(min=0, help="Most items sent to humans (default: the policy's).")
    ] = None,
    version: VersionOpt = None,
) -> None:
    """Decide for every record: accept, reject or send to humans; writes a new version with
    the decision and its reason on each record (record.decisions["route"])."""
    from datamill.route import load_policy, route_dataset
    from datamill.store import Dataset

    loaded = load_policy(policy)
    updates = {"project": project, "budget": budget}
    loaded = loaded.model_copy(update={k: v for k, v in updates.items() if v is not None})
    ds = Dataset.open(dataset)
    with progress_bar() as progress:
        task = progress.add_task("route", total=ds.count(version))
        routed = route_dataset(ds, loaded, version, advance=lambda: progress.advance(task))
    c = routed.counts
    calibration = routed.params.get("calibration")
    if isinstance(calibration, dict):
        shown = [
            f"{name} {'n/a' if calibration[key] is None else format(calibration[key], '.2f')}"
            for name, key in (("κ", "kappa"), ("accuracy", "accuracy"))
        ]
        verdict = "trusted" if calibration["trusted"] else "distrusted: judge rules adjusted"
        console.print(
            f"  judge      {escape(verdict)} ({', '.join(shown)} on "
            f"{escape(str(calibration['source']))})"
        )
    console.print(
        f"  routed     {c['records']} records by {escape(loaded.ident())} → version "
        f"{routed.version}"
    )
    console.print(
        f"  accept {c['accept']}, reject {c['reject']}, human {c['human']} "
        f"(audit {c['audit']}, over budget {c['over_budget']})"
    )
    for name, count in sorted((routed.stats.get("projects") or {}).items()):  # type: ignore[union-attr]
        console.print(f"  project    {escape(name)}: {count} items")
    for name, count in sorted((routed.stats.get("rules") or {}).items()):  # type: ignore[union-attr]
        console.print(f"  rule       {escape(name)}: fired on {count}")
