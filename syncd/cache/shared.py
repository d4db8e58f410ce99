"""What the parts of the cache repository share: the transactions they are written against, the
statements of each dialect, and small helpers.

:class:`syncd.cache.Cache` is assembled from parts of one job each (identities, runs and the
audit trail, named values, access records); each part is a mixin whose methods take the cache
as a :class:`Transactions` and run every statement through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, Connection, Select, Table, func, select
from sqlalchemy.sql.dml import Insert

from syncd.cache.tables import assignments, groups, kv, memberships, users
from syncd.errors import CacheError
from syncd.state import AuditEntry


LOAD_BATCH = 5_000
"""Rows fetched per round trip by :meth:`Cache.load` (PostgreSQL streams with a server-side cursor)."""

LOAD_GROUP_BATCH = 500
"""Groups (each with its member list) fetched per round trip by :meth:`Cache.load`."""

IN_CHUNK = 500
"""Ids per ``IN (...)`` list, well under SQLite's and PostgreSQL's parameter limits."""


class Statements:
    """The statements of one dialect that are built once per cache (upserts, the member lists)."""

    def __init__(self, dialect: str) -> None:
        self.upsert_user = self._upsert(dialect, users, "source_id")
        self.upsert_group = self._upsert(dialect, groups, "source_id")
        self.upsert_kv = self._upsert(dialect, kv, "key")
        self.add_membership = self._insert(dialect, memberships).on_conflict_do_nothing()
        self.upsert_assignment = self._upsert_assignment(dialect)
        self.member_lists = self._member_lists(dialect)

    @staticmethod
    def _member_lists(dialect: str) -> Select[Any]:
        """Each group's member ids, as one JSON array per group (the dialect's own aggregate)."""
        aggregate = func.json_group_array if dialect == "sqlite" else func.json_agg
        return select(memberships.c.group_source_id, aggregate(memberships.c.user_source_id, type_=JSON)).group_by(
            memberships.c.group_source_id
        )

    @staticmethod
    def _insert(dialect: str, table: Table) -> Any:
        """The dialect's ``INSERT`` (with ``ON CONFLICT``); only that dialect's module is imported."""
        if dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            return sqlite.insert(table)
        if dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        raise CacheError(f"unsupported database dialect {dialect!r}")  # pragma: no cover

    @classmethod
    def _upsert(cls, dialect: str, table: Table, key: str) -> Insert:
        stmt = cls._insert(dialect, table)
        changes = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
        upsert: Insert = stmt.on_conflict_do_update(index_elements=[key], set_=changes)
        return upsert

    @classmethod
    def _upsert_assignment(cls, dialect: str) -> Insert:
        # A row already held keeps its created_at; only the display names are refreshed.
        stmt = cls._insert(dialect, assignments)
        names = ("group_name", "permission_set_name", "account_name")
        upsert: Insert = stmt.on_conflict_do_update(
            index_elements=["group_source_id", "account_id", "permission_set_arn"],
            set_={name: stmt.excluded[name] for name in names},
        )
        return upsert


class Transactions(Protocol):
    """What a part of the cache uses of :class:`syncd.cache.Cache`: its transactions, its audit
    writer, its statements, and the run its audit entries are tagged with."""

    _stmts: Statements
    _run_id: int | None

    def _write(self, what: str) -> AbstractContextManager[Connection]: ...
    def _read(self, what: str, *, snapshot: bool = False) -> AbstractContextManager[Connection]: ...
    def _audit(self, connection: Connection, entry: AuditEntry | None) -> None: ...


def utc_now() -> datetime:
    """Now, timezone-aware UTC (what every cache timestamp is)."""
    return datetime.now(UTC)


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique_ids(ids: Iterable[str]) -> list[str]:
    """The ids, each once, in their first order; a lone string is refused (it is not a list of ids)."""
    if isinstance(ids, str):
        raise TypeError("pass an iterable of source ids, not a single string")
    return list(dict.fromkeys(ids))
