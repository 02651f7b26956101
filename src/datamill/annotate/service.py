"""What the web layer and the CLI call. Each function works in the caller's transaction
(``Database.write()`` for writes, ``Database.read()`` for reads) and adds an audit row for
every write it makes, with the acting user and the client address passed in.

Users and projects (projects.py)
    create_user, get_user, set_user_active, create_project, get_project, add_member,
    remove_member, projects_for_user
Items, as each role may see them (this module)
    get_assignment          an assignment of this user, or NotFound
    item_for_annotator      what an annotator is shown: no gold, no other responses
    item_for_reviewer       everything: gold answers and every response (reviewer, admin)
    progress, annotator_progress        the admin dashboard
Assignment (assign.py)
    next_item, submit, skip, Timing, expire_leases
Data in and out (exchange.py)
    push_dataset, push_records, pull_to_dataset, routed_to
Errors (errors.py): NotFound, Forbidden, Conflict, AnswerError -> 404, 403, 409, 422.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from datamill.annotate.assign import (
    Lease,
    Timing,
    expire_leases,
    get_lease,
    next_item,
    skip,
    submit,
)
from datamill.annotate.cache import project_by_id
from datamill.annotate.errors import AnnotateError, NotFound
from datamill.annotate.exchange import BATCH, pull_to_dataset, push_dataset, push_records, routed_to
from datamill.annotate.models import (
    Assignment,
    Item,
    Project,
    ProjectMember,
    Response,
    User,
)
from datamill.annotate.projects import (
    add_member,
    can_see,
    create_project,
    create_user,
    get_project,
    get_user,
    projects_for_user,
    remove_member,
    set_user_active,
)
from datamill.annotate.rows import shown_response

__all__ = [
    "BATCH",
    "AnnotateError",
    "Timing",
    "add_member",
    "annotator_progress",
    "create_project",
    "create_user",
    "expire_leases",
    "get_assignment",
    "get_project",
    "get_user",
    "item_for_annotator",
    "item_for_reviewer",
    "next_item",
    "progress",
    "projects_for_user",
    "pull_to_dataset",
    "push_dataset",
    "push_records",
    "remove_member",
    "routed_to",
    "set_user_active",
    "skip",
    "submit",
]


_SHOWN = select(Item.payload, Item.language).where(Item.id == bindparam("item"))


def get_assignment(session: Session, assignment_id: int, user: User) -> Lease:
    """The user's own assignment; someone else's is NotFound, as if it did not exist."""
    return get_lease(session, assignment_id, user.id)


def item_for_annotator(
    session: Session, assignment: Lease, reviewer: bool | None = None
) -> dict[str, Any]:
    """What the annotator of ``assignment`` is shown: the conversation, the candidates in
    this assignment's screen order, the questions and guidelines. No gold answers, no
    other responses, nothing that says whether the item is gold, and no candidate's model.
    An adjudication item (``adjudication.py``) also has its earlier answers, under
    ``review``, shown to reviewers and admins only (``reviewer``: whether the annotator is
    one; looked up when not given)."""
    shown = getattr(assignment, "shown", None)
    if shown is None:
        shown = session.execute(_SHOWN, {"item": assignment.item_id}).one()
    payload, language = shown
    project = project_by_id(session, assignment.project_id)
    if reviewer is None:
        role = session.scalar(select(User.role).where(User.id == assignment.user_id))
        reviewer = role in {"reviewer", "admin"}
    candidates = payload.get("candidates", [])
    return {
        "assignment_id": assignment.id,
        "project": project.name,
        "guidelines": project.guidelines,
        "questions": project.questions,
        "state": assignment.state,
        "expires_at": assignment.expires_at.isoformat(),
        "messages": payload["messages"],
        "candidates": [{"content": candidates[i]["content"]} for i in assignment.display_order],
        "task": payload.get("task"),
        "domain": payload.get("domain"),
        "language": language,
        "review": payload.get("review") if reviewer else None,
    }


def item_for_reviewer(session: Session, item_id: int, user: User) -> dict[str, Any]:
    """Everything about an item, for reviewers and admins of its project."""
    item = session.get(Item, item_id)
    if item is None or user.role not in {"reviewer", "admin"}:
        raise NotFound(f"no item {item_id}")
    project = session.get_one(Project, item.project_id)
    if not can_see(session, project, user):
        raise NotFound(f"no item {item_id}")
    rows = session.execute(
        select(Response, User.username, Assignment.display_order)
        .join(User, User.id == Response.user_id)
        .join(Assignment, Assignment.id == Response.assignment_id)
        .where(Response.item_id == item.id)
        .order_by(Response.id)
    )
    return {
        "item_id": item.id,
        "project": project.name,
        "record_id": item.record_id,
        "payload": item.payload,
        "priority": item.priority,
        "is_gold": item.is_gold,
        "gold_answers": item.gold_answers,
        "responses": [shown_response(r, username, order) for r, username, order in rows],
    }


def progress(session: Session, project: Project) -> dict[str, int]:
    """Items, gold items, items done (k submissions), responses and flagged responses."""
    items = session.execute(
        select(
            func.count(),
            func.count().filter(Item.is_gold),
            func.count().filter(
                Item.n_submitted >= func.coalesce(Item.overlap, project.overlap), ~Item.is_gold
            ),
            func.coalesce(func.sum(Item.n_submitted), 0),
        ).where(Item.project_id == project.id)
    ).one()
    flagged = session.scalar(
        select(func.count()).where(Response.project_id == project.id, Response.flagged)
    )
    return {
        "items": items[0],
        "gold_items": items[1],
        "complete": items[2],
        "responses": items[3],
        "flagged": flagged or 0,
    }


def annotator_progress(session: Session, project: Project) -> list[dict[str, Any]]:
    """Per member: submitted, skipped, leased, time spent, flagged responses."""
    state = Assignment.state
    rows = session.execute(
        select(
            User.username,
            func.count(Assignment.id).filter(state == "submitted"),
            func.count(Assignment.id).filter(state == "skipped"),
            func.count(Assignment.id).filter(state == "leased"),
        )
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .outerjoin(
            Assignment,
            (Assignment.user_id == User.id) & (Assignment.project_id == project.id),
        )
        .where(ProjectMember.project_id == project.id)
        .group_by(User.username)
        .order_by(User.username)
    ).all()
    times = {
        username: (seconds or 0.0, flagged or 0)
        for username, seconds, flagged in session.execute(
            select(
                User.username,
                func.sum(Response.seconds),
                func.count().filter(Response.flagged),
            )
            .join(User, User.id == Response.user_id)
            .where(Response.project_id == project.id)
            .group_by(User.username)
        )
    }
    return [
        {
            "annotator": username,
            "submitted": submitted,
            "skipped": skipped,
            "leased": leased,
            "seconds": times.get(username, (0.0, 0))[0],
            "flagged": times.get(username, (0.0, 0))[1],
        }
        for username, submitted, skipped, leased in rows
    ]
