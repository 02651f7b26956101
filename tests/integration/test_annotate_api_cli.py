"""``datamill serve`` and ``datamill annotate``: first start, push over the API, annotate with
the Python client, pull the answers back into the dataset."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from annotate_web import QUESTIONS, answers_for, records

from support import free_port, require

ADMIN_PASSWORD = "first-start-password"


def datamill(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "datamill", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_serve_push_annotate_pull(tmp_path: Path):
    require("fastapi", "pip install 'datamill[annotate]'")
    from datamill.annotate.client import ApiError, Client
    from datamill.store import Dataset

    db = f"sqlite:///{tmp_path / 'a.sqlite'}"
    data = tmp_path / "data"
    Dataset.create(data).write(records(3), stage="import")
    questions = tmp_path / "questions.yaml"
    questions.write_text(yaml.safe_dump(QUESTIONS))

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "datamill", "serve", "--db", db, "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DATAMILL_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(3)]
        assert "applied migrations 0001" in lines[0], lines
        assert "created user admin" in lines[1] and ADMIN_PASSWORD not in "".join(lines)
        assert "serving on" in lines[2]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                root = Client.login(url, "admin", ADMIN_PASSWORD)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        with root:
            root.create_project("qa", questions=QUESTIONS, overlap=1)
            root.create_user("ann", "annotator-pass", expertise=["clinician"])
            root.add_member("qa", "ann")
            out = datamill(
                "annotate", "push", str(data), "--project", "qa", "--url", url,
                env={"DATAMILL_TOKEN": root.create_token("admin")},
            )  # fmt: skip
            assert "3 new items" in out
            with Client.login(url, "ann", "annotator-pass") as ann:
                while job := ann.next_item("qa"):
                    ann.submit(job["assignment_id"], answers_for(job), {"seconds": 20})
                try:
                    list(ann.responses("qa"))
                    raise AssertionError("an annotator read the export")
                except ApiError as e:
                    assert e.status == 403
            assert len(list(root.responses("qa"))) == 3
            over_api = root.pull("qa", data)
            assert (over_api["annotated"], over_api["annotations"]) == (3, 21)
            again = datamill(
                "annotate", "pull", "--project", "qa", "--out", str(data), "--url", url,
                env={"DATAMILL_TOKEN": root.create_token("admin")},
            )  # fmt: skip
            assert "0 annotations" in again  # already pulled into this lineage
    finally:
        server.terminate()
        server.wait(10)

    direct = Dataset.open(data)
    by_api = list(direct.records())
    out = datamill(
        "annotate", "pull", "--project", "qa", "--out", str(data), "--version", "1", "--db", db
    )
    assert "on 3 of 3 records" in out
    pulled = list(direct.records())
    # The API's pull and the database's pull write the same annotations.
    assert [[a.model_dump() for a in r.annotations] for r in pulled] == [
        [a.model_dump() for a in r.annotations] for r in by_api
    ]
    assert all(
        {a.question for a in r.annotations} >= {"quality", "preference", "rewrite"} for r in pulled
    )
    assert {a.annotator for r in pulled for a in r.annotations} == {"ann"}
