"""Alembic environment: run on the connection ``db.migrate`` passes in; no alembic.ini."""

from __future__ import annotations

from alembic import context

from datamill.annotate.models import Base

config = context.config
connection = config.attributes["connection"]


def _applied(*, ctx: object, step: object, heads: object, run_args: object) -> None:
    if getattr(step, "is_upgrade", False):
        config.attributes["applied"].append(step.up_revision_id)  # type: ignore[attr-defined]


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    on_version_apply=_applied,
)
with context.begin_transaction():
    context.run_migrations()
