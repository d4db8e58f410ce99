"""The cache's tables, as SQLAlchemy Core ``Table`` objects on one ``MetaData``.

This module is the model Alembic compares the migrations against: a change here needs a
migration in ``migrations/versions`` (``tests/cache`` fails until the two agree).

Timestamps are :class:`UTCDateTime`: timezone-aware UTC in Python on every backend, even on
SQLite, which has no timezone-aware column type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


__all__ = [
    "NAMING_CONVENTION",
    "UTCDateTime",
    "application_assignments",
    "assignments",
    "audit",
    "groups",
    "kv",
    "memberships",
    "metadata",
    "permission_sets",
    "runs",
    "users",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names, fixed so that migrations can name what they alter or drop."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""Every table of the cache."""


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that only takes aware datetimes and always returns UTC ones.

    SQLite stores the UTC wall time as text with no offset; PostgreSQL stores a
    ``timestamptz``. Either way the value read back is an aware datetime in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and convert aware ones to UTC (naive UTC on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; the cache stores aware UTC times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the driver gave back."""
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Ids are strings of unbounded length: source ids differ in shape per IdP, and a length limit
# would only add a way for a write to fail. ``String`` with no length is VARCHAR on PostgreSQL.

users = Table(
    "users",
    metadata,
    Column("source_id", String, primary_key=True),
    Column("target_id", String, nullable=False, unique=True),
    Column("user_name", String, nullable=False),
    Column("digest", String, nullable=False),
    Column("data", JSON, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("gone_since", UTCDateTime, nullable=True),
)
"""Users syncd manages: source id → Identity Center id, plus what was last pushed.

``gone_since`` is when a user left the source and was deactivated, pending its delete
(``safety.delete_after``); NULL for every other user."""

groups = Table(
    "groups",
    metadata,
    Column("source_id", String, primary_key=True),
    Column("target_id", String, nullable=False, unique=True),
    Column("display_name", String, nullable=False),
    Column("digest", String, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("gone_since", UTCDateTime, nullable=True),
)
"""Groups syncd manages; ``gone_since`` as for users (the group was emptied, pending its delete)."""

memberships = Table(
    "memberships",
    metadata,
    Column(
        "group_source_id",
        String,
        ForeignKey("groups.source_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "user_source_id",
        String,
        ForeignKey("users.source_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index(None, "user_source_id"),
)
"""Memberships syncd pushed, as (group source id, user source id) pairs.

The foreign keys keep a pair from naming an object the cache does not hold. Their
``ON DELETE CASCADE`` is a second line of defence: the store deletes memberships explicitly,
because SQLite only honours it with ``PRAGMA foreign_keys=ON``.
"""

assignments = Table(
    "assignments",
    metadata,
    Column("group_source_id", String, primary_key=True),
    Column("account_id", String, primary_key=True),
    Column("permission_set_arn", String, primary_key=True),
    Column("group_name", String, nullable=False),
    Column("permission_set_name", String, nullable=False),
    Column("account_name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Account assignments syncd created (group → permission set @ account): the only ones it ever deletes.

No foreign key to ``groups``: a group's rows outlive its cache entry until syncd has deleted
its assignments in AWS, and an assignment made by hand is never recorded here. The names are
for people to read (plan, audit, status) and are refreshed whenever the row is written.
"""

permission_sets = Table(
    "permission_sets",
    metadata,
    Column("name", String, primary_key=True),
    Column("arn", String, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Permission sets syncd created (``origin`` "created") or took over with ``adopt = true``
("adopted"): the only ones it ever updates or deletes. Control Tower's and hand-made ones are
never recorded here.
"""

application_assignments = Table(
    "application_assignments",
    metadata,
    Column("group_source_id", String, primary_key=True),
    Column("application_arn", String, primary_key=True),
    Column("group_name", String, nullable=False),
    Column("application_name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Application assignments syncd created (group → application): the only ones it ever deletes.
Like ``assignments``, no foreign key to ``groups``: the rows outlive the group's cache entry
until syncd has deleted them in AWS.
"""

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("mode", String(32), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("counts", JSON, nullable=False),
    Column("requests", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Index(None, "status"),
    sqlite_autoincrement=True,
)
"""One row per run; ``status`` is "running" until the run finishes."""

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is an alias of the rowid and
# autoincrements (and it is 64-bit there anyway).
_AUDIT_ID = BigInteger().with_variant(Integer(), "sqlite")

audit = Table(
    "audit",
    metadata,
    Column("id", _AUDIT_ID, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("source_id", String, nullable=True),
    Column("target_id", String, nullable=True),
    Column("before", JSON(none_as_null=True), nullable=True),
    Column("after", JSON(none_as_null=True), nullable=True),
    Column("result", Text, nullable=False),
    Index(None, "run_id"),
    sqlite_autoincrement=True,
)
"""The audit trail: one row per change applied (or attempted) on the target."""

kv = Table(
    "kv",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", JSON(none_as_null=True), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("packed", LargeBinary, nullable=True),
)
"""Named values: connector watermarks and state, leases and the like (JSON).

A value written as :class:`syncd.cache.database.JsonText` (a connector's state: tens of MB of
text at 100k users) is kept in ``packed``, its JSON text's UTF-8 as a zlib stream, and
``value`` is null; any other value is kept in ``value``, and ``packed`` is null."""
