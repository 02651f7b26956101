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

These calls are the annotator's loop, so they speak SQLAlchemy Core (a handful of
statements each, no ORM objects) and read projects through ``cache.py``. They return plain
snapshots: ``Lease`` (an assignment row) and ``Submitted`` (a response row).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datamill.annotate import questions as q
from datamill.annotate.audit import audit
from datamill.annotate.auth import Caller
from datamill.annotate.cache import ProjectView, project_by_id
from datamill.annotate.errors import Conflict, Forbidden, NotAMember, NotFound
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

A, I = Assignment.__table__, Item.__table__  # noqa: E741
LEASE_COLUMNS = [
    A.c.id,
    A.c.item_id,
    A.c.user_id,
    A.c.project_id,
    A.c.state,
    A.c.leased_at,
    A.c.expires_at,
    A.c.display_order,
    A.c.is_gold,
]


# Statements built once: building one costs several times what running it does.
P = bindparam
_MEMBER = (
    select(ProjectMember.user_id)
    .where(ProjectMember.project_id == P("project"), ProjectMember.user_id == P("user"))
    .with_for_update()
)
_OWN = (
    select(*LEASE_COLUMNS)
    .where(
        A.c.user_id == P("user"),
        A.c.project_id == P("project"),
        A.c.state == "leased",
        A.c.expires_at > P("now"),
    )
    .order_by(A.c.id)
    .limit(1)
)
_STALE = (
    select(A.c.id)
    .where(A.c.project_id == P("project"), A.c.state == "leased", A.c.expires_at <= P("now"))
    .order_by(A.c.id)
    .with_for_update(skip_locked=True)
)
_EXPIRE = update(A).where(A.c.id.in_(_STALE)).values(state="expired").returning(A.c.item_id)
_RELEASE = update(I).where(I.c.id == P("item")).values(n_active=I.c.n_active - P("n"))
_SEEN = select(func.count(), func.count().filter(A.c.is_gold)).where(
    A.c.user_id == P("user"), A.c.project_id == P("project"), A.c.state != "expired"
)
_TAKE = update(I).where(I.c.id == P("item")).values(n_active=I.c.n_active + 1)
_LEASE = select(*LEASE_COLUMNS).where(A.c.id == P("id"))
_LOCK_LEASE = _LEASE.with_for_update(key_share=True)
_LOCK_ITEM = (
    select(I.c.id, I.c.payload, I.c.is_gold, I.c.gold_answers, I.c.overlap, I.c.n_active)
    .where(I.c.id == P("item"))
    .with_for_update(key_share=True)
)
_SET_STATE = update(A).where(A.c.id == P("assignment")).values(state=P("new_state"))
_ANSWERED = (
    update(I)
    .where(I.c.id == P("item"))
    .values(n_active=I.c.n_active + P("taken"), n_submitted=I.c.n_submitted + 1)
)
_RESPOND = Response.__table__.insert().returning(Response.__table__.c.id)


@functools.cache
def _pick_query(gold: bool, languages: bool) -> Any:
    """The next-item query: the best item of the project the user has not met, needs no
    expertise they lack, is in one of their languages and (unless gold) has a free slot."""
    seen = exists().where(A.c.item_id == I.c.id, A.c.user_id == P("user"), A.c.state != "expired")
    lacking = exists().where(
        ItemExpertise.item_id == I.c.id,
        ItemExpertise.tag.not_in(P("expertise", expanding=True)),
    )
    query = select(I.c.id, I.c.payload, I.c.is_gold, I.c.language).where(
        I.c.project_id == P("project"), I.c.is_gold == gold
    )
    if not gold:
        query = query.where(I.c.n_active < func.coalesce(I.c.overlap, P("overlap")))
    query = query.where(~seen, ~lacking)
    if languages:
        query = query.where(
            or_(I.c.language.is_(None), I.c.language.in_(P("languages", expanding=True)))
        )
    query = query.order_by(I.c.priority.desc(), I.c.id).limit(1)
    return query.with_for_update(skip_locked=True, key_share=True)


@dataclass(frozen=True)
class Lease:
    """An assignment as it was read: who has which item of which project, until when."""

    id: int
    item_id: int
    user_id: int
    project_id: int
    state: str
    leased_at: datetime
    expires_at: datetime
    display_order: list[int]
    is_gold: bool
    # The item's payload and language, when the lease was read with them (a new lease).
    shown: tuple[dict[str, Any], str | None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Submitted:
    """A stored response: what ``submit`` returns."""

    id: int
    assignment_id: int
    item_id: int
    project_id: int
    answers: dict[str, Any]
    flags: list[str]


def _member(session: Session, project: Project | ProjectView, user: User | Caller) -> None:
    """Check the user may annotate in the project; lock their membership row (PostgreSQL)
    so that two requests of the same user cannot both lease."""
    if not user.active:
        raise Forbidden(f"user {user.username!r} is inactive")
    member = session.execute(_MEMBER, {"project": project.id, "user": user.id}).first()
    if member is None:
        raise NotAMember(f"user {user.username!r} is not a member of project {project.name!r}")
    missing = sorted(set(project.required_expertise) - set(user.expertise))
    if missing:
        raise Forbidden(f"project {project.name!r} needs expertise {', '.join(missing)}")


def expire_leases(session: Session, project_id: int, now: datetime) -> int:
    """Mark leases past their time as expired and give their slots back; return how many."""
    items = session.execute(_EXPIRE, {"project": project_id, "now": now}).scalars().all()
    for item_id, n in sorted(Counter(items).items()):  # one lock order: no deadlocks
        session.execute(_RELEASE, {"item": item_id, "n": n})
    if items:
        session.expire_all()  # ORM objects the caller holds may count the old slots
    return len(items)


def _want_gold(session: Session, project: Project | ProjectView, user: User | Caller) -> bool:
    if project.gold_ratio <= 0:
        return False
    seen, gold = session.execute(_SEEN, {"user": user.id, "project": project.id}).one()
    return math.floor(project.gold_ratio * (seen + 1) + 1e-9) > gold


def _pick(
    session: Session, project: Project | ProjectView, user: User | Caller, gold: bool
) -> Any | None:
    """The best item for the user (id, payload, is_gold, language), row-locked."""
    params = {
        "user": user.id,
        "project": project.id,
        "expertise": list(user.expertise),
        "overlap": project.overlap,
        "languages": list(user.languages),
    }
    return session.execute(_pick_query(gold, bool(user.languages)), params).first()


def own_lease(session: Session, project_id: int, user_id: int, now: datetime) -> Lease | None:
    """The user's live lease in the project, if any."""
    row = session.execute(_OWN, {"user": user_id, "project": project_id, "now": now}).first()
    return Lease(*row) if row is not None else None


LEASED = ("state", "leased_at", "expires_at", "display_order", "is_gold")


@functools.cache
def _upsert(dialect: str) -> Any:
    """A new lease, or the user's own expired lease on the item taken up again."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(A)
    again = {c: insert.excluded[c] for c in LEASED}
    upsert = insert.on_conflict_do_update(index_elements=["item_id", "user_id"], set_=again)
    return upsert.returning(A.c.id)


def next_item(
    session: Session,
    project: Project | ProjectView,
    user: User | Caller,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Lease | None:
    """The user's live lease in the project if they have one, else a new lease on the best
    item for them; None when nothing is left for them."""
    now = now or utc_now()
    _member(session, project, user)
    own = own_lease(session, project.id, user.id, now)
    if own is not None:
        return own
    expire_leases(session, project.id, now)
    want_gold = _want_gold(session, project, user)
    picked = _pick(session, project, user, gold=want_gold)
    if picked is None and project.gold_ratio > 0:
        picked = _pick(session, project, user, gold=not want_gold)
    if picked is None:
        return None
    item_id, payload, is_gold, language = picked
    order = list(range(len(payload.get("candidates", []))))
    (rng or random).shuffle(order)
    expires = now + timedelta(seconds=project.lease_seconds)
    row = {"item_id": item_id, "user_id": user.id, "project_id": project.id, "state": "leased"}
    row.update(leased_at=now, expires_at=expires, display_order=order, is_gold=is_gold)
    upsert = _upsert(session.get_bind().dialect.name)
    assignment_id = session.execute(upsert, row).scalar_one()
    session.execute(_TAKE, {"item": item_id})
    lease = (assignment_id, item_id, user.id, project.id, "leased", now, expires, order, is_gold)
    return Lease(*lease, shown=(payload, language))


def _own(row: Any, assignment_id: int, user_id: int | None) -> Lease:
    """The lease of an assignment row, if it is there and (with ``user_id``) that user's."""
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFound(f"no assignment {assignment_id}")
    return Lease(*row)


def get_lease(session: Session, assignment_id: int, user_id: int | None = None) -> Lease:
    """An assignment; with ``user_id``, only that user's (another's is NotFound, as if it
    did not exist)."""
    return _own(session.execute(_LEASE, {"id": assignment_id}).first(), assignment_id, user_id)


def lock(session: Session, assignment_id: int, user_id: int | None = None) -> tuple[Lease, Any]:
    """The assignment and its item, read under row locks (assignment first, then item);
    with ``user_id``, only that user's (another's is NotFound, as if it did not exist)."""
    row = session.execute(_LOCK_LEASE, {"id": assignment_id}).first()
    fresh = _own(row, assignment_id, user_id)
    item = session.execute(_LOCK_ITEM, {"item": fresh.item_id}).one()
    return fresh, item


def _take_back(assignment: Lease, item: Any, project: ProjectView) -> int:
    """Make an expired lease live again if its slot is still free (1: the slot it takes
    again), else refuse; 0 for a live lease."""
    if assignment.state == "leased":
        return 0  # live, or past its time but not swept: its slot is still counted
    if assignment.state == "submitted":
        raise Conflict(f"assignment {assignment.id} is already submitted")
    if assignment.state == "skipped":
        raise Conflict(f"assignment {assignment.id} was skipped")
    if not item.is_gold and item.n_active >= (item.overlap or project.overlap):
        raise Conflict(
            f"the lease on assignment {assignment.id} expired and the item went to another "
            "annotator; take the next item"
        )
    return 1


def submit(
    session: Session,
    assignment: Any,
    answers: object,
    timing: Timing,
    now: datetime | None = None,
    ip: str | None = None,
) -> Submitted:
    """Validate and store the answers of a leased assignment (anything with its ``id``),
    with quality flags and an audit row, in the caller's transaction."""
    lease, item = lock(session, assignment.id)
    return submit_locked(session, lease, item, answers, timing, now, ip)


def submit_locked(
    session: Session,
    lease: Lease,
    item: Any,
    answers: object,
    timing: Timing,
    now: datetime | None = None,
    ip: str | None = None,
) -> Submitted:
    """``submit`` for an assignment and item as ``lock`` returned them in this transaction."""
    now = now or utc_now()
    project = project_by_id(session, lease.project_id)
    taken = _take_back(lease, item, project)
    view = q.View.of(item.payload, lease.display_order)
    stored = q.validate_answers(project.parsed, answers, view)
    flags = quality_flags(project.parsed, stored, view, timing)
    if (
        item.is_gold
        and item.gold_answers
        and not q.matches_gold(project.parsed, stored, item.gold_answers)
    ):
        flags.append("gold_mismatch")
    session.execute(_SET_STATE, {"assignment": lease.id, "new_state": "submitted"})
    session.execute(_ANSWERED, {"item": item.id, "taken": taken})
    response = {
        "assignment_id": lease.id,
        "item_id": item.id,
        "user_id": lease.user_id,
        "project_id": project.id,
        "answers": stored,
        "seconds": timing.seconds,
        "typing_seconds": timing.typing_seconds,
        "paste_events": timing.paste_events,
        "flags": flags,
        "flagged": bool(flags),
        "created_at": now,
    }
    response_id = session.execute(_RESPOND, response).scalar_one()
    audit(session, lease.user_id, "submit", f"assignment:{lease.id}", {"flags": flags}, ip, now)
    return Submitted(response_id, lease.id, item.id, project.id, stored, flags)


def skip(
    session: Session, assignment: Any, now: datetime | None = None, ip: str | None = None
) -> Lease:
    """Give the item back unanswered; the user is not offered it again."""
    now = now or utc_now()
    lease, item = lock(session, assignment.id)
    if lease.state in {"submitted", "skipped"}:
        raise Conflict(f"assignment {lease.id} is already {lease.state}")
    session.execute(_SET_STATE, {"assignment": lease.id, "new_state": "skipped"})
    if lease.state == "leased":
        session.execute(_RELEASE, {"item": item.id, "n": 1})
    audit(session, lease.user_id, "skip", f"assignment:{lease.id}", None, ip, now)
    return dataclasses.replace(lease, state="skipped")
