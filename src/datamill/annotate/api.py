"""The JSON API of the annotator's loop: who am I, my projects, next item, submit, skip.

Administration (users, projects, items, export) is in ``api_admin.py``; store errors become
404/403/409/422 answers in ``app.py``. The schema is served at ``/api/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from datamill.annotate import assign, cache, service, slowlog
from datamill.annotate.auth import Caller
from datamill.annotate.deps import DB, ApiCaller, ApiUser, client_ip
from datamill.annotate.errors import NotAMember, NotFound
from datamill.annotate.models import utc_now

router = APIRouter(prefix="/api", tags=["annotate"])


class Me(BaseModel):
    username: str
    role: str
    expertise: list[str]
    languages: list[str]


class ProjectInfo(BaseModel):
    name: str
    guidelines: str
    questions: list[dict[str, Any]]
    overlap: int


class Job(BaseModel):
    """One leased item as its annotator sees it; candidates are in this lease's screen order."""

    assignment_id: int
    project: str
    guidelines: str
    questions: list[dict[str, Any]]
    state: str
    expires_at: str
    messages: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    task: str | None = None
    domain: str | None = None
    language: str | None = None
    review: dict[str, Any] | None = None  # adjudication items, for reviewers: earlier answers


class Timing(BaseModel):
    """What the client measured. The server never counts more time than the lease has lived."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    seconds: float | None = Field(default=None, ge=0)
    typing_seconds: float = Field(default=0.0, ge=0, le=7 * 86400)
    paste_events: int = Field(default=0, ge=0, le=100_000)


class Submission(BaseModel):
    answers: dict[str, Any]
    timing: Timing = Field(default_factory=Timing)


class Receipt(BaseModel):
    response_id: int
    flags: list[str]


@router.get("/me")
def me(who: ApiUser) -> Me:
    u = who.user
    return Me(username=u.username, role=u.role, expertise=u.expertise, languages=u.languages)


@router.get("/projects")
def projects(db: DB, who: ApiUser) -> list[ProjectInfo]:
    with db.read() as s:
        return [
            ProjectInfo(
                name=p.name, guidelines=p.guidelines, questions=p.questions, overlap=p.overlap
            )
            for p in service.projects_for_user(s, who.user)
        ]


def lease_next(s: Session, name: str, user: Caller) -> assign.Lease | None:
    """The user's lease in project ``name``; a project they may not see is NotFound."""
    project = cache.project_named(s, name)
    if project is None:
        raise NotFound(f"no project {name!r}")
    try:
        return assign.next_item(s, project, user, utc_now())
    except NotAMember:
        if user.role != "admin":
            raise NotFound(f"no project {name!r}") from None  # as if it did not exist
        raise


@router.get(
    "/projects/{name}/next",
    responses={204: {"description": "nothing is left for you in this project"}},
)
def next_item(name: str, db: DB, caller: ApiCaller) -> Job:
    """Lease the next item (the same one again while your lease on it lives)."""
    phases = slowlog.Phases.start(caller.arrived)
    slowlog.mark(phases, "thread")
    with db.write() as s:
        s.connection()
        slowlog.mark(phases, "conn")
        who = caller.check(s)
        slowlog.mark(phases, "auth")
        lease = lease_next(s, name, who.user)
        slowlog.mark(phases, "lease")
        if lease is None:
            return Response(status_code=204)  # type: ignore[return-value]
        reviewer = who.user.role in {"reviewer", "admin"}
        job = Job(**service.item_for_annotator(s, lease, reviewer))
        slowlog.mark(phases, "job")
    slowlog.mark(phases, "commit")
    slowlog.report(phases, "next")
    return job


def do_submit(
    s: Session,
    assignment_id: int,
    user: Caller,
    answers: Any,
    timing: Timing,
    ip: str | None,
    phases: slowlog.Phases | None = None,
) -> assign.Submitted:
    lease, item = assign.lock(s, assignment_id, user.id)
    slowlog.mark(phases, "lock")
    now = utc_now()
    lived = max(0.0, (now - lease.leased_at).total_seconds())
    seconds = lived if timing.seconds is None else min(timing.seconds, lived)
    measured = assign.Timing(
        seconds=seconds,
        typing_seconds=min(timing.typing_seconds, seconds),
        paste_events=timing.paste_events,
    )
    return assign.submit_locked(s, lease, item, answers, measured, now=now, ip=ip)


@router.post("/assignments/{assignment_id}/submit")
def submit(
    assignment_id: int, body: Submission, db: DB, caller: ApiCaller, request: Request
) -> Receipt:
    """Answer a leased item; answers are checked against the project's questions."""
    phases = slowlog.Phases.start(caller.arrived)
    slowlog.mark(phases, "thread")
    ip = client_ip(request)
    with db.write() as s:
        s.connection()
        slowlog.mark(phases, "conn")
        who = caller.check(s)
        slowlog.mark(phases, "auth")
        r = do_submit(s, assignment_id, who.user, body.answers, body.timing, ip, phases)
        slowlog.mark(phases, "stmts")
    slowlog.mark(phases, "commit")
    slowlog.report(phases, "submit")
    return Receipt(response_id=r.id, flags=list(r.flags))


def do_skip(s: Session, assignment_id: int, user: Caller, ip: str | None) -> assign.Lease:
    assignment = service.get_assignment(s, assignment_id, user)
    return assign.skip(s, assignment, now=utc_now(), ip=ip)


@router.post("/assignments/{assignment_id}/skip")
def skip(assignment_id: int, db: DB, caller: ApiCaller, request: Request) -> dict[str, bool]:
    """Give the item back unanswered; you are not offered it again."""
    with db.write() as s:
        do_skip(s, assignment_id, caller.check(s).user, client_ip(request))
    return {"skipped": True}
