"""Projects as the annotator's loop reads them: one snapshot per project and database,
kept for the life of the process, with its questions parsed once.

Nothing in datamill changes a project row once it is created (settings, questions and
guidelines are fixed at creation), so a snapshot stays true; whatever comes to edit a
project must call ``forget``. What admins do change while annotators work (members, users,
tokens, items) is read fresh on every call, in the caller's transaction.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamill.annotate import questions as q
from datamill.annotate.models import Project

_COLUMNS = [
    Project.id,
    Project.name,
    Project.guidelines,
    Project.questions,
    Project.overlap,
    Project.required_expertise,
    Project.language,
    Project.gold_ratio,
    Project.lease_seconds,
]


@dataclass(frozen=True)
class ProjectView:
    """A project's settings, as ``models.Project`` has them, plus its parsed questions."""

    id: int
    name: str
    guidelines: str
    questions: list[Any]
    overlap: int
    required_expertise: list[Any]
    language: str | None
    gold_ratio: float
    lease_seconds: int
    parsed: list[q.Question]


# One cache per database: the key is the engine's connection pool, which an engine and
# its option-carrying copies (the SQLite writer) share; it goes when the engine goes.
_caches: weakref.WeakKeyDictionary[Any, dict[Any, ProjectView]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _cache(session: Session) -> dict[Any, ProjectView]:
    pool = session.get_bind().pool
    with _lock:
        return _caches.setdefault(pool, {})


def _load(session: Session, where: Any) -> ProjectView | None:
    row = session.execute(select(*_COLUMNS).where(where)).one_or_none()
    if row is None:
        return None
    return ProjectView(*row, parsed=q.parse_questions(row.questions))


def project_named(session: Session, name: str) -> ProjectView | None:
    """The project called ``name``, or None (which is not cached: it may be created)."""
    cache = _cache(session)
    view = cache.get(name)
    if view is None:
        view = _load(session, Project.name == name)
        if view is not None:
            cache[view.name] = cache[view.id] = view
    return view


def project_by_id(session: Session, project_id: int) -> ProjectView:
    cache = _cache(session)
    view = cache.get(project_id)
    if view is None:
        view = _load(session, Project.id == project_id)
        if view is None:
            raise LookupError(f"no project with id {project_id}")
        cache[view.name] = cache[view.id] = view
    return view


def forget(session: Session) -> None:
    """Drop this database's snapshots (after an edit of a project)."""
    _cache(session).clear()
