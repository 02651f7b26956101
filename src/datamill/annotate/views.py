"""The annotator's pages: project list, the annotate page and its form posts.

The annotate page is one server-rendered form; ``static/app.js`` adds the keyboard
shortcuts, gathers the answers as JSON (the shapes of ``questions.py``) and measures time on
item, typing time and pastes, all posted with the session's CSRF token.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datamill.annotate import cache, service
from datamill.annotate.api import Timing, do_skip, do_submit, lease_next
from datamill.annotate.assign import Lease
from datamill.annotate.deps import DB, PageUser, Principal, client_ip
from datamill.annotate.errors import AnswerError
from datamill.annotate.questions import parse_questions
from datamill.annotate.templating import templates

router = APIRouter(include_in_schema=False)
MAX_FORM_JSON = 2_000_000


def page(
    request: Request, who: Principal, template: str, status: int = 200, **ctx: Any
) -> Response:
    ctx.update(user=who.user, csrf=who.csrf)
    return templates.TemplateResponse(request, template, ctx, status_code=status)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DB, who: PageUser) -> Response:
    with db.read() as s:
        projects = service.projects_for_user(s, who.user)
    return page(request, who, "projects.html", projects=projects)


def annotate_page(
    request: Request,
    who: Principal,
    lease: Lease,
    job: dict[str, Any],
    errors: list[str],
    previous: dict[str, Any] | None = None,
) -> Response:
    """The item's form; ``previous`` (answers and telemetry the server refused) fills it in
    again, so that nothing the annotator did is lost."""
    messages = job["messages"]
    last = len(messages) - 1  # spans are marked in the final message, the one under review

    def edit_source(q: Any) -> str:
        """The text an edit starts from: ``q.candidate`` counts in the record's order."""
        if q.candidate is not None and q.candidate in lease.display_order:
            on_screen = lease.display_order.index(q.candidate)
            return str(job["candidates"][on_screen]["content"])
        return str(messages[last].get("content") or "")

    return page(
        request,
        who,
        "annotate.html",
        status=422 if errors else 200,
        job=job,
        candidates=[
            {"label": chr(ord("A") + i), "content": c["content"]}
            for i, c in enumerate(job["candidates"])
        ],
        questions=parse_questions(job["questions"]),
        span_message=last,
        span_text=messages[last].get("content") or "",
        edit_source=edit_source,
        errors=errors,
        previous=previous,
    )


@router.get("/projects/{name}", response_class=HTMLResponse)
def annotate(name: str, request: Request, db: DB, who: PageUser) -> Response:
    with db.write() as s:
        lease = lease_next(s, name, who.user)
        job = service.item_for_annotator(s, lease) if lease else None
    if lease is None or job is None:
        return page(request, who, "done.html", name=name)
    return annotate_page(request, who, lease, job, [])


def _json(raw: str, what: str) -> Any:
    if len(raw) > MAX_FORM_JSON:
        raise HTTPException(413, f"{what} is too large")
    try:
        return json.loads(raw or "{}")
    except json.JSONDecodeError:
        raise HTTPException(400, f"{what} is not JSON") from None


def _timing(telemetry: Any) -> Timing:
    """The page's measurements (app.js) in the API's terms."""
    if not isinstance(telemetry, dict):
        return Timing()
    per = [v for v in (telemetry.get("questions") or {}).values() if isinstance(v, dict)]
    seconds = telemetry.get("seconds")
    return Timing(
        seconds=float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None,
        typing_seconds=sum(float(v.get("typing_ms") or 0) for v in per) / 1000,
        paste_events=sum(int(v.get("pastes") or 0) for v in per),
    )


@router.post("/assignments/{assignment_id}/submit")
def submit(
    assignment_id: int,
    request: Request,
    db: DB,
    who: PageUser,
    answers: Annotated[str, Form()] = "{}",
    telemetry: Annotated[str, Form()] = "{}",
) -> Response:
    values, measured = _json(answers, "answers"), _json(telemetry, "telemetry")
    timing = _timing(measured)
    try:
        with db.write() as s:
            response = do_submit(s, assignment_id, who.user, values, timing, client_ip(request))
            name = cache.project_by_id(s, response.project_id).name
    except AnswerError as e:
        with db.read() as s:
            lease = service.get_assignment(s, assignment_id, who.user)
            job = service.item_for_annotator(s, lease)
        previous = {"answers": values, "telemetry": measured}
        return annotate_page(request, who, lease, job, [str(e)], previous)
    return RedirectResponse(f"/projects/{name}", status_code=303)


@router.post("/assignments/{assignment_id}/skip")
def skip(assignment_id: int, request: Request, db: DB, who: PageUser) -> Response:
    with db.write() as s:
        assignment = do_skip(s, assignment_id, who.user, client_ip(request))
        name = cache.project_by_id(s, assignment.project_id).name
    return RedirectResponse(f"/projects/{name}", status_code=303)
