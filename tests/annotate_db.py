"""Annotation stores for tests: a fresh SQLite file, or a fresh PostgreSQL schema.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth, database ``test``, or
``DATAMILL_TEST_POSTGRES``); each store gets a uniquely named schema, dropped afterwards, so
parallel runs never see each other's tables. Without the server the test skips, or fails
under CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support import require, skip_or_fail

POSTGRES = os.environ.get("DATAMILL_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def postgres_schema() -> Iterator[tuple[str, dict[str, Any]]]:
    """A new schema on the test server: (url, connect_args putting it first on the path)."""
    psycopg = require("psycopg", "pip install 'datamill[annotate]'")
    schema = f"dm_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRES}: {e}")
        raise
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield POSTGRES, {"options": f"-csearch_path={schema}"}
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def open_store(
    kind: str, tmp_path: Path, migrate: bool = True, **engine_kwargs: Any
) -> Iterator[Any]:
    """A connected (and by default migrated) ``Database`` of the given kind."""
    require("sqlalchemy", "pip install 'datamill[annotate]'")
    from datamill.annotate import db

    if kind == "sqlite":
        with _migrated(db.connect(tmp_path / "annotate.sqlite", **engine_kwargs), migrate) as d:
            yield d
        return
    with postgres_schema() as (url, args):
        database = db.connect(url, connect_args=args, **engine_kwargs)
        with _migrated(database, migrate) as d:
            yield d


@contextmanager
def _migrated(database: Any, migrate: bool) -> Iterator[Any]:
    from datamill.annotate import db

    try:
        if migrate:
            db.migrate(database.engine)
        yield database
    finally:
        database.dispose()
