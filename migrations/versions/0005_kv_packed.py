"""Named values stored compressed: a connector's state as a zlib stream of its JSON text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

One nullable column, ``kv.packed``: the value written as ``JsonText`` (a connector's state,
~70 MB of JSON text at 100k users) is kept there compressed, and ``value`` is null; every
existing row keeps its JSON in ``value`` and reads as before. Adding a nullable column needs no
table copy on SQLite. The downgrade puts each packed value back into ``value`` first, so the
next run of the older syncd resumes from the same state.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``kv.packed``."""
    op.add_column("kv", sa.Column("packed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Unpack every packed value into ``value``, then drop ``kv.packed``."""
    kv = sa.table(
        "kv",
        sa.column("key", sa.String()),
        sa.column("value", sa.JSON(none_as_null=True)),
        sa.column("packed", sa.LargeBinary()),
    )
    connection = op.get_bind()
    keys = connection.execute(sa.select(kv.c.key).where(kv.c.packed.is_not(None))).scalars().all()
    for key in keys:
        packed = connection.execute(sa.select(kv.c.packed).where(kv.c.key == key)).scalar_one()
        value = json.loads(zlib.decompress(packed).decode())
        connection.execute(sa.update(kv).where(kv.c.key == key).values(value=value, packed=None))
    with op.batch_alter_table("kv") as batch:
        batch.drop_column("packed")
