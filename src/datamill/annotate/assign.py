"""Who annotates what: next item, submit, skip, lease expiry.

Run each call inside ``Database.write()``: on SQLite that is a ``BEGIN IMMEDIATE``
transaction, so assignment is serialised by the database lock; on PostgreSQL the candidate
item is taken with ``SELECT … FOR NO KEY UPDATE SKIP LOCKED``, so concurrent annotators
never wait on, nor double-count, the same item.

Overlap is kept with a counter, ``items.n_active`` (live leases + submissions), changed only
under the item's row lock; an item with ``n_active >= overlap`` is never leased. An item's
own ``overlap`` (routing's k for that record) wins over the project's. Expired
leases are swept (marked ``expired``, their slot released) before each lease. Gold items
are honeypots: every member may meet each one once, whatever the overlap, at the project's
``gold_ratio`` of the items they are given.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from datamill.annotate import questions as q
from datamill.annotate.audit import audit
from datamill.annotate.errors import Conflict, Forbidden
from datamill.annotate.models import (
    Assignment,
    Item,
    ItemExpertise,
    Project,
    ProjectMember,
    Response,
    User,
    utc_now,
)
from datamill.annotate.signals import Timing, quality_flags


def _member(session: Session, project: Project, user: User) -> None:
    """Check the user may annotate in the project; lock their membership row (PostgreSQL)
    so that two requests of the same user cannot both lease."""
    if not user.active:
        raise Forbidden(f"user {user.username!r} is inactive")
    member = session.scalar(
        select(ProjectMember)
        .where(ProjectMember.project_id == project.id, ProjectMember.user_id == user.id)
        .with_for_update()
    )
    if member is None:
        raise Forbidden(f"user {user.username!r} is not a member of project {project.name!r}")
    missing = sorted(set(project.required_expertise) - set(user.expertise))
    if missing:
        raise Forbidden(f"project {project.name!r} needs expertise {', '.join(missing)}")


def expire_leases(session: Session, project_id: int, now: datetime) -> int:
    """Mark leases past their time as expired and give their slots back; return how many."""
    stale = (
        select(Assignment.id)
        .where(
            Assignment.project_id == project_id,
            Assignment.state == "leased",
            Assignment.expires_at <= now,
        )
        .order_by(Assignment.id)
        .with_for_update(skip_locked=True)
    )
    items = session.scalars(
        update(Assignment)
        .where(Assignment.id.in_(stale))
        .values(state="expired")
        .returning(Assignment.item_id)
        .execution_options(synchronize_session=False)
    ).all()
    for item_id, n in sorted(Counter(items).items()):  # one lock order: no deadlocks
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(n_active=Item.n_active - n)
            .execution_options(synchronize_session=False)
        )
    if items:
        session.expire_all()
    return len(items)


def _want_gold(session: Session, project: Project, user: User) -> bool:
    if project.gold_ratio <= 0:
        return False
    seen, gold = session.execute(
        select(func.count(), func.count().filter(Assignment.is_gold)).where(
            Assignment.user_id == user.id,
            Assignment.project_id == project.id,
            Assignment.state != "expired",
        )
    ).one()
    return math.floor(project.gold_ratio * (seen + 1) + 1e-9) > gold


def _pick(session: Session, project: Project, user: User, gold: bool) -> Item | None:
    seen = exists().where(
        Assignment.item_id == Item.id,
        Assignment.user_id == user.id,
        Assignment.state != "expired",
    )
    lacking = exists().where(
        ItemExpertise.item_id == Item.id, ItemExpertise.tag.not_in(user.expertise)
    )
    query = select(Item).where(Item.project_id == project.id, Item.is_gold == gold, ~seen, ~lacking)
    if not gold:
        query = query.where(Item.n_active < func.coalesce(Item.overlap, project.overlap))
    if user.languages:
        query = query.where(or_(Item.language.is_(None), Item.language.in_(user.languages)))
    query = query.order_by(Item.priority.desc(), Item.id).limit(1)
    return session.scalar(query.with_for_update(skip_locked=True, key_share=True))


def next_item(
    session: Session,
    project: Project,
    user: User,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Assignment | None:
    """The user's live lease in the project if they have one, else a new lease on the best
    item for them; None when nothing is left for them."""
    now = now or utc_now()
    _member(session, project, user)
    own = session.scalar(
        select(Assignment)
        .where(
            Assignment.user_id == user.id,
            Assignment.project_id == project.id,
            Assignment.state == "leased",
            Assignment.expires_at > now,
        )
        .order_by(Assignment.id)
        .limit(1)
    )
    if own is not None:
        return own
    expire_leases(session, project.id, now)
    want_gold = _want_gold(session, project, user)
    item = _pick(session, project, user, gold=want_gold)
    if item is None and project.gold_ratio > 0:
        item = _pick(session, project, user, gold=not want_gold)
    if item is None:
        return None
    order = list(range(len(item.payload.get("candidates", []))))
    (rng or random).shuffle(order)
    expires = now + timedelta(seconds=project.lease_seconds)
    assignment = session.scalar(
        select(Assignment).where(Assignment.item_id == item.id, Assignment.user_id == user.id)
    )
    if assignment is None:  # else: the user's own expired lease on it, taken up again
        assignment = Assignment(item_id=item.id, user_id=user.id, project_id=project.id)
        session.add(assignment)
    assignment.state, assignment.leased_at, assignment.expires_at = "leased", now, expires
    assignment.display_order, assignment.is_gold = order, item.is_gold
    item.n_active = Item.n_active + 1
    session.flush()
    return assignment


def _locked(session: Session, model: type[Any], id_: int) -> Any:
    query = select(model).where(model.id == id_).with_for_update(key_share=True)
    return session.scalars(query.execution_options(populate_existing=True)).one()


def _lock(session: Session, assignment: Assignment) -> tuple[Assignment, Item, Project]:
    """The assignment and its item, re-read under row locks (assignment first, then item)."""
    fresh = _locked(session, Assignment, assignment.id)
    item = _locked(session, Item, fresh.item_id)
    return fresh, item, session.get_one(Project, fresh.project_id)


def _take_back(assignment: Assignment, item: Item, project: Project) -> None:
    """Make an expired lease live again if its slot is still free; else refuse."""
    if assignment.state == "leased":
        return  # live, or past its time but not swept: its slot is still counted
    if assignment.state == "submitted":
        raise Conflict(f"assignment {assignment.id} is already submitted")
    if assignment.state == "skipped":
        raise Conflict(f"assignment {assignment.id} was skipped")
    if not item.is_gold and item.n_active >= (item.overlap or project.overlap):
        raise Conflict(
            f"the lease on assignment {assignment.id} expired and the item went to another "
            "annotator; take the next item"
        )
    item.n_active += 1
    assignment.state = "leased"


def submit(
    session: Session,
    assignment: Assignment,
    answers: object,
    timing: Timing,
    now: datetime | None = None,
    ip: str | None = None,
) -> Response:
    """Validate and store the answers of a leased assignment, with quality flags and an
    audit row, in the caller's transaction."""
    now = now or utc_now()
    assignment, item, project = _lock(session, assignment)
    _take_back(assignment, item, project)
    questions = q.parse_questions(project.questions)
    view = q.View.of(item.payload, assignment.display_order)
    stored = q.validate_answers(questions, answers, view)
    flags = quality_flags(questions, stored, view, timing)
    if (
        item.is_gold
        and item.gold_answers
        and not q.matches_gold(questions, stored, item.gold_answers)
    ):
        flags.append("gold_mismatch")
    assignment.state = "submitted"
    item.n_submitted += 1
    response = Response(
        assignment_id=assignment.id,
        item_id=item.id,
        user_id=assignment.user_id,
        project_id=project.id,
        answers=stored,
        seconds=timing.seconds,
        typing_seconds=timing.typing_seconds,
        paste_events=timing.paste_events,
        flags=flags,
        flagged=bool(flags),
        created_at=now,
    )
    session.add(response)
    audit(
        session,
        assignment.user_id,
        "submit",
        f"assignment:{assignment.id}",
        {"flags": flags},
        ip,
        now,
    )
    session.flush()
    return response


def skip(
    session: Session, assignment: Assignment, now: datetime | None = None, ip: str | None = None
) -> Assignment:
    """Give the item back unanswered; the user is not offered it again."""
    now = now or utc_now()
    assignment, item, _ = _lock(session, assignment)
    if assignment.state in {"submitted", "skipped"}:
        raise Conflict(f"assignment {assignment.id} is already {assignment.state}")
    if assignment.state == "leased":
        item.n_active -= 1
    assignment.state = "skipped"
    audit(session, assignment.user_id, "skip", f"assignment:{assignment.id}", None, ip, now)
    session.flush()
    return assignment
