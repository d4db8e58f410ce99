"""The cache repository the engine, CLI and daemon talk to: :class:`Cache`.

Every write is one short transaction, committed before the method returns, and carries its
:class:`~syncd.state.AuditEntry` (if any) in that same transaction: the state change and its
audit row land together or not at all. Audit rows are tagged with the run started by
:meth:`Cache.start_run` until :meth:`Cache.finish_run` ends it.

This module opens the cache and holds its transactions; what it records is in parts of one job
each, mixed into :class:`Cache`: identities (:mod:`~syncd.cache.identities`), runs and the audit
trail (:mod:`~syncd.cache.run_records`), named values (:mod:`~syncd.cache.values`) and access
(:mod:`~syncd.cache.access_records`). Statements are SQLAlchemy Core, built once per cache
(:mod:`~syncd.cache.shared`); upserts use the dialect's ``INSERT ... ON CONFLICT`` so they work
the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from syncd.cache import migrate
from syncd.cache.access_records import AccessRecords
from syncd.cache.database import (
    DEFAULT_URL,
    SQLITE_BEGIN_OPTION,
    check_connects,
    create_cache_engine,
    describe_error,
    mask_url,
)
from syncd.cache.identities import IdentityRecords
from syncd.cache.run_records import RunRecords
from syncd.cache.shared import Statements, utc_now
from syncd.cache.tables import audit as audit_table
from syncd.cache.values import NamedValues
from syncd.errors import CacheError
from syncd.secrets import scrub
from syncd.state import AuditEntry


__all__ = ["Cache"]

_DB_ERRORS = (SQLAlchemyError, TypeError, ValueError)
"""What a statement may raise: the database's errors, and a value the driver cannot encode or
decode (psycopg runs the JSON serialiser itself, so its TypeError arrives unwrapped)."""


class Cache(IdentityRecords, RunRecords, NamedValues, AccessRecords):
    """What syncd pushed to Identity Center, its runs, its audit trail and small named values.

    Open with :meth:`open`; use as a context manager or call :meth:`close`. Methods raise
    :class:`~syncd.errors.CacheError` when the database cannot be read or written; the message
    names the URL with its password masked.

    One ``Cache`` may be shared by threads (each call checks a connection out of the pool), but
    the current run id is per ``Cache``: one run at a time.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap ``engine``, which must have been made by ``create_cache_engine``; prefer :meth:`open`."""
        self._engine = engine
        self._url = mask_url(engine.url)
        self._sqlite = engine.dialect.name == "sqlite"
        self._stmts = Statements(engine.dialect.name)
        self._run_id: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str = DEFAULT_URL) -> Self:
        """Open the cache at ``url`` and check that it answers; the schema is not touched.

        Accepts ``sqlite:///path`` (the default ``sqlite:///syncd.db``), ``sqlite:///:memory:``,
        ``postgresql+psycopg://...`` and ``postgresql://...`` (rewritten to psycopg).

        Raises:
            CacheError: the URL is not supported or the database cannot be reached; the
                message names the URL with its password masked.
        """
        engine = create_cache_engine(url)
        check_connects(engine)
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for advisory locks and the like)."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self._url

    @property
    def current_run_id(self) -> int | None:
        """The run audit entries are tagged with, or None between runs."""
        return self._run_id

    def close(self) -> None:
        """Close every pooled connection. Safe to call twice."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        """Return the cache itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the cache."""
        self.close()

    def __repr__(self) -> str:
        """Show the masked URL."""
        return f"Cache({self._url!r})"

    # -- schema ----------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision; idempotent, safe at every start."""
        migrate.upgrade(self._engine, "head")

    def current_revision(self) -> str | None:
        """The schema revision of the database, or None when it was never migrated."""
        heads = migrate.current_heads(self._engine)
        return heads[0] if heads else None

    def needs_upgrade(self) -> bool:
        """True when :meth:`upgrade` would change the schema."""
        return migrate.needs_upgrade(self._engine)

    def ping(self) -> bool:
        """Run ``SELECT 1``; False on any error, never raises."""
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                if self._sqlite:
                    # Take the write lock at BEGIN: waits out another writer (busy_timeout)
                    # instead of failing when a read transaction tries to upgrade.
                    connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                with connection.begin():
                    yield connection
        except _DB_ERRORS as exc:
            raise CacheError(
                f"cannot write to cache {self._url} ({what}): {describe_error(exc, self._engine.url)}"
            ) from exc

    @contextmanager
    def _read(self, what: str, *, snapshot: bool = False) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                if snapshot and not self._sqlite:
                    # One snapshot for several SELECTs (SQLite's BEGIN already gives one).
                    connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    yield connection
        except _DB_ERRORS as exc:
            raise CacheError(
                f"cannot read cache {self._url} ({what}): {describe_error(exc, self._engine.url)}"
            ) from exc

    def _audit(self, connection: Connection, entry: AuditEntry | None) -> None:
        if entry is None:
            return
        connection.execute(
            audit_table.insert(),
            {
                "run_id": self._run_id,
                "at": utc_now(),
                # The text of the StrEnums: what earlier versions wrote, and read back as written.
                "action": str(entry.action),
                "object_type": str(entry.object_type),
                "source_id": entry.source_id,
                "target_id": entry.target_id,
                "before": entry.before,
                "after": entry.after,
                "result": scrub(entry.result) if entry.result else entry.result,
            },
        )
