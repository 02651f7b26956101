"""The annotation store's tables (SQLAlchemy 2.0, typed declarative).

Times are stored in UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
Counters on ``items`` (``n_active``, ``n_submitted``) are kept by ``assign.py`` in the same
transaction as the assignment rows they count, so the next-item query can respect overlap
with an index instead of counting assignments under a lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("admin", "reviewer", "annotator")
STATES = ("leased", "submitted", "skipped", "expired")


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC (SQLite keeps no offset, so it is stripped)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


# JSONB on PostgreSQL (compact, comparable), JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: Json,
        list[Any]: Json,
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # one of ROLES
    expertise: Mapped[list[Any]] = mapped_column(default=list)  # e.g. ["clinician"]
    languages: Mapped[list[Any]] = mapped_column(default=list)  # empty: any language
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex, never the token
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utc_now)
    ok: Mapped[bool] = mapped_column(Boolean)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    guidelines: Mapped[str] = mapped_column(Text, default="")  # Markdown
    questions: Mapped[list[Any]]  # question configs, validated by questions.py
    overlap: Mapped[int] = mapped_column(Integer, default=1)  # k annotators per item
    required_expertise: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str | None] = mapped_column(String(16))
    gold_ratio: Mapped[float] = mapped_column(Float, default=0.0)
    lease_seconds: Mapped[int] = mapped_column(Integer, default=1800)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "record_id", name="uq_items_project_record"),
        # The next-item query: open items of a project, gold or not, highest priority first.
        Index("ix_items_next", "project_id", "is_gold", text("priority DESC"), "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    record_id: Mapped[str] = mapped_column(String(64))
    # What annotators are shown: messages, candidates, task, domain, language, metadata.
    payload: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(Integer, default=0)
    overlap: Mapped[int | None] = mapped_column(Integer)  # None: the project's overlap
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answers: Mapped[dict[str, Any] | None]  # never shown to annotators
    language: Mapped[str | None] = mapped_column(String(16))
    n_active: Mapped[int] = mapped_column(Integer, default=0)  # live leases + submissions
    n_submitted: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ItemExpertise(Base):
    """One expertise tag an item requires; an annotator must hold every tag of an item."""

    __tablename__ = "item_expertise"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id", name="uq_assignments_item_user"),
        Index("ix_assignments_user_project", "user_id", "project_id", "state"),
        Index("ix_assignments_state_expires", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="leased")  # one of STATES
    leased_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    # Screen position -> candidate index, for pairwise and ranking; randomised per assignment.
    display_order: Mapped[list[Any]] = mapped_column(default=list)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_project_user", "project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    answers: Mapped[dict[str, Any]]  # question name -> answer, in the record's terms
    seconds: Mapped[float | None] = mapped_column(Float)
    typing_seconds: Mapped[float | None] = mapped_column(Float)
    paste_events: Mapped[int] = mapped_column(Integer, default=0)
    flags: Mapped[list[Any]] = mapped_column(default=list)  # e.g. ["too_fast", "pasted"]
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # any flag: for review
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(64))  # e.g. "submit", "project.create"
    target: Mapped[str] = mapped_column(String(200), default="")  # e.g. "assignment:12"
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utc_now)
