"""``datamill annotate adjudicate push|pull``: records resolve left open go to reviewers in
the app, and their answers come back as the records' final decisions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from datamill.cli.annotate import DEFAULT_DB, DbOpt, annotate_app, open_db
from datamill.cli.common import DatasetArg, VersionOpt, console
from datamill.errors import DatamillError

adjudicate_app = typer.Typer(help="Adjudication by reviewers in the app: push open records, pull.")
annotate_app.add_typer(adjudicate_app, name="adjudicate")

ProjectOpt = Annotated[
    str, typer.Option(help="The project the answers came from (its adjudication project is used).")
]


@adjudicate_app.command("push")
def push(
    dataset: DatasetArg,
    project: ProjectOpt,
    version: VersionOpt = None,
    reviewer: Annotated[
        list[str], typer.Option(help="Reviewer to add (repeat; default: every reviewer).")
    ] = [],  # noqa: B006
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Send the records resolve marked `adjudicate` to PROJECT-adjudication (created if
    missing, with the same questions, one reviewer per item)."""
    from datamill.annotate import adjudication, service

    database = open_db(db)
    with database.write() as s:
        source = service.get_project(s, project)
        users = [service.get_user(s, name) for name in reviewer] or None
        target = adjudication.ensure_project(s, source, users)
        result = adjudication.push_for_review(s, dataset, version, target, source)
    console.print(
        f"pushed to {escape(target.name)}: {result.added} records to adjudicate, "
        f"{result.existing} already there"
    )


@adjudicate_app.command("pull")
def pull(
    dataset: DatasetArg,
    project: ProjectOpt,
    version: VersionOpt = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Apply the reviewers' answers: a new version whose decisions name the reviewer."""
    from datamill.annotate import adjudication, service

    database = open_db(db)
    name = adjudication.project_name(project)
    with database.read() as s:
        try:
            target = service.get_project(s, name)
        except service.NotFound:
            raise DatamillError(
                f"no project {name!r}: push the open records first "
                f"(datamill annotate adjudicate push DATASET --project {project})"
            ) from None
        done, n = adjudication.pull_verdicts(s, target, dataset, version)
    if done is None:
        console.print("no reviewer has answered an open record yet; nothing written")
    else:
        console.print(f"version {done.version}: {n} records adjudicated")
