"""``datamill annotate push --routed``: only what routing sent to humans in the project,
each item with the route's k, directly on the database and through a server's API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from annotate_web import live_server

from support import chat, require

require("fastapi", "pip install 'datamill[annotate]'")

from sqlalchemy import select  # noqa: E402

from datamill.annotate import auth, db, service  # noqa: E402
from datamill.annotate.models import Item  # noqa: E402
from datamill.records import Decision  # noqa: E402
from datamill.store import Dataset  # noqa: E402


def routed_dataset(path: Path) -> tuple[Dataset, list[str]]:
    plans = [("human", "p", 3), ("human", "other", 1), ("accept", "p", 0), ("human", "p", 1)]
    rows = [
        chat(f"Question {i} <script>x</script>?", f"Answer {i}.").with_decision(
            "route",
            Decision(outcome=o, by="policy:t", details={"project": p, "k": k, "priority": 1.0}),
        )
        for i, (o, p, k) in enumerate(plans)
    ]
    dataset = Dataset.create(path)
    dataset.write(rows, stage="route")
    return dataset, [rows[0].id, rows[3].id]


def overlaps(url: str) -> dict[str, int | None]:
    database = db.connect(url)
    with database.read() as s:
        found = {i.record_id: i.overlap for i in s.scalars(select(Item))}
    database.dispose()
    return found


def datamill(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "datamill", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def store(url: str) -> str:
    database = db.connect(url)
    db.migrate(database.engine)
    with database.write() as s:
        service.create_project(s, "p", [{"type": "comment", "name": "note"}], overlap=2)
        admin = service.create_user(s, "root", auth.hash_password("a long password"), "admin")
        token = auth.issue_token(s, admin, "test")
    database.dispose()
    return token


def test_push_routed_on_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    store(url)
    dataset, wanted = routed_dataset(tmp_path / "ds")
    said = datamill("annotate", "push", dataset.path, "--project", "p", "--routed", "--db", url)
    assert "pushed to p: 2 new items" in said
    assert overlaps(url) == {wanted[0]: 3, wanted[1]: 1}


def test_push_routed_through_the_api(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.sqlite'}"
    token = store(url)
    dataset, wanted = routed_dataset(tmp_path / "ds")
    with live_server(url) as server:
        args = ("annotate", "push", dataset.path, "--project", "p", "--routed", "--url", server)
        assert "pushed to p: 2 new items" in datamill(*args, env={"DATAMILL_TOKEN": token})
    assert overlaps(url) == {wanted[0]: 3, wanted[1]: 1}
