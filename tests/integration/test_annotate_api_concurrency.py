"""50 annotators at once through the HTTP API of a real server, on SQLite and PostgreSQL:
no item goes past its overlap and every accepted submission is stored."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from annotate_web import answers_for, db_url, live_server, records, seed  # noqa: F401

ANNOTATORS = 50
ITEMS = 30
OVERLAP = 3


async def annotate(http: aiohttp.ClientSession, url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    while True:
        async with http.get(f"{url}/api/projects/p1/next", headers=headers) as r:
            if r.status == 204:
                return done
            assert r.status == 200, await r.text()
            job = await r.json()
        submit = f"{url}/api/assignments/{job['assignment_id']}/submit"
        async with http.post(submit, json={"answers": answers_for(job)}, headers=headers) as r:
            assert r.status == 200, await r.text()
            done += 1


async def crowd(url: str, tokens: list[str]) -> list[int]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        return await asyncio.gather(*(annotate(http, url, t) for t in tokens))


@pytest.mark.slow
def test_fifty_annotators_at_once_keep_the_overlap(db_url):  # noqa: F811
    from sqlalchemy import func, select

    from datamill.annotate import auth, db, service
    from datamill.annotate.models import Response

    tokens = seed(db_url, overlap=OVERLAP)
    database = db.connect(db_url)
    with database.write() as s:
        project = service.get_project(s, "p1")
        hashed = auth.hash_password("crowd member")
        crowd_tokens = []
        for i in range(ANNOTATORS):
            user = service.create_user(s, f"c{i}", hashed, "annotator")
            service.add_member(s, project, user)
            crowd_tokens.append(auth.issue_token(s, user, "test"))
    with live_server(db_url, workers=2) as url:
        from datamill.annotate.client import Client

        with Client(url, tokens["root"]) as root:
            assert root.push("p1", records(ITEMS)) == ITEMS
        done = asyncio.run(crowd(url, crowd_tokens))
    assert sum(done) == ITEMS * OVERLAP  # every item got exactly its k answers
    with database.read() as s:
        per_item = select(Response.item_id, func.count().label("n")).group_by(Response.item_id)
        counts = [n for _, n in s.execute(per_item)]
    database.dispose()
    assert len(counts) == ITEMS and set(counts) == {OVERLAP}
