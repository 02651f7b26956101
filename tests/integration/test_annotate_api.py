"""The annotation JSON API on real SQLite and PostgreSQL: the annotator's loop, roles, export."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from annotate_web import QUESTIONS, answers_for, db_url, records, seed  # noqa: F401

from support import require


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[Any, dict[str, str], str]]:  # noqa: F811
    require("fastapi", "pip install 'datamill[annotate]'")
    from fastapi.testclient import TestClient

    from datamill.annotate.app import create_app

    tokens = seed(db_url)
    with TestClient(create_app(db_url, migrate=False)) as client:
        yield client, tokens, db_url
    client.app.state.db.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def push(client: Any, token: str, n: int = 4, **extra: Any) -> dict[str, Any]:
    body = {"records": [r.model_dump(mode="json") for r in records(n)], **extra}
    r = client.post("/api/projects/p1/items", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def work(client: Any, token: str) -> int:
    """Annotate until nothing is left; returns how many items were submitted."""
    done = 0
    while (r := client.get("/api/projects/p1/next", headers=auth(token))).status_code == 200:
        job = r.json()
        answer = {"answers": answers_for(job), "timing": {"seconds": 30, "typing_seconds": 5}}
        sent = client.post(
            f"/api/assignments/{job['assignment_id']}/submit", json=answer, headers=auth(token)
        )
        assert sent.status_code == 200, sent.text
        done += 1
    assert r.status_code == 204, r.text
    return done


def test_annotators_share_items_up_to_the_overlap_and_reviewers_export(api):
    client, tokens, _ = api
    assert push(client, tokens["root"]) == {"added": 4, "existing": 0, "gold": 0}
    assert push(client, tokens["root"])["existing"] == 4  # pushing again adds nothing

    assert work(client, tokens["alice"]) == 4
    assert work(client, tokens["bob"]) == 4
    assert work(client, tokens["rita"]) == 0  # every item has its two annotators

    progress = client.get("/api/projects/p1/progress", headers=auth(tokens["rita"])).json()
    assert (progress["complete"], progress["responses"]) == (4, 8)
    assert {a["annotator"]: a["submitted"] for a in progress["annotators"]}["alice"] == 4

    r = client.get("/api/projects/p1/responses", headers=auth(tokens["rita"]))
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == 8 and set(Counter(row["record_id"] for row in rows).values()) == {2}
    first = rows[0]
    # Stored in the record's terms: the chosen candidate follows the screen order recorded.
    assert first["answers"]["preference"]["chosen"] == first["display_order"][0]
    assert first["answers"]["rewrite"]["diff"].startswith("--- original")


def test_a_submission_counts_once(api):
    client, tokens, _ = api
    push(client, tokens["root"], 1)
    job = client.get("/api/projects/p1/next", headers=auth(tokens["alice"])).json()
    again = client.get("/api/projects/p1/next", headers=auth(tokens["alice"])).json()
    assert again["assignment_id"] == job["assignment_id"]  # a reload keeps the same lease
    url = f"/api/assignments/{job['assignment_id']}/submit"
    body = {"answers": answers_for(job)}
    assert client.post(url, json=body, headers=auth(tokens["alice"])).status_code == 200
    assert client.post(url, json=body, headers=auth(tokens["alice"])).status_code == 409


def test_annotators_see_only_their_own_work(api):
    client, tokens, _ = api
    gold_id = records(1)[0].id
    gold = {gold_id: {"note": "SECRET-4711"}}
    push(client, tokens["root"], 2, gold=gold)
    alice, bob, eve = (auth(tokens[n]) for n in ("alice", "bob", "eve"))

    assert [p["name"] for p in client.get("/api/projects", headers=eve).json()] == ["p2"]
    assert client.get("/api/projects/p1/next", headers=eve).status_code == 404
    assert client.get("/api/projects/nope/next", headers=eve).status_code == 404

    seen = []
    while (r := client.get("/api/projects/p1/next", headers=alice)).status_code == 200:
        job = r.json()
        assert "SECRET-4711" not in r.text and "gold" not in r.text  # nothing says it is gold
        seen.append(job)
        url = f"/api/assignments/{job['assignment_id']}/submit"
        assert (
            client.post(url, json={"answers": answers_for(job)}, headers=alice).status_code == 200
        )
    assert seen

    bobs = client.get("/api/projects/p1/next", headers=bob).json()
    # Alice cannot act on Bob's lease, nor read anything that is not hers to read.
    url = f"/api/assignments/{bobs['assignment_id']}"
    assert (
        client.post(f"{url}/submit", json={"answers": answers_for(bobs)}, headers=alice).status_code
        == 404
    )
    assert client.post(f"{url}/skip", headers=alice).status_code == 404
    for path in (
        "/api/projects/p1/responses",
        "/api/projects/p1/progress",
        "/api/items/1",
        "/api/users",
    ):
        assert client.get(path, headers=alice).status_code == 403, path
    denied = client.post(
        "/api/users", json={"username": "x", "password": "12345678"}, headers=alice
    )
    assert denied.status_code == 403
    assert (
        client.post("/api/projects/p1/items", json={"records": []}, headers=alice).status_code
        == 403
    )
    assert client.get("/api/me", headers=auth("dm_forged")).status_code == 401
    assert client.get("/api/me").status_code == 401

    item = client.get("/api/items/1", headers=auth(tokens["rita"])).json()
    assert "responses" in item and "gold_answers" in item

    root = auth(tokens["root"])
    off = client.post("/api/users/eve/active", json={"active": False}, headers=root)
    assert off.status_code == 200 and not off.json()["active"]
    assert client.get("/api/me", headers=eve).status_code == 401  # at once, token and all
    too_big = client.post(
        "/api/projects/p1/items", content=b"x", headers={**root, "content-length": str(2**30)}
    )
    assert too_big.status_code == 413


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"quality": {"accuracy": 9, "tone": 5}}, 422, "quality"),
        ({"quality": "great"}, 422, "quality"),
        ({"safety": "<script>"}, 422, "safety"),
        (
            {"claims": [{"message": 1, "start": 0, "end": 10**6, "label": "hallucination"}]},
            422,
            "claims",
        ),
        ({"rewrite": "x" * 60_000}, 422, "rewrite"),
        ({"nonsense": 1}, 422, "nonsense"),
    ],
)
def test_bad_answers_are_refused_with_the_question_named(api, change, status, words):
    client, tokens, _ = api
    push(client, tokens["root"], 1)
    job = client.get("/api/projects/p1/next", headers=auth(tokens["alice"])).json()
    url = f"/api/assignments/{job['assignment_id']}/submit"
    r = client.post(
        url, json={"answers": {**answers_for(job), **change}}, headers=auth(tokens["alice"])
    )
    assert r.status_code == status and words in r.json()["detail"]
    # The lease is still there to answer properly.
    assert (
        client.post(
            url, json={"answers": answers_for(job)}, headers=auth(tokens["alice"])
        ).status_code
        == 200
    )


def test_every_write_is_audited_with_the_client_address(api):
    client, tokens, url = api
    push(client, tokens["root"], 1)
    work(client, tokens["alice"])
    from sqlalchemy import select

    from datamill.annotate import db
    from datamill.annotate.models import AuditLog

    database = db.connect(url)
    with database.read() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action.in_(["push", "submit"]))).all()
    database.dispose()
    assert {r.action for r in rows} == {"push", "submit"}
    assert {r.ip for r in rows} == {"testclient"}


def test_the_api_is_described_by_openapi(api):
    client, _, _ = api
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in (
        "/api/projects/{name}/next",
        "/api/assignments/{assignment_id}/submit",
        "/api/projects/{name}/responses",
    ):
        assert path in paths
    assert set(QUESTIONS[0]) <= {"type", "name", "criteria"}
