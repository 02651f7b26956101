"""The pages of admins and reviewers: the dashboard and every answer to each item."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from datamill.annotate import service
from datamill.annotate.deps import DB, PageUser, Principal
from datamill.annotate.models import Item, Project, User
from datamill.annotate.models import Response as Answer
from datamill.annotate.views import page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


def _require(who: Principal, *roles: str) -> None:
    if who.user.role not in roles:
        raise HTTPException(403, f"for {' and '.join(roles)} only")


@router.get("/admin", response_class=HTMLResponse)
def dashboard(request: Request, db: DB, who: PageUser) -> Response:
    """Progress by project and annotator, and the latest flagged responses."""
    _require(who, "admin")
    with db.read() as s:
        projects = [
            (p, service.progress(s, p), service.annotator_progress(s, p))
            for p in service.projects_for_user(s, who.user)
        ]
        flagged = s.execute(
            select(Answer, User.username, Project.name)
            .join(User, User.id == Answer.user_id)
            .join(Project, Project.id == Answer.project_id)
            .where(Answer.flagged)
            .order_by(Answer.id.desc())
            .limit(50)
        ).all()
    return page(request, who, "admin.html", projects=projects, flagged=flagged)


@router.get("/projects/{name}/review", response_class=HTMLResponse)
def review(name: str, request: Request, db: DB, who: PageUser, start: int = 0) -> Response:
    """Items of a project with every response, gold answers and flags, PAGE_SIZE at a time."""
    _require(who, "admin", "reviewer")
    with db.read() as s:
        project = service.get_project(s, name, who.user)
        ids = s.scalars(
            select(Item.id)
            .where(Item.project_id == project.id)
            .order_by(Item.id)
            .offset(max(0, start))
            .limit(PAGE_SIZE + 1)
        ).all()
        items = [service.item_for_reviewer(s, i, who.user) for i in ids[:PAGE_SIZE]]
    more = start + PAGE_SIZE if len(ids) > PAGE_SIZE else None
    return page(request, who, "review.html", project=project, items=items, start=start, more=more)
