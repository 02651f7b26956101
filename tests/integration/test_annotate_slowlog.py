"""The slow-request log: per-phase timings of the annotator's next and submit."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from annotate_web import answers_for, db_url, records, seed  # noqa: F401

from support import require


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[Any, dict[str, str]]]:  # noqa: F811
    require("fastapi", "pip install 'datamill[annotate]'")
    from fastapi.testclient import TestClient

    from datamill.annotate.app import create_app

    tokens = seed(db_url)
    with TestClient(create_app(db_url, migrate=False)) as client:
        body = {"records": [r.model_dump(mode="json") for r in records(2)]}
        pushed = client.post(
            "/api/projects/p1/items",
            json=body,
            headers={"Authorization": f"Bearer {tokens['root']}"},
        )
        assert pushed.status_code == 200, pushed.text
        yield client, tokens
    client.app.state.db.dispose()


def phases(line: str) -> list[str]:
    return re.findall(r"(\w+)=\d+\.\d", line)


def test_slow_requests_are_logged_with_their_phases(api, monkeypatch, caplog):
    from datamill.annotate import slowlog

    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens['alice']}"}
    monkeypatch.setattr(slowlog, "THRESHOLD_MS", 0.0)  # every request is slow
    with caplog.at_level(logging.WARNING, logger="datamill.annotate.slow"):
        job = client.get("/api/projects/p1/next", headers=headers).json()
        body = {"answers": answers_for(job)}
        sent = client.post(
            f"/api/assignments/{job['assignment_id']}/submit", json=body, headers=headers
        )
        assert sent.status_code == 200, sent.text
    lines = [r.getMessage() for r in caplog.records]
    next_line = next(line for line in lines if " slow next " in line)
    submit_line = next(line for line in lines if " slow submit " in line)
    assert phases(next_line) == ["thread", "conn", "auth", "lease", "job", "commit", "done"]
    assert phases(submit_line) == [
        "thread", "conn", "auth", "lock", "stmts", "commit", "done"
    ]  # fmt: skip


def test_nothing_is_logged_under_the_threshold_or_when_off(api, monkeypatch, caplog):
    from datamill.annotate import slowlog

    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens['alice']}"}
    with caplog.at_level(logging.WARNING, logger="datamill.annotate.slow"):
        monkeypatch.setattr(slowlog, "THRESHOLD_MS", None)
        assert client.get("/api/projects/p1/next", headers=headers).status_code == 200
        monkeypatch.setattr(slowlog, "THRESHOLD_MS", 60_000.0)
        assert client.get("/api/projects/p1/next", headers=headers).status_code == 200
    assert not caplog.records


def test_a_threshold_that_is_not_a_number_is_refused(monkeypatch):
    from datamill.annotate import slowlog

    monkeypatch.setenv("DATAMILL_SLOW_MS", "fast")
    with pytest.raises(ValueError, match="DATAMILL_SLOW_MS must be a number"):
        slowlog._threshold()
    monkeypatch.setenv("DATAMILL_SLOW_MS", "25")
    assert slowlog._threshold() == 25.0
