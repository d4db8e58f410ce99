"""The cache repository the engine, CLI and daemon talk to.

Every write is one short transaction, committed before the method returns, and carries its
:class:`~syncd.state.AuditEntry` (if any) in that same transaction: the state change and its
audit row land together or not at all. Audit rows are tagged with the run started by
:meth:`Cache.start_run` until :meth:`Cache.finish_run` ends it.

Statements are SQLAlchemy Core, built once per cache; upserts use the dialect's
``INSERT ... ON CONFLICT`` so they work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import JSON, Connection, Engine, Row, Select, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

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
from syncd.cache.tables import assignments as assignments_table
from syncd.cache.tables import audit as audit_table
from syncd.cache.tables import groups, kv, memberships, runs, users
from syncd.errors import CacheError
from syncd.memberset import MemberSet
from syncd.model import Assignment
from syncd.secrets import scrub
from syncd.state import NO_DATA, UNCHANGED, AuditEntry, CachedGroup, CachedUser, CacheState, Current, Origin, RunRecord


__all__ = ["Cache"]

_LOAD_BATCH = 5_000
"""Rows fetched per round trip by :meth:`Cache.load` (PostgreSQL streams with a server-side cursor)."""

_LOAD_GROUP_BATCH = 500
"""Groups (each with its member list) fetched per round trip by :meth:`Cache.load`."""

_IN_CHUNK = 500
"""Ids per ``IN (...)`` list, well under SQLite's and PostgreSQL's parameter limits."""

_DB_ERRORS = (SQLAlchemyError, TypeError, ValueError)
"""What a statement may raise: the database's errors, and a value the driver cannot encode or
decode (psycopg runs the JSON serialiser itself, so its TypeError arrives unwrapped)."""

_INTERRUPTED_ERROR = "interrupted: the process running it stopped before it finished"


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unique(ids: Iterable[str]) -> list[str]:
    if isinstance(ids, str):
        raise TypeError("pass an iterable of source ids, not a single string")
    return list(dict.fromkeys(ids))


_ORIGINS = ("created", "adopted")


def _origin(value: str) -> Origin:
    # The module's own string, not the row's: 100k users would otherwise hold 100k "created"s.
    for origin in _ORIGINS:
        if value == origin:
            return cast(Origin, origin)
    raise CacheError(f"the cache holds an unknown origin {value!r}")


def _check_origin(value: str) -> None:
    if value not in _ORIGINS:
        raise ValueError(f"origin must be one of {_ORIGINS}, not {value!r}")


def _compact(data: Any, keys: dict[str, str], shared: dict[str, str]) -> Any:
    """``data`` as decoded, its keys made one object per name across all rows, and values equal
    to the row's own columns (source id, userName) made those very strings.

    Equal in value to what was decoded; it only drops duplicate string objects, which for 100k
    users are most of what their JSON costs once loaded.
    """
    if isinstance(data, dict):
        return {
            keys.setdefault(key, key): shared.get(value, value) if isinstance(value, str) else _compact(value, keys, {})
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_compact(item, keys, {}) for item in data]
    return data


class _Statements:
    """The write statements of one dialect, built once."""

    def __init__(self, dialect: str) -> None:
        self.upsert_user = self._upsert(dialect, users, "source_id")
        self.upsert_group = self._upsert(dialect, groups, "source_id")
        self.upsert_kv = self._upsert(dialect, kv, "key")
        self.add_membership = self._insert_ignore(dialect, memberships)
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
    def _insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
        if dialect == "sqlite":
            return sqlite.insert(table)
        if dialect == "postgresql":
            return postgresql.insert(table)
        raise CacheError(f"unsupported database dialect {dialect!r}")  # pragma: no cover

    @classmethod
    def _upsert(cls, dialect: str, table: Table, key: str) -> Insert:
        stmt = cls._insert(dialect, table)
        changes = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
        return stmt.on_conflict_do_update(index_elements=[key], set_=changes)

    @classmethod
    def _upsert_assignment(cls, dialect: str) -> Insert:
        # A row already held keeps its created_at; only the display names are refreshed.
        stmt = cls._insert(dialect, assignments_table)
        names = ("group_name", "permission_set_name", "account_name")
        return stmt.on_conflict_do_update(
            index_elements=["group_source_id", "account_id", "permission_set_arn"],
            set_={name: stmt.excluded[name] for name in names},
        )

    @classmethod
    def _insert_ignore(cls, dialect: str, table: Table) -> Insert:
        return cls._insert(dialect, table).on_conflict_do_nothing()


class Cache(AccessRecords):
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
        self._stmts = _Statements(engine.dialect.name)
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
                "at": _now(),
                "action": entry.action,
                "object_type": entry.object_type,
                "source_id": entry.source_id,
                "target_id": entry.target_id,
                "before": entry.before,
                "after": entry.after,
                "result": scrub(entry.result) if entry.result else entry.result,
            },
        )

    # -- state -----------------------------------------------------------------------------

    def load(self, *, current: Mapping[str, Current] | None = None) -> CacheState:
        """Read every user, group and membership, as one consistent snapshot.

        Reads plain columns in batches (no ORM objects), so 100k users cost little more than
        the resulting values.

        Args:
            current: each user as the source holds it now, when known. A user whose cached
                digest is the same needs no write, and the plan never reads its ``data`` (what
                was last pushed: the ``before`` of an update or a delete), so it is loaded with
                ``data`` left out, ``digest`` as :data:`~syncd.state.UNCHANGED`, and the strings
                of ``current`` (equal digests mean equal userNames), so the run holds one copy
                of them, not two. The others' data is read as usual. For 100k users that is
                most of what a loaded cache would hold. None (the default) loads every user's
                data.
        """
        state = CacheState()
        with self._read("load", snapshot=True) as connection:
            keys: dict[str, str] = {}

            def cached_user(row: Sequence[Any], data: Any) -> CachedUser:
                source_id, target_id, user_name, digest, origin, gone_since = row[:6]
                return CachedUser(
                    source_id=source_id,
                    target_id=target_id,
                    user_name=user_name,
                    digest=digest,
                    data=_compact(data, keys, {source_id: source_id, user_name: user_name}) if data is not None else {},
                    origin=_origin(origin),
                    gone_since=gone_since,
                )

            columns = (
                users.c.source_id,
                users.c.target_id,
                users.c.user_name,
                users.c.digest,
                users.c.origin,
                users.c.gone_since,
            )
            if current is None:
                with_data = connection.execution_options(yield_per=_LOAD_BATCH).execute(select(*columns, users.c.data))
                for user_row in with_data:
                    state.users[user_row[0]] = cached_user(user_row, user_row[6])
            else:
                changed: dict[str, Sequence[Any]] = {}
                for row in connection.execution_options(yield_per=_LOAD_BATCH).execute(select(*columns)):
                    now = current.get(row[0])
                    if now is not None and now.digest == row[3] and row[5] is None:
                        state.users[now.source_id] = CachedUser(
                            now.source_id, row[1], now.user_name, UNCHANGED, NO_DATA, _origin(row[4])
                        )
                    else:
                        changed[row[0]] = row
                for chunk in _chunks(list(changed), _IN_CHUNK):
                    for source_id, data in connection.execute(
                        select(users.c.source_id, users.c.data).where(users.c.source_id.in_(chunk))
                    ):
                        state.users[source_id] = cached_user(changed[source_id], data)
            group_rows = connection.execution_options(yield_per=_LOAD_BATCH).execute(
                select(
                    groups.c.source_id,
                    groups.c.target_id,
                    groups.c.display_name,
                    groups.c.digest,
                    groups.c.origin,
                    groups.c.gone_since,
                )
            )
            for source_id, target_id, display_name, digest, origin, gone_since in group_rows:
                state.groups[source_id] = CachedGroup(
                    source_id=source_id,
                    target_id=target_id,
                    display_name=display_name,
                    digest=digest,
                    origin=_origin(origin),
                    gone_since=gone_since,
                )
            # One row per group, its members as a JSON array: a row per membership costs several
            # times more to fetch (half a million of them at 100k users).
            member_lists = connection.execution_options(yield_per=_LOAD_GROUP_BATCH).execute(self._stmts.member_lists)
            users_by_id = state.users
            for group_id, user_ids in member_lists:
                group = state.groups.get(group_id)
                # The sets reuse the id strings of the users and groups above: one copy of each id,
                # not one per membership (half a million memberships would otherwise hold a million strings).
                members = []
                for user_id in user_ids:
                    user = users_by_id.get(user_id)
                    members.append(user.source_id if user else user_id)
                # A sorted tuple per group (MemberSet): 8 bytes a membership, against 30 to 60 in a set.
                state.members[group.source_id if group else group_id] = MemberSet(members)
        return state

    def put_user(self, user: CachedUser, audit: AuditEntry | None = None) -> None:
        """Insert or replace the user with ``user.source_id``, and record ``audit``.

        Raises:
            CacheError: the write failed (e.g. another user already has ``user.target_id``);
                nothing was written, not even the audit entry.
            ValueError: ``user.origin`` is not "created" or "adopted".
        """
        _check_origin(user.origin)
        with self._write("put_user") as connection:
            connection.execute(
                self._stmts.upsert_user,
                {
                    "source_id": user.source_id,
                    "target_id": user.target_id,
                    "user_name": user.user_name,
                    "digest": user.digest,
                    "data": dict(user.data),
                    "origin": user.origin,
                    "updated_at": _now(),
                    "gone_since": user.gone_since,
                },
            )
            self._audit(connection, audit)

    def forget_user(self, source_id: str, audit: AuditEntry | None = None) -> None:
        """Drop the user and its memberships, and record ``audit``; a no-op for an unknown user."""
        with self._write("forget_user") as connection:
            connection.execute(delete(memberships).where(memberships.c.user_source_id == source_id))
            connection.execute(delete(users).where(users.c.source_id == source_id))
            self._audit(connection, audit)

    def put_group(self, group: CachedGroup, audit: AuditEntry | None = None) -> None:
        """Insert or replace the group with ``group.source_id``, and record ``audit``.

        Raises:
            CacheError: the write failed; nothing was written, not even the audit entry.
            ValueError: ``group.origin`` is not "created" or "adopted".
        """
        _check_origin(group.origin)
        with self._write("put_group") as connection:
            connection.execute(
                self._stmts.upsert_group,
                {
                    "source_id": group.source_id,
                    "target_id": group.target_id,
                    "display_name": group.display_name,
                    "digest": group.digest,
                    "origin": group.origin,
                    "updated_at": _now(),
                    "gone_since": group.gone_since,
                },
            )
            self._audit(connection, audit)

    def forget_group(self, source_id: str, audit: AuditEntry | None = None) -> None:
        """Drop the group and its memberships, and record ``audit``; a no-op for an unknown group."""
        with self._write("forget_group") as connection:
            connection.execute(delete(memberships).where(memberships.c.group_source_id == source_id))
            connection.execute(delete(groups).where(groups.c.source_id == source_id))
            self._audit(connection, audit)

    def add_memberships(
        self, group_source_id: str, user_source_ids: Iterable[str], audit: AuditEntry | None = None
    ) -> None:
        """Record that the users are members of the group (pairs already held are kept), and ``audit``.

        One statement whatever the number of users.

        Raises:
            CacheError: the group or one of the users is not in the cache; nothing was written.
        """
        user_ids = _unique(user_source_ids)
        with self._write("add_memberships") as connection:
            if user_ids:
                connection.execute(
                    self._stmts.add_membership,
                    [{"group_source_id": group_source_id, "user_source_id": u} for u in user_ids],
                )
            self._audit(connection, audit)

    def remove_memberships(
        self, group_source_id: str, user_source_ids: Iterable[str], audit: AuditEntry | None = None
    ) -> None:
        """Drop the pairs (group, each user), and record ``audit``; absent pairs are ignored."""
        user_ids = _unique(user_source_ids)
        with self._write("remove_memberships") as connection:
            for chunk in _chunks(user_ids, _IN_CHUNK):
                connection.execute(
                    delete(memberships).where(
                        memberships.c.group_source_id == group_source_id,
                        memberships.c.user_source_id.in_(chunk),
                    )
                )
            self._audit(connection, audit)

    def forget_memberships(self, *, group_source_id: str | None = None, user_source_id: str | None = None) -> None:
        """Drop every membership of a group, of a user, or (both given) the one pair.

        Raises:
            TypeError: neither was given (that would forget every membership).
        """
        if group_source_id is None and user_source_id is None:
            raise TypeError("forget_memberships() needs group_source_id, user_source_id or both")
        stmt = delete(memberships)
        if group_source_id is not None:
            stmt = stmt.where(memberships.c.group_source_id == group_source_id)
        if user_source_id is not None:
            stmt = stmt.where(memberships.c.user_source_id == user_source_id)
        with self._write("forget_memberships") as connection:
            connection.execute(stmt)

    # -- account assignments ---------------------------------------------------------------

    def assignments(self) -> set[Assignment]:
        """Every account assignment syncd created and has not deleted, with its display names.

        These, and only these, are the assignments syncd may delete; :meth:`forget_group` keeps
        them, because they stay in AWS until syncd deletes them there.
        """
        stmt = select(
            assignments_table.c.group_source_id,
            assignments_table.c.account_id,
            assignments_table.c.permission_set_arn,
            assignments_table.c.group_name,
            assignments_table.c.permission_set_name,
            assignments_table.c.account_name,
        )
        with self._read("assignments") as connection:
            rows = connection.execution_options(yield_per=_LOAD_BATCH).execute(stmt)
            return {
                Assignment(
                    group=group,
                    account_id=account_id,
                    permission_set_arn=permission_set_arn,
                    group_name=group_name,
                    permission_set_name=permission_set_name,
                    account_name=account_name,
                )
                for group, account_id, permission_set_arn, group_name, permission_set_name, account_name in rows
            }

    def put_assignment(self, assignment: Assignment, audit: AuditEntry | None = None) -> None:
        """Record that syncd created ``assignment``, and ``audit``.

        Recording it again keeps its ``created_at`` and refreshes the display names.
        """
        with self._write("put_assignment") as connection:
            connection.execute(
                self._stmts.upsert_assignment,
                {
                    "group_source_id": assignment.group,
                    "account_id": assignment.account_id,
                    "permission_set_arn": assignment.permission_set_arn,
                    "group_name": assignment.group_name,
                    "permission_set_name": assignment.permission_set_name,
                    "account_name": assignment.account_name,
                    "created_at": _now(),
                },
            )
            self._audit(connection, audit)

    def forget_assignment(self, assignment: Assignment, audit: AuditEntry | None = None) -> None:
        """Drop the record of ``assignment`` (deleted in AWS), and record ``audit``; a no-op when absent."""
        with self._write("forget_assignment") as connection:
            connection.execute(
                delete(assignments_table).where(
                    assignments_table.c.group_source_id == assignment.group,
                    assignments_table.c.account_id == assignment.account_id,
                    assignments_table.c.permission_set_arn == assignment.permission_set_arn,
                )
            )
            self._audit(connection, audit)

    # -- audit -----------------------------------------------------------------------------

    def record(self, audit: AuditEntry) -> None:
        """Record an audit entry that goes with no state change (a failed change, a drift found)."""
        with self._write("record") as connection:
            self._audit(connection, audit)

    def pending_deletions(self) -> list[tuple[str, str, str, str, datetime]]:
        """Users and groups gone from the source and waiting for their delete (``safety.delete_after``).

        Returns ``(kind, source_id, name, target_id, gone_since)`` tuples, oldest first; kind is
        "user" or "group".
        """
        with self._read("pending_deletions") as connection:
            found: list[tuple[str, str, str, str, datetime]] = [
                ("user", sid, name, tid, since)
                for sid, name, tid, since in connection.execute(
                    select(users.c.source_id, users.c.user_name, users.c.target_id, users.c.gone_since).where(
                        users.c.gone_since.is_not(None)
                    )
                )
            ]
            found += [
                ("group", sid, name, tid, since)
                for sid, name, tid, since in connection.execute(
                    select(groups.c.source_id, groups.c.display_name, groups.c.target_id, groups.c.gone_since).where(
                        groups.c.gone_since.is_not(None)
                    )
                )
            ]
        return sorted(found, key=lambda row: (row[4], row[0], row[1]))

    def unanswered_create(self, object_type: str, source_id: str) -> int | None:
        """The earlier run that sent a create of this object and never recorded its answer, if any.

        The engine records ``create_<type>`` with result "sent" before each POST, then "ok" or
        "failed" once answered. When the newest such entry of another run than the current one
        is still "sent", that run stopped (killed, crashed) between the POST and its record: the
        object a 409 now finds is most likely the one it made.
        """
        stmt = (
            select(audit_table.c.run_id, audit_table.c.result)
            .where(
                audit_table.c.object_type == object_type,
                audit_table.c.source_id == source_id,
                audit_table.c.action == f"create_{object_type}",
            )
            .order_by(audit_table.c.id.desc())
            .limit(1)
        )
        if self._run_id is not None:
            stmt = stmt.where(audit_table.c.run_id != self._run_id)
        with self._read("unanswered_create") as connection:
            row = connection.execute(stmt).first()
        if row is None or row.result != "sent" or row.run_id is None:
            return None
        return int(row.run_id)

    def audit(self, run_id: int | None = None, limit: int = 100) -> list[tuple[datetime, AuditEntry]]:
        """The newest ``limit`` audit entries, newest first, with when each was recorded.

        Args:
            run_id: only this run's entries; None for entries of any run (or none).
        """
        stmt = select(
            audit_table.c.at,
            audit_table.c.action,
            audit_table.c.object_type,
            audit_table.c.source_id,
            audit_table.c.target_id,
            audit_table.c.before,
            audit_table.c.after,
            audit_table.c.result,
        )
        if run_id is not None:
            stmt = stmt.where(audit_table.c.run_id == run_id)
        stmt = stmt.order_by(audit_table.c.id.desc()).limit(limit)
        with self._read("audit") as connection:
            rows = connection.execute(stmt)
            return [
                (
                    at,
                    AuditEntry(
                        action=action,
                        object_type=object_type,
                        source_id=source_id,
                        target_id=target_id,
                        before=before,
                        after=after,
                        result=result,
                    ),
                )
                for at, action, object_type, source_id, target_id, before, after, result in rows
            ]

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, mode: str, dry_run: bool) -> int:
        """Record a run as "running" and tag later audit entries with it; returns its id."""
        with self._write("start_run") as connection:
            result = connection.execute(
                runs.insert(),
                {
                    "started_at": _now(),
                    "finished_at": None,
                    "mode": mode,
                    "dry_run": dry_run,
                    "status": "running",
                    "counts": {},
                    "requests": {},
                    "error": None,
                },
            )
            key = result.inserted_primary_key
            if key is None:  # pragma: no cover - both dialects return the new id
                raise CacheError("the database did not return the new run's id")
            run_id = int(key[0])
        self._run_id = run_id
        return run_id

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, int],
        requests: dict[str, int],
        error: str | None,
    ) -> None:
        """Record how run ``run_id`` ended; audit entries are no longer tagged with it.

        The run stops being current even if this write fails: it then stays "running" in the
        database, and the next :meth:`interrupt_stale_runs` marks it "interrupted".

        Raises:
            CacheError: there is no run ``run_id``, or the write failed.
        """
        try:
            with self._write("finish_run") as connection:
                result = connection.execute(
                    update(runs)
                    .where(runs.c.id == run_id)
                    .values(
                        finished_at=_now(),
                        status=status,
                        counts=dict(counts),
                        requests=dict(requests),
                        error=scrub(error) if error else error,
                    )
                )
                if result.rowcount != 1:
                    raise CacheError(f"cannot finish run {run_id}: the cache has no such run")
        finally:
            if self._run_id == run_id:
                self._run_id = None

    def interrupt_stale_runs(self) -> int:
        """Mark runs still "running" as "interrupted" (their process died); returns how many.

        The run this cache started, if one is in progress, is left alone. Call it at start,
        once the daemon holds its lock, before :meth:`start_run`.
        """
        stmt = (
            update(runs)
            .where(runs.c.status == "running")
            .values(status="interrupted", finished_at=_now(), error=_INTERRUPTED_ERROR)
        )
        if self._run_id is not None:
            stmt = stmt.where(runs.c.id != self._run_id)
        with self._write("interrupt_stale_runs") as connection:
            return int(connection.execute(stmt).rowcount)

    def runs(self, limit: int = 10) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first."""
        with self._read("runs") as connection:
            rows = connection.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
            return [_run_record(row) for row in rows]

    def last_success(self, *, include_dry_runs: bool = False) -> RunRecord | None:
        """The newest run that ended "ok", or None.

        Dry runs do not count unless ``include_dry_runs``: they changed nothing, so they say
        nothing about how fresh Identity Center is.
        """
        stmt = select(runs).where(runs.c.status == "ok")
        if not include_dry_runs:
            stmt = stmt.where(runs.c.dry_run.is_(False))
        with self._read("last_success") as connection:
            row = connection.execute(stmt.order_by(runs.c.id.desc()).limit(1)).first()
            return _run_record(row) if row is not None else None

    def last_full_resync_start(self) -> datetime | None:
        """When the newest successful, non-dry full resync started, or None (the daemon's schedule)."""
        stmt = select(func.max(runs.c.started_at)).where(
            runs.c.mode == "full", runs.c.status == "ok", runs.c.dry_run.is_(False)
        )
        with self._read("last_full_resync_start") as connection:
            value: datetime | None = connection.execute(stmt).scalar_one_or_none()
        return value

    def managed_counts(self) -> tuple[int, int]:
        """How many users and groups syncd manages (the cache's rows): two cheap counts in one snapshot."""
        with self._read("managed_counts", snapshot=True) as connection:
            user_count: int = connection.execute(select(func.count()).select_from(users)).scalar_one()
            group_count: int = connection.execute(select(func.count()).select_from(groups)).scalar_one()
        return user_count, group_count

    def target_ids(self) -> tuple[dict[str, str], dict[str, str]]:
        """Identity Center id → source id of every cached user, and source id → Identity Center id
        of every cached group: what a full resync needs to read Identity Center while the source is
        still being read (before :meth:`load`, which wants the source's users)."""
        with self._read("target_ids", snapshot=True) as connection:
            user_ids = {tid: sid for sid, tid in connection.execute(select(users.c.source_id, users.c.target_id))}
            rows = connection.execute(select(groups.c.source_id, groups.c.target_id))
            group_ids: dict[str, str] = {sid: tid for sid, tid in rows}  # noqa: C416 - rows are not pairs to dict()
        return user_ids, group_ids

    # -- kv --------------------------------------------------------------------------------

    def get_value(self, key: str) -> Any | None:
        """The JSON value stored under ``key``, or None."""
        with self._read("get_value") as connection:
            return connection.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one_or_none()

    def set_value(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key``, replacing any previous one."""
        with self._write("set_value") as connection:
            connection.execute(self._stmts.upsert_kv, {"key": key, "value": value, "updated_at": _now()})


def _run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        mode=row.mode,
        dry_run=bool(row.dry_run),
        status=row.status,
        counts=dict(row.counts or {}),
        requests=dict(row.requests or {}),
        error=row.error,
    )
