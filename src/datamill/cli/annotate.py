"""``datamill serve`` and ``datamill annotate …``: the annotation app, users, projects, data."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from datamill.cli.common import DatasetArg, VersionOpt, app, console
from datamill.errors import DatamillError, MissingDependency

DEFAULT_DB = "sqlite:///datamill-annotate.sqlite"
ADMIN_ENV = "DATAMILL_ADMIN_PASSWORD"
TOKEN_ENV = "DATAMILL_TOKEN"

annotate_app = typer.Typer(help="Annotation projects: users, projects, push items, pull answers.")
app.add_typer(annotate_app, name="annotate")

DbOpt = Annotated[str, typer.Option("--db", help="Database URL: sqlite:///FILE or postgresql://…")]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help=f"Work through a running server's API (token in ${TOKEN_ENV})."),
]


def say(text: str) -> None:
    console.print(text, soft_wrap=True)  # one line, whatever the width: paths stay whole


def _store() -> Any:
    try:
        from datamill.annotate import db
    except ImportError:
        raise MissingDependency("sqlalchemy", "pip install 'datamill[annotate]'") from None
    return db


def open_db(url: str) -> Any:
    """Connect and bring the schema up to date, saying what was applied."""
    db = _store()
    database = db.connect(url)
    applied = db.migrate(database.engine)
    shown = database.engine.url.render_as_string(hide_password=True)
    if applied:
        say(f"database {escape(shown)}: applied migrations {', '.join(applied)}")
    else:
        say(f"database {escape(shown)}: schema up to date")
    return database


def ensure_admin(database: Any) -> None:
    """On first start, create user ``admin`` with the password from $DATAMILL_ADMIN_PASSWORD,
    or a random one printed once."""
    from sqlalchemy import select

    from datamill.annotate import auth, service
    from datamill.annotate.models import User

    with database.read() as s:
        if s.scalar(select(User.id).where(User.role == "admin").limit(1)) is not None:
            return
    password = os.environ.get(ADMIN_ENV) or secrets.token_urlsafe(12)
    with database.write() as s:
        service.create_user(s, "admin", auth.hash_password(password), "admin")
    if os.environ.get(ADMIN_ENV):
        say(f"created user admin with the password in ${ADMIN_ENV}")
    else:
        say(f"created user admin, password [bold]{password}[/] (shown only this once)")


@app.command()
def serve(
    db: DbOpt = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Server processes (on SQLite one is fastest: see the docs).")
    ] = 1,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark cookies Secure (behind a TLS-terminating proxy).")
    ] = False,
) -> None:
    """Run the annotation web app (migrations are applied on start)."""
    try:
        import uvicorn

        from datamill.annotate.app import create_app
    except ImportError:
        raise MissingDependency("fastapi", "pip install 'datamill[annotate]'") from None
    database = open_db(db)
    ensure_admin(database)
    if workers > 1 and database.is_sqlite:
        say("note: on SQLite one process is fastest; use PostgreSQL to serve from several")
    database.dispose()
    say(f"serving on http://{host}:{port}/ (Ctrl+C stops)")
    if workers > 1:
        os.environ["DATAMILL_DB"] = db
        factory = "datamill.annotate.app:app_from_env"
        uvicorn.run(
            factory, factory=True, host=host, port=port, workers=workers, log_level="warning"
        )
    else:
        application = create_app(db, secure_cookies=secure_cookies, migrate=False)
        uvicorn.run(application, host=host, port=port, log_level="warning")


@annotate_app.command("user")
def add_user(
    username: str,
    role: Annotated[str, typer.Option(help="admin, reviewer or annotator.")] = "annotator",
    expertise: Annotated[list[str], typer.Option(help="Expertise tag (repeat).")] = [],  # noqa: B006
    language: Annotated[list[str], typer.Option(help="Language code (repeat).")] = [],  # noqa: B006
    project: Annotated[list[str], typer.Option(help="Add to this project (repeat).")] = [],  # noqa: B006
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password.")
    ] = "DATAMILL_PASSWORD",
    token: Annotated[bool, typer.Option(help="Also print an API token for the user.")] = False,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Create a user (password from an environment variable, or a random one printed once)."""
    from datamill.annotate import auth, service

    password = os.environ.get(password_env) or secrets.token_urlsafe(12)
    database = open_db(db)
    with database.write() as s:
        user = service.create_user(
            s, username, auth.hash_password(password), role, expertise, language
        )
        for name in project:
            service.add_member(s, service.get_project(s, name), user)
        issued = auth.issue_token(s, user, "cli") if token else None
    shown = "" if os.environ.get(password_env) else f", password [bold]{password}[/]"
    console.print(f"created {role} {escape(username)}{shown}")
    if issued:
        console.print(f"API token: [bold]{issued}[/] (shown only this once)")


def _load(path: Path) -> Any:
    import yaml

    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)


@annotate_app.command("project")
def create_project(
    name: str,
    questions: Annotated[Path, typer.Option(help="Questions: a YAML or JSON list.")],
    guidelines: Annotated[Path | None, typer.Option(help="Guidelines (Markdown file).")] = None,
    overlap: Annotated[int, typer.Option(help="Annotators per item.")] = 1,
    gold_ratio: Annotated[float, typer.Option(help="Share of gold items shown.")] = 0.0,
    expertise: Annotated[list[str], typer.Option(help="Required expertise (repeat).")] = [],  # noqa: B006
    language: Annotated[str | None, typer.Option(help="Language of the items.")] = None,
    member: Annotated[list[str], typer.Option(help="User to add (repeat).")] = [],  # noqa: B006
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Create a project."""
    from datamill.annotate import service

    config = _load(questions)
    text = guidelines.read_text(encoding="utf-8") if guidelines else ""
    database = open_db(db)
    with database.write() as s:
        project = service.create_project(
            s, name, config, text, overlap, expertise, language, gold_ratio
        )
        for username in member:
            service.add_member(s, project, service.get_user(s, username))
    console.print(f"created project {escape(name)} ({len(config)} questions, overlap {overlap})")


@annotate_app.command()
def push(
    dataset: DatasetArg,
    project: Annotated[str, typer.Option(help="Project to add the records to.")],
    version: VersionOpt = None,
    gold: Annotated[Path | None, typer.Option(help="JSON file: record id -> gold answers.")] = None,
    routed: Annotated[
        bool, typer.Option(help="Only what routing sent to humans in this project (k from it).")
    ] = False,
    db: DbOpt = DEFAULT_DB,
    url: UrlOpt = None,
) -> None:
    """Add a dataset version's records to a project as items (pushing twice adds nothing)."""
    gold_answers = _load(gold) if gold else {}
    if url:
        from datamill.annotate.client import Client
        from datamill.store import Dataset

        with Client(url, _token()) as client:
            records = Dataset.open(dataset).records(version)
            if routed:
                from datamill.annotate.exchange import routed_to

                records = filter(routed_to(project), records)
            added = client.push(project, records, gold=gold_answers)
        console.print(f"pushed to {escape(project)}: {added} new items")
        return
    from datamill.annotate import service

    database = open_db(db)
    with database.write() as s:
        target = service.get_project(s, project)
        select = service.routed_to(project) if routed else None
        result = service.push_dataset(s, dataset, version, target, gold=gold_answers, select=select)
    console.print(
        f"pushed to {escape(project)}: {result.added} new items ({result.gold} gold), "
        f"{result.existing} already there"
    )


@annotate_app.command()
def pull(
    project: Annotated[str, typer.Option(help="Project whose answers to pull.")],
    out: Annotated[Path, typer.Option(help="Dataset to write the annotated version to.")],
    version: VersionOpt = None,
    db: DbOpt = DEFAULT_DB,
    url: UrlOpt = None,
) -> None:
    """Write a new version of the dataset with every submitted answer as annotations."""
    if url:
        from datamill.annotate.client import Client

        with Client(url, _token()) as client:
            got = client.pull(project, out, version)
        n, records = got["annotations"], got["annotated"]
        say(f"version {got['version']}: {n} annotations on {records} records")
        return
    from datamill.annotate import service

    database = open_db(db)
    with database.read() as s:
        result = service.pull_to_dataset(s, service.get_project(s, project), out, version)
    console.print(
        f"version {result.version}: {result.annotations} annotations on {result.annotated} "
        f"of {result.records} records"
    )


def _token() -> str:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise DatamillError(f"--url needs an API token in ${TOKEN_ENV}")
    return token
