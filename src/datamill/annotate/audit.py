"""The audit log: one row for every write, saying who did what, to what, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from datamill.annotate.models import AuditLog, utc_now

_INSERT = AuditLog.__table__.insert()


def audit(
    session: Session,
    user_id: int | None,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    at: datetime | None = None,
) -> None:
    """Add an audit row to the caller's transaction: it commits with the write it describes.

    A Core insert, not an ORM object: it is on the annotator's every submit and skip."""
    row = {"user_id": user_id, "action": action, "target": target, "details": details or {}}
    session.execute(_INSERT, {**row, "ip": ip, "at": at or utc_now()})
