"""Who may sync: one daemon per cache.

* **PostgreSQL** (replicas sharing one database): the leader holds a session-level advisory lock
  (``pg_try_advisory_lock``) on a connection of its own, kept for the life of the process. When
  the process dies its session ends and the lock is free: a standby, which tries every
  heartbeat, takes it. TCP keepalives make a vanished host's session end too. A leader checks
  its connection every heartbeat; if it broke, the lock went with it and it stops syncing.
* **SQLite**: one daemon only. An exclusive ``flock`` on ``<database>.lock`` is taken at start;
  a second daemon on the same file fails at once with :class:`~syncd.errors.CacheBusy`.

The leader also writes who it is, its heartbeat and its next runs under the cache key
``"leader"`` (:func:`publish`), which ``syncd status`` and standbys read (:func:`read_record`).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from syncd.cache import Cache
from syncd.cache.database import PG_CONNECT_TIMEOUT_S, create_cache_engine, describe_error
from syncd.errors import CacheBusy, CacheError


__all__ = [
    "LEADER_KEY",
    "FileLeadership",
    "Leadership",
    "PostgresLeadership",
    "acquire_leadership",
    "identity",
    "publish",
    "read_record",
]

log = structlog.get_logger("syncd.leader")

LEADER_KEY = "leader"
"""The cache key holding the leader's record."""

_PG_LEADER_LOCK = 0x73796E63644C  # "syncdL": held by the replica that syncs
_PG_START_LOCK = 0x73796E636453  # "syncdS": serialises start-up (schema upgrades) of replicas


def identity() -> str:
    """This process, as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    """The right to sync, as the daemon sees it."""

    @property
    def is_leader(self) -> bool:
        """True while this process may sync."""
        ...

    def poll(self) -> bool:
        """Check leadership now (take it if free, confirm it if held); returns :attr:`is_leader`."""
        ...

    def starting(self) -> Any:
        """A context manager held while this process upgrades the schema at start."""
        ...

    def release(self) -> None:
        """Give leadership up (a standby takes over at its next poll). Safe to call twice."""
        ...


class FileLeadership:
    """SQLite: an exclusive ``flock`` on ``<database>.lock``, taken for the life of the process."""

    def __init__(self, lock_path: Path, cache_url: str) -> None:
        """Take the lock at ``lock_path``, or raise CacheBusy naming the process that holds it."""
        self.path = lock_path
        self._file: IO[str] | None = None
        handle = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise CacheBusy(
                f"another syncd ({holder}) is already running on cache {cache_url} (lock file {lock_path}); "
                "stop it first, or give this one its own cache.url. "
                "To run several replicas, share a PostgreSQL cache: they elect one leader."
            ) from None
        except OSError as exc:
            handle.close()
            raise CacheError(f"cannot lock {lock_path} for cache {cache_url}: {exc.strerror}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._file = handle

    @property
    def is_leader(self) -> bool:
        """True until released."""
        return self._file is not None

    def poll(self) -> bool:
        """The lock cannot be lost while the file stays open."""
        return self.is_leader

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Nothing to serialise: the file lock already keeps other daemons out."""
        yield

    def release(self) -> None:
        """Unlock and close the lock file (the file itself stays, empty)."""
        if self._file is None:
            return
        with suppress(OSError):
            self._file.seek(0)
            self._file.truncate()
        with suppress(OSError):
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as it wrote in the file; it writes just after locking, so allow it a moment."""
    for _ in range(20):
        handle.seek(0)
        text = handle.read().strip()
        if text:
            return text
        time.sleep(0.025)
    return "another process"


class _Unshared:
    """An in-memory SQLite cache: no other process can see it, so this one always leads."""

    is_leader = True

    def poll(self) -> bool:
        return True

    @contextmanager
    def starting(self) -> Iterator[None]:
        yield

    def release(self) -> None:
        return None


class PostgresLeadership:
    """PostgreSQL: a session advisory lock on a dedicated connection with TCP keepalives."""

    def __init__(self, cache: Cache) -> None:
        """Prepare the dedicated connection's engine; nothing is locked until :meth:`poll`."""
        self._engine = create_cache_engine(
            cache.engine.url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": PG_CONNECT_TIMEOUT_S,
                "application_name": "syncd-leader",
                # A leader whose host vanished must lose its session (and the lock) in about a minute.
                "keepalives": 1,
                "keepalives_idle": 15,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": 30_000,
            },
        )
        self._url = cache.url
        self._connection: Connection | None = None
        self._leader = False

    @property
    def is_leader(self) -> bool:
        """True while the lock is held on a live session."""
        return self._leader

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            with suppress(Exception):
                self._connection.invalidate()
            with suppress(Exception):
                self._connection.close()
        self._connection = None
        self._leader = False

    def poll(self) -> bool:
        """Take the lock if it is free; if held, prove the session (and so the lock) is alive."""
        try:
            connection = self._connect()
            if self._leader:
                connection.exec_driver_sql("SELECT 1")
            else:
                self._leader = bool(
                    connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LEADER_LOCK}).scalar()
                )
        except SQLAlchemyError as exc:
            if self._leader:
                log.error("leader.lost", reason=describe_error(exc, self._engine.url), cache=self._url)
            else:
                log.warning("leader.poll_failed", reason=describe_error(exc, self._engine.url), cache=self._url)
            self._drop()
        return self._leader

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Hold a second advisory lock while starting, so that replicas upgrade the schema one at a time."""
        try:
            connection = self._connect()
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_START_LOCK})
        except SQLAlchemyError as exc:
            self._drop()
            raise CacheError(f"cannot lock cache {self._url} for start-up: {describe_error(exc)}") from None
        try:
            yield
        finally:
            with suppress(SQLAlchemyError):
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_START_LOCK})

    def release(self) -> None:
        """Unlock and close the dedicated connection."""
        if self._connection is not None and self._leader:
            with suppress(SQLAlchemyError):
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LEADER_LOCK})
        if self._connection is not None:
            with suppress(Exception):
                self._connection.close()
        self._connection = None
        self._leader = False
        self._engine.dispose()


def acquire_leadership(cache: Cache) -> Leadership:
    """The leadership that fits ``cache``: a lock file for SQLite, an advisory lock for PostgreSQL.

    Raises:
        CacheBusy: another daemon holds this SQLite cache.
    """
    url = cache.engine.url
    if cache.engine.dialect.name == "postgresql":
        return PostgresLeadership(cache)
    database = make_url(url).database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return _Unshared()
    path = Path(database).expanduser().resolve()
    return FileLeadership(path.with_name(path.name + ".lock"), cache.url)


def publish(cache: Cache, record: dict[str, Any]) -> None:
    """Store the leader's record (who, heartbeat, next runs) under :data:`LEADER_KEY`."""
    cache.set_value(LEADER_KEY, {**record, "heartbeat_at": datetime.now(UTC).isoformat()})


def read_record(cache: Cache, now: datetime | None = None) -> dict[str, Any] | None:
    """The leader's record with ``alive`` added: False when it stopped or its heartbeat is stale.

    A heartbeat is stale after three heartbeat periods (``heartbeat_s`` in the record).
    """
    record = cache.get_value(LEADER_KEY)
    if not isinstance(record, dict):
        return None
    now = now or datetime.now(UTC)
    alive = False
    with suppress(KeyError, TypeError, ValueError):
        beat = datetime.fromisoformat(record["heartbeat_at"])
        alive = not record.get("stopped_at") and (now - beat).total_seconds() <= 3 * float(record["heartbeat_s"])
    return {**record, "alive": alive}
