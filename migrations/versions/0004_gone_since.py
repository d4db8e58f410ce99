"""When a user or group left the source, for deletes in two steps (``safety.delete_after``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Two nullable columns: a user gone from the source is deactivated and a group emptied at once,
and each is deleted once ``gone_since`` is older than the grace period. Adding a nullable column
needs no table copy on SQLite, so no batch block; every existing row reads as "not gone".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``gone_since`` to ``users`` and ``groups``."""
    op.add_column("users", sa.Column("gone_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("groups", sa.Column("gone_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the columns (objects pending deletion then look like any other)."""
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("gone_since")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("gone_since")
