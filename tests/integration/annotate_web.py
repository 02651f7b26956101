"""Shared setup of the annotation web tests: databases, a seeded project, a live server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import chat, free_port, require, skip_or_fail, stop

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> **bold**'

QUESTIONS: list[dict[str, Any]] = [
    {"type": "rubric", "name": "quality", "criteria": [{"name": "accuracy"}, {"name": "tone"}]},
    {"type": "pairwise", "name": "preference"},
    {"type": "ranking", "name": "rank"},
    {"type": "edit", "name": "rewrite"},
    {"type": "write", "name": "better", "required": False},
    {"type": "conversation", "name": "dialogue", "required": False},
    {"type": "label", "name": "safety"},
    {"type": "multilabel", "name": "nuance"},
    {"type": "comment", "name": "note"},
    {"type": "span", "name": "claims"},
]


def answers_for(job: dict[str, Any]) -> dict[str, Any]:
    """A valid answer to every required question of QUESTIONS."""
    return {
        "quality": {"accuracy": 4, "tone": 5},
        "preference": {"choice": "A", "strength": 2},
        "rank": list(range(len(job["candidates"]))),
        "rewrite": "A better answer.",
        "safety": "safe",
        "nuance": ["sarcasm"],
        "claims": [{"message": 1, "start": 0, "end": 3, "label": "hallucination"}],
    }


def records(n: int, hostile: bool = False) -> list[Any]:
    """One-turn records with two candidates each (what pairwise and ranking need)."""
    from datamill.records import Candidate

    out = []
    for i in range(n):
        reply = HOSTILE if hostile else f"Answer number {i}, with `code` and *emphasis*."
        second = HOSTILE if hostile else f"Second candidate {i}"
        candidates = [Candidate(content=f"First candidate {i}"), Candidate(content=second)]
        out.append(chat(f"Question {i}?", reply, candidates=candidates))
    return out


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database of its own, dropped afterwards."""
    psycopg = require("psycopg", "pip install 'datamill[annotate]'")
    name = f"dmweb_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        skip_or_fail(f"PostgreSQL is not reachable on 127.0.0.1:5432: {e}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annotate.sqlite'}"
    else:
        with postgres_database() as url:
            yield url


def seed(db_url: str, n_items: int = 4, hostile: bool = False, overlap: int = 2) -> dict[str, str]:
    """Admin, reviewer, two annotators in project ``p1``, one outsider in ``p2``; items pushed
    over the API. Returns each user's API token."""
    require("fastapi", "pip install 'datamill[annotate]'")
    from datamill.annotate import auth, db, service

    database = db.connect(db_url)
    db.migrate(database.engine)
    hashed = auth.hash_password(PASSWORD)  # once: argon2 is slow on purpose
    with database.write() as s:
        admin = service.create_user(s, "root", hashed, "admin")
        tokens = {"root": auth.issue_token(s, admin, "test")}
        for name, role in [
            ("rita", "reviewer"),
            ("alice", "annotator"),
            ("bob", "annotator"),
            ("eve", "annotator"),
        ]:
            user = service.create_user(s, name, hashed, role)
            tokens[name] = auth.issue_token(s, user, "test")
        p1 = service.create_project(s, "p1", QUESTIONS, guidelines=HOSTILE, overlap=overlap)
        p2 = service.create_project(s, "p2", QUESTIONS[:1], guidelines="secret project")
        for name in ("rita", "alice", "bob"):
            service.add_member(s, p1, service.get_user(s, name))
        service.add_member(s, p2, service.get_user(s, "eve"))
    database.dispose()
    return tokens


@contextlib.contextmanager
def live_server(db_url: str, workers: int = 1) -> Iterator[str]:
    """``uvicorn`` serving the app on a free loopback port, in its own process."""
    port = free_port()
    env = {**os.environ, "DATAMILL_DB": db_url}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "datamill.annotate.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("uvicorn did not start in 30 s")
        yield url
    finally:
        stop(proc, 10)
