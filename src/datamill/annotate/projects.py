"""Users, projects and who belongs to which. Writes are audited with the acting user and the
client address; names and tags are checked by ``names.py``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamill.annotate import names
from datamill.annotate import questions as q
from datamill.annotate.audit import audit
from datamill.annotate.errors import AnnotateError, Conflict, NotFound
from datamill.annotate.models import ROLES, Project, ProjectMember, User


def create_user(
    session: Session,
    username: str,
    password_hash: str,
    role: str = "annotator",
    expertise: Iterable[str] = (),
    languages: Iterable[str] = (),
    actor: User | None = None,
    ip: str | None = None,
) -> User:
    """A new user; ``password_hash`` comes from ``auth.hash_password``."""
    names.name("user name", username)
    if role not in ROLES:
        raise AnnotateError(f"role {role!r}: one of {', '.join(ROLES)}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=password_hash,
        role=role,
        expertise=names.tags("expertise", expertise),
        languages=names.tags("language", languages),
    )
    session.add(user)
    session.flush()
    details = {"role": role, "expertise": user.expertise, "languages": user.languages}
    audit(session, actor.id if actor else None, "user.create", f"user:{username}", details, ip)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def set_user_active(
    session: Session, user: User, active: bool, actor: User | None = None, ip: str | None = None
) -> None:
    user.active = active
    target = f"user:{user.username}"
    audit(session, actor.id if actor else None, "user.active", target, {"active": active}, ip)


def create_project(
    session: Session,
    name: str,
    questions: list[dict[str, Any]],
    guidelines: str = "",
    overlap: int = 1,
    required_expertise: Iterable[str] = (),
    language: str | None = None,
    gold_ratio: float = 0.0,
    lease_seconds: int = 1800,
    actor: User | None = None,
    ip: str | None = None,
) -> Project:
    names.name("project name", name)
    parsed = q.parse_questions(questions)
    if not 1 <= overlap <= 100:
        raise AnnotateError(f"overlap {overlap}: between 1 and 100 annotators per item")
    if not 0 <= gold_ratio < 1:
        raise AnnotateError(f"gold ratio {gold_ratio}: at least 0 and below 1")
    if not 10 <= lease_seconds <= 7 * 86400:
        raise AnnotateError(f"lease of {lease_seconds} s: between 10 s and 7 days")
    if len(guidelines) > 200_000:
        raise AnnotateError("guidelines: at most 200,000 characters")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"project {name!r} already exists")
    project = Project(
        name=name,
        guidelines=guidelines,
        questions=[question.model_dump(mode="json") for question in parsed],
        overlap=overlap,
        required_expertise=names.tags("expertise", required_expertise),
        language=names.tags("language", [language])[0] if language else None,
        gold_ratio=gold_ratio,
        lease_seconds=lease_seconds,
    )
    session.add(project)
    session.flush()
    details = {"overlap": overlap, "gold_ratio": gold_ratio, "questions": len(parsed)}
    audit(session, actor.id if actor else None, "project.create", f"project:{name}", details, ip)
    return project


def get_project(session: Session, name: str, user: User | None = None) -> Project:
    """A project by name; with ``user``, only if they are an admin or a member."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None or (user is not None and not can_see(session, project, user)):
        raise NotFound(f"no project {name!r}")  # the same answer whether or not it exists
    return project


def can_see(session: Session, project: Project, user: User) -> bool:
    if user.role == "admin":
        return True
    return session.get(ProjectMember, (project.id, user.id)) is not None


def add_member(
    session: Session, project: Project, user: User, actor: User | None = None, ip: str | None = None
) -> None:
    if session.get(ProjectMember, (project.id, user.id)) is not None:
        return
    session.add(ProjectMember(project_id=project.id, user_id=user.id))
    target = f"project:{project.name}"
    audit(session, actor.id if actor else None, "member.add", target, {"user": user.username}, ip)
    session.flush()


def remove_member(
    session: Session, project: Project, user: User, actor: User | None = None, ip: str | None = None
) -> None:
    member = session.get(ProjectMember, (project.id, user.id))
    if member is None:
        return
    session.delete(member)
    target = f"project:{project.name}"
    audit(
        session, actor.id if actor else None, "member.remove", target, {"user": user.username}, ip
    )
    session.flush()


def projects_for_user(session: Session, user: User) -> list[Project]:
    query = select(Project).order_by(Project.name)
    if user.role != "admin":
        query = query.join(ProjectMember).where(ProjectMember.user_id == user.id)
    return list(session.scalars(query))
