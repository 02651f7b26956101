"""The next-item index in the order the next-item query reads: priority from highest, then
id from lowest. With priority ascending in the index, SQLite and PostgreSQL sorted every
open item of the project for each lease instead of stopping at the first that fits.

Revision ID: 0003_items_next_desc
Revises: 0002_item_overlap
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_items_next_desc"
down_revision = "0002_item_overlap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_items_next", table_name="items")
    op.create_index(
        "ix_items_next", "items", ["project_id", "is_gold", sa.text("priority DESC"), "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_items_next", table_name="items")
    op.create_index("ix_items_next", "items", ["project_id", "is_gold", "priority", "id"])
