"""Connecting to the annotation store and keeping its schema current.

SQLite (the default, one file) runs in WAL mode with a busy timeout and foreign keys on;
write transactions start with ``BEGIN IMMEDIATE`` so that two writers queue for the lock
instead of one failing halfway when it tries to upgrade a read lock. PostgreSQL is reached
through psycopg 3; ``postgresql://`` URLs are normalised to ``postgresql+psycopg://``.

Callers own transactions::

    db = connect("sqlite:///datamill-annotate.sqlite")
    migrate(db.engine)
    with db.write() as session:       # BEGIN IMMEDIATE on SQLite; commits on exit
        service.create_project(session, ...)
    with db.read() as session:        # a plain (deferred) transaction
        service.progress(session, ...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from datamill.errors import DatamillError

DEFAULT_URL = "sqlite:///datamill-annotate.sqlite"
BUSY_TIMEOUT_MS = 30_000


class StoreError(DatamillError):
    """The annotation database cannot be used as it is (unreachable, too new, bad URL)."""


def normalise_url(url: str | Path) -> URL:
    """A SQLAlchemy URL: a bare path is a SQLite file, postgres URLs use psycopg 3."""
    text = str(url)
    if "://" not in text:
        text = f"sqlite:///{text}"
    try:
        parsed = make_url(text)
    except Exception as e:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreError(f"not a database URL: {text!r} ({e})") from None
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise StoreError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return parsed


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]  # deferred transactions: reads
    write_sessions: sessionmaker[Session]  # BEGIN IMMEDIATE on SQLite

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A short write transaction, committed on a clean exit and rolled back otherwise."""
        with self.write_sessions.begin() as session:
            yield session

    def warm(self, n: int) -> None:
        """Open ``n`` pooled connections now, so that no request waits for one to open
        (on PostgreSQL that starts a server process: tens of milliseconds)."""
        connections = [self.engine.connect() for _ in range(n)]
        for connection in connections:
            connection.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_events(engine: Engine) -> None:
    # pysqlite's own transaction handling issues BEGIN lazily and never IMMEDIATE; turn it
    # off and begin ourselves (the recipe in SQLAlchemy's SQLite dialect documentation).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def connect(url: str | Path = DEFAULT_URL, **engine_kwargs: Any) -> Database:
    """Open the store at ``url`` (a SQLAlchemy URL or a SQLite file path); no schema changes."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs.setdefault("connect_args", {"timeout": BUSY_TIMEOUT_MS / 1000})
        engine_kwargs["connect_args"].setdefault("check_same_thread", False)
        engine = create_engine(parsed, **engine_kwargs)
        _sqlite_events(engine)
        writer = engine.execution_options(sqlite_immediate=True)
    else:
        engine_kwargs.setdefault("pool_pre_ping", True)
        try:
            engine = create_engine(parsed, **engine_kwargs)
        except ImportError:
            from datamill.errors import MissingDependency

            raise MissingDependency("psycopg", "pip install 'datamill[annotate]'") from None
        writer = engine
    return Database(
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        write_sessions=sessionmaker(writer, expire_on_commit=False),
    )


def migrations_path() -> str:
    return str(resources.files("datamill.annotate") / "migrations")


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations_path())
    config.attributes["applied"] = []
    return config


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _known(script: Any, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def migrate(engine: Engine) -> list[str]:
    """Bring the schema to the newest revision; return the revisions applied, oldest first.

    A database whose revision this code does not know (written by a newer datamill) is
    refused rather than touched.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config(engine)
    script = ScriptDirectory.from_config(config)
    current = current_revision(engine)
    if current is not None and not _known(script, current):
        raise StoreError(
            f"{engine.url.render_as_string(hide_password=True)}: schema revision {current!r} "
            f"is newer than this datamill knows (newest {script.get_current_head()!r}); "
            "upgrade datamill"
        )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return list(config.attributes["applied"])
