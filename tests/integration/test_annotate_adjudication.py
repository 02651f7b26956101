"""Adjudication in the app: records resolve left open go to the reviewers of
``P-adjudication``, whose page and API show what each annotator answered (escaped; never to
annotators), and whose answers come back as decisions naming the reviewer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from annotate_web import HOSTILE, PASSWORD, db_url  # noqa: F401

from support import chat, require

require("fastapi", "pip install 'datamill[annotate]'")

from fastapi.testclient import TestClient  # noqa: E402

from datamill.annotate import adjudication, auth, db, service  # noqa: E402
from datamill.annotate.app import create_app  # noqa: E402
from datamill.annotate.models import Item  # noqa: E402
from datamill.records import Candidate  # noqa: E402
from datamill.resolve import resolve_dataset  # noqa: E402
from datamill.store import Dataset  # noqa: E402

QUESTIONS = [{"type": "pairwise", "name": "pref"}, {"type": "comment", "name": "note"}]


def annotated(db_url: str, tmp_path: Path) -> tuple[Any, Dataset, dict[str, str]]:  # noqa: F811
    """Project p, two annotators who disagree on record 0 and agree on record 1, pulled and
    resolved; a reviewer and an annotator with API tokens."""
    database = db.connect(db_url)
    db.migrate(database.engine)
    rows = [
        chat(
            f"Question {i}?",
            f"Answer {i}.",
            candidates=[Candidate(content=HOSTILE), Candidate(content=f"Plain candidate {i}")],
        )
        for i in range(2)
    ]
    dataset = Dataset.create(tmp_path / "ds")
    dataset.write(rows, stage="import")
    hashed = auth.hash_password(PASSWORD)
    tokens = {}
    with database.write() as s:
        project = service.create_project(s, "p", QUESTIONS, overlap=2)
        for name, role in [("ann", "annotator"), ("ben", "annotator"), ("rita", "reviewer")]:
            user = service.create_user(s, name, hashed, role)
            tokens[name] = auth.issue_token(s, user, "test")
            if role == "annotator":
                service.add_member(s, project, user)
        service.push_dataset(s, dataset.path, None, project)
    for name in ("ann", "ben"):
        for _ in rows:
            with database.write() as s:
                lease = service.next_item(s, service.get_project(s, "p"), service.get_user(s, name))
                item = s.get_one(Item, lease.item_id)
                want = 1 if (name == "ben" and item.record_id == rows[0].id) else 0
                chosen = "AB"[lease.display_order.index(want)]
                answers = {"pref": {"choice": chosen}, "note": f"{name} says {HOSTILE}"}
                service.submit(s, lease, answers, service.Timing(seconds=30))
    with database.read() as s:
        service.pull_to_dataset(s, service.get_project(s, "p"), dataset.path)
    summary = resolve_dataset(dataset)
    assert (summary.resolved, summary.adjudicate) == (1, 1)
    return database, dataset, tokens


def test_reviewers_settle_what_resolve_left_open(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    database, dataset, tokens = annotated(db_url, tmp_path)
    resolved = dataset.versions[-1].version
    open_id = next(
        r.id for r in dataset.records() if r.decisions["resolve"].outcome == "adjudicate"
    )
    with database.write() as s:
        target = adjudication.ensure_project(s, service.get_project(s, "p"))
        assert (target.name, target.overlap) == ("p-adjudication", 1)
        assert not any(q["required"] for q in target.questions)
        first = adjudication.push_for_review(s, dataset.path, None, target)
    with database.write() as s:
        again = adjudication.push_for_review(s, dataset.path, None, target)
        service.add_member(s, target, service.get_user(s, "ann"))  # even as a member…
    assert (first.added, again.added) == (1, 0)

    app = create_app(db_url, migrate=False)
    try:
        with TestClient(app) as api:
            bearer = {"Authorization": f"Bearer {tokens['ann']}"}
            job = api.get("/api/projects/p-adjudication/next", headers=bearer).json()
            assert job["review"] is None  # …an annotator never sees the earlier answers
            api.post(f"/api/assignments/{job['assignment_id']}/skip", headers=bearer)
            page = reviewer_page(app)
            assert "Adjudicate: pref" in page and "ann says" in page and "ben says" in page
            assert "<script>" not in page and "&lt;script&gt;" in page
            bearer = {"Authorization": f"Bearer {tokens['rita']}"}
            job = api.get("/api/projects/p-adjudication/next", headers=bearer).json()
            review = job["review"]
            assert review["open"] == ["pref"] and "pref" in review["reason"]
            shown = {row["annotator"]: row["answers"]["pref"] for row in review["earlier"]}
            assert shown == {"ann": f"prefers: {HOSTILE}", "ben": "prefers: Plain candidate 0"}
            texts = [c["content"] for c in job["candidates"]]
            answer = {"pref": {"choice": "AB"[texts.index("Plain candidate 0")]}}
            submitted = api.post(
                f"/api/assignments/{job['assignment_id']}/submit",
                headers=bearer,
                json={"answers": answer},
            )
            assert submitted.status_code == 200, submitted.text
    finally:
        app.state.db.dispose()

    with database.read() as s:
        version, n = adjudication.pull_verdicts(s, target, dataset.path)
    assert version is not None and n == 1 and version.parent == resolved
    decisions = {r.id: r.decisions["resolve"] for r in dataset.records(version.version)}
    assert (decisions[open_id].outcome, decisions[open_id].by) == ("adjudicated", "reviewer:rita")
    assert decisions[open_id].details["questions"]["pref"]["value"]["chosen"] == 1
    with database.read() as s:  # nothing is waiting any more: nothing to write
        assert adjudication.pull_verdicts(s, target, dataset.path) == (None, 0)
    database.dispose()


def reviewer_page(app: Any) -> str:
    """The annotate page of p-adjudication as rita sees it in a browser session."""
    with TestClient(app, follow_redirects=False) as browser:
        login = browser.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login)[1]  # type: ignore[index]
        form = {"username": "rita", "password": PASSWORD, "csrf": csrf}
        assert browser.post("/login", data=form).status_code == 303
        page = browser.get("/projects/p-adjudication")
        assert page.status_code == 200, page.text[:300]
        return page.text


def test_an_empty_or_foreign_review_answer_settles_nothing(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    database, dataset, _ = annotated(db_url, tmp_path)
    with database.write() as s:
        target = adjudication.ensure_project(s, service.get_project(s, "p"))
        adjudication.push_for_review(s, dataset.path, None, target)
        rita = service.get_user(s, "rita")
        lease = service.next_item(s, target, rita)
        service.submit(s, lease, {"note": "not sure"}, service.Timing(seconds=5))
    with database.read() as s:
        # the reviewer answered only the comment, not the open pairwise question
        assert adjudication.pull_verdicts(s, target, dataset.path) == (None, 0)
    database.dispose()


def datamill(*args: str | Path, code: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "datamill", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    return " ".join((done.stdout + done.stderr).split())


def test_the_command_line_pushes_open_records_and_pulls_verdicts(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    database, dataset, _ = annotated(db_url, tmp_path)
    where = ("--project", "p", "--db", db_url)
    early = datamill("annotate", "adjudicate", "pull", dataset.path, *where, code=1)
    assert "error: no project 'p-adjudication': push the open records first" in early
    assert "pushed to p-adjudication: 1 records to adjudicate, 0 already there" in datamill(
        "annotate", "adjudicate", "push", dataset.path, *where
    )
    nothing = datamill("annotate", "adjudicate", "pull", dataset.path, *where)
    assert "no reviewer has answered an open record yet; nothing written" in nothing
    with database.write() as s:
        target = service.get_project(s, "p-adjudication")
        lease = service.next_item(s, target, service.get_user(s, "rita"))
        answer = {"pref": {"choice": "A"}}
        service.submit(s, lease, answer, service.Timing(seconds=5))
    database.dispose()
    resolved = dataset.versions[-1].version
    pulled = datamill("annotate", "adjudicate", "pull", dataset.path, *where)
    assert f"version {resolved + 1}: 1 records adjudicated" in pulled
    last = Dataset.open(dataset.path).versions[-1]
    assert last.stage == "adjudicate" and last.counts["adjudicated"] == 1


def test_an_experts_dispute_goes_to_a_reviewer_with_that_expertise(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from sqlalchemy import insert, select

    from datamill.annotate.models import ItemExpertise

    database, dataset, _ = annotated(db_url, tmp_path)
    open_id = next(r.id for r in dataset.records() if adjudication.waiting(r))
    with database.write() as s:
        source = service.get_project(s, "p")
        item = s.scalar(select(Item).where(Item.project_id == source.id, Item.record_id == open_id))
        s.execute(insert(ItemExpertise), [{"item_id": item.id, "tag": "clinician"}])
        doc = service.create_user(s, "doc", "h", "reviewer", expertise=["clinician"])
        target = adjudication.ensure_project(s, source)
        for _ in range(2):  # twice: nothing is added the second time
            adjudication.push_for_review(s, dataset.path, None, target, source)
        tags = s.scalars(select(ItemExpertise.tag).join(Item).where(Item.project_id == target.id))
        assert list(tags) == ["clinician"]
    with database.write() as s:
        assert service.next_item(s, target, service.get_user(s, "rita")) is None
        assert service.next_item(s, target, doc) is not None
    database.dispose()
