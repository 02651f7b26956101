"""The JSON API of administration and review: users, tokens, projects, items, export.

Admins manage users, projects and items; reviewers (and admins) read progress, every
response and gold answers. Annotators get 403 here, whatever the project.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from datamill.annotate import auth, service
from datamill.annotate.audit import audit
from datamill.annotate.deps import DB, ApiAdmin, ApiReviewer, client_ip
from datamill.annotate.models import Assignment, Item, Response, User
from datamill.annotate.rows import response_row
from datamill.records import Record

router = APIRouter(prefix="/api", tags=["admin"])


class NewUser(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(min_length=8, max_length=1000)
    role: str = "annotator"
    expertise: list[str] = Field(default_factory=list, max_length=50)
    languages: list[str] = Field(default_factory=list, max_length=50)


class UserInfo(BaseModel):
    username: str
    role: str
    expertise: list[str]
    languages: list[str]
    active: bool


class NewProject(BaseModel):
    name: str = Field(max_length=100)
    questions: list[dict[str, Any]]
    guidelines: str = ""
    overlap: int = 1
    required_expertise: list[str] = Field(default_factory=list)
    language: str | None = None
    gold_ratio: float = 0.0
    lease_seconds: int = 1800


class Member(BaseModel):
    username: str = Field(max_length=64)


class Active(BaseModel):
    active: bool


class Items(BaseModel):
    records: list[Record] = Field(max_length=10_000)
    gold: dict[str, dict[str, Any]] = Field(default_factory=dict)  # record id -> gold answers
    priority: int = 0


def _info(u: User) -> UserInfo:
    return UserInfo(
        username=u.username,
        role=u.role,
        expertise=u.expertise,
        languages=u.languages,
        active=u.active,
    )


@router.get("/users")
def users(db: DB, who: ApiAdmin) -> list[UserInfo]:
    with db.read() as s:
        return [_info(u) for u in s.scalars(select(User).order_by(User.username))]


@router.post("/users", status_code=201)
def create_user(body: NewUser, db: DB, who: ApiAdmin, request: Request) -> UserInfo:
    password_hash = auth.hash_password(body.password)
    with db.write() as s:
        user = service.create_user(
            s,
            body.username,
            password_hash,
            body.role,
            body.expertise,
            body.languages,
            actor=who.user,
            ip=client_ip(request),
        )
        return _info(user)


@router.post("/users/{username}/tokens", status_code=201)
def create_token(username: str, db: DB, who: ApiAdmin, request: Request) -> dict[str, str]:
    """An API token for a user (shown once; the server keeps only its hash)."""
    with db.write() as s:
        user = service.get_user(s, username)
        token = auth.issue_token(s, user, f"by {who.user.username}")
        audit(s, who.user.id, "token.create", f"user:{username}", ip=client_ip(request))
    return {"token": token}


@router.post("/users/{username}/active")
def set_active(username: str, body: Active, db: DB, who: ApiAdmin, request: Request) -> UserInfo:
    """Deactivate (or reactivate) a user: their sessions and tokens stop working at once."""
    with db.write() as s:
        user = service.get_user(s, username)
        service.set_user_active(s, user, body.active, actor=who.user, ip=client_ip(request))
        return _info(user)


@router.post("/projects", status_code=201)
def create_project(body: NewProject, db: DB, who: ApiAdmin, request: Request) -> dict[str, str]:
    with db.write() as s:
        project = service.create_project(
            s, **body.model_dump(), actor=who.user, ip=client_ip(request)
        )
        return {"name": project.name}


@router.post("/projects/{name}/members")
def add_member(name: str, body: Member, db: DB, who: ApiAdmin, request: Request) -> dict[str, str]:
    with db.write() as s:
        project = service.get_project(s, name)
        user = service.get_user(s, body.username)
        service.add_member(s, project, user, actor=who.user, ip=client_ip(request))
    return {"project": name, "username": user.username}


@router.post("/projects/{name}/items")
def push_items(name: str, body: Items, db: DB, who: ApiAdmin, request: Request) -> dict[str, int]:
    """Add records as items; a record already in the project is left as it is."""
    size = service.BATCH
    batches = (body.records[i : i + size] for i in range(0, len(body.records), size))
    with db.write() as s:
        project = service.get_project(s, name)
        result = service.push_records(
            s,
            batches,
            project,
            gold=body.gold,
            priority=body.priority,
            actor=who.user,
            ip=client_ip(request),
            source={"via": "api"},
        )
    return {"added": result.added, "existing": result.existing, "gold": result.gold}


@router.get("/projects/{name}/progress")
def progress(name: str, db: DB, who: ApiReviewer) -> dict[str, Any]:
    with db.read() as s:
        project = service.get_project(s, name, who.user)
        return {
            **service.progress(s, project),
            "annotators": service.annotator_progress(s, project),
        }


@router.get("/items/{item_id}")
def review_item(item_id: int, db: DB, who: ApiReviewer) -> dict[str, Any]:
    """An item with its gold answers and every response to it."""
    with db.read() as s:
        return service.item_for_reviewer(s, item_id, who.user)


@router.get(
    "/projects/{name}/responses",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export(name: str, db: DB, who: ApiReviewer) -> StreamingResponse:
    """Every submitted response of the project, one JSON object a line, oldest first."""
    with db.read() as s:
        project = service.get_project(s, name, who.user)

    def lines() -> Iterator[bytes]:
        query = (
            select(Response, Item.record_id, Item.is_gold, User.username, Assignment.display_order)
            .join(Item, Item.id == Response.item_id)
            .join(User, User.id == Response.user_id)
            .join(Assignment, Assignment.id == Response.assignment_id)
            .where(Response.project_id == project.id)
            .order_by(Response.id)
            .execution_options(yield_per=1000)
        )
        with db.read() as s:
            for row in s.execute(query):
                yield json.dumps(response_row(*row), ensure_ascii=False).encode() + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
