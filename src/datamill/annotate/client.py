"""A small Python client for the annotation app's JSON API (what the CLI's push/pull use).

Example::

    from datamill.annotate.client import Client
    c = Client.login("http://127.0.0.1:8000", "alice", "secret")
    job = c.next_item("helpfulness")
    if job:
        c.submit(job["assignment_id"], {"quality": {"accuracy": 4}})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

from datamill.annotate.rows import as_annotations
from datamill.errors import DatamillError
from datamill.records import Record

JSON = dict[str, Any]


class ApiError(DatamillError):
    """The server refused a request; the message carries its status and reason."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class Client:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    @classmethod
    def login(cls, base_url: str, username: str, password: str, name: str = "client") -> Client:
        """Exchange a user name and password for an API token."""
        with httpx.Client(base_url=base_url.rstrip("/"), timeout=30.0) as http:
            answer = _check(
                http.post(
                    "/api/auth/token",
                    json={"username": username, "password": password, "name": name},
                )
            )
        return cls(base_url, answer["token"])

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        return _check(self.http.get(path, params=params or None))

    def _post(self, path: str, body: Any = None) -> Any:
        return _check(self.http.post(path, json=body if body is not None else {}))

    # --- who and what ------------------------------------------------------------------------
    def me(self) -> JSON:
        return self._get("/api/me")

    def projects(self) -> list[JSON]:
        return self._get("/api/projects")

    def create_project(self, name: str, **config: Any) -> JSON:
        return self._post("/api/projects", {"name": name, **config})

    def add_member(self, project: str, username: str) -> JSON:
        return self._post(f"/api/projects/{project}/members", {"username": username})

    def create_user(
        self, username: str, password: str, role: str = "annotator", **extra: Any
    ) -> JSON:
        return self._post(
            "/api/users", {"username": username, "password": password, "role": role, **extra}
        )

    def create_token(self, username: str, name: str = "api") -> str:
        return self._post(f"/api/users/{username}/tokens", {"name": name})["token"]

    # --- items in, answers out ---------------------------------------------------------------
    def push(
        self,
        project: str,
        records: Iterable[Record],
        *,
        gold: dict[str, JSON] | None = None,
        batch: int = 500,
    ) -> int:
        """Send records as items in batches; returns how many were new. ``gold`` maps record
        ids to their gold answers."""
        added = 0
        it: Iterator[Record] = iter(records)
        while chunk := list(islice(it, batch)):
            ids = {r.id for r in chunk}
            body = {
                "records": [r.model_dump(mode="json") for r in chunk],
                "gold": {k: v for k, v in (gold or {}).items() if k in ids},
            }
            added += self._post(f"/api/projects/{project}/items", body)["added"]
        return added

    def responses(self, project: str) -> Iterator[JSON]:
        """Every submitted response of the project (reviewers and admins)."""
        with self.http.stream("GET", f"/api/projects/{project}/responses") as r:
            if not r.is_success:
                r.read()
                _check(r)
            for line in r.iter_lines():
                if line:
                    yield json.loads(line)

    def pull(self, project: str, dataset_dir: str | Path, version: int | None = None) -> JSON:
        """Write a new version of the dataset whose records carry the project's responses as
        annotations, like ``datamill annotate pull --db`` (same stage, same metadata). A
        response already pulled into this lineage is not added twice; a response whose
        record is not in the version stops the pull before anything is written."""
        from datamill.store import Dataset

        rows: dict[str, list[JSON]] = {}
        for row in self.responses(project):
            rows.setdefault(row["record_id"], []).append(row)
        dataset = Dataset.open(dataset_dir)
        parent = dataset.version(version).version
        missing = set(rows) - {r.id for r in dataset.records(parent)}
        if missing:
            raise DatamillError(
                f"{dataset.path} version {parent}: {len(missing)} records with responses in "
                f"project {project!r} are not in this version (e.g. {min(missing)}); "
                "nothing written"
            )
        questions = next(p["questions"] for p in self.projects() if p["name"] == project)
        params = {"project": project, "api": str(self.http.base_url), "questions": questions}
        annotated = annotations = 0
        with dataset.writer("annotate", params, parent=parent) as w:
            for record in dataset.records(parent):
                new = as_annotations(project, rows.get(record.id, []), record)
                if new:
                    record = record.model_copy(update={"annotations": [*record.annotations, *new]})
                    annotated += 1
                    annotations += len(new)
                w.write(record)
        assert w.committed is not None
        return {"version": w.committed.version, "annotated": annotated, "annotations": annotations}

    def progress(self, project: str) -> JSON:
        return self._get(f"/api/projects/{project}/progress")

    # --- the annotator's loop ----------------------------------------------------------------
    def next_item(self, project: str) -> JSON | None:
        """The next assignment, or None when nothing is left for this user."""
        r = self.http.get(f"/api/projects/{project}/next")
        return None if r.status_code == 204 else _check(r)

    def submit(self, assignment_id: int, answers: JSON, timing: JSON | None = None) -> JSON:
        """``timing``: seconds, typing_seconds, paste_events (seconds default: the lease age)."""
        body = {"answers": answers, "timing": timing or {}}
        return self._post(f"/api/assignments/{assignment_id}/submit", body)

    def skip(self, assignment_id: int) -> JSON:
        return self._post(f"/api/assignments/{assignment_id}/skip")


def _check(r: httpx.Response) -> Any:
    if r.is_success:
        return r.json()
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text
    raise ApiError(r.status_code, detail)
