"""Opening a cache: URL forms, connection settings, errors that never show a password."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from syncd.cache import Cache
from syncd.cache.database import create_cache_engine
from syncd.errors import CacheError
from syncd.state import CachedUser


def _chain(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def test_an_unreachable_database_raises_cache_error(unreachable_url: str) -> None:
    """A URL that cannot be opened raises CacheError naming the URL, with the password masked."""
    with pytest.raises(CacheError) as caught:
        Cache.open(unreachable_url)

    message = str(caught.value)
    assert unreachable_url.partition("://")[2].replace("secret", "***") in message
    assert not any("secret" in str(e) for e in _chain(caught.value))
    if "@" in unreachable_url:
        assert "***" in message


@pytest.mark.parametrize(
    "url",
    [
        "mysql://admin:secret@db.example.com/syncd",
        "postgresql+asyncpg://admin:secret@127.0.0.1/syncd",
        "not a url with :secret@ in it",
        "sqlite+aiosqlite:///x.db",
    ],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    """Other databases, drivers and malformed URLs raise CacheError without showing the password."""
    with pytest.raises(CacheError) as caught:
        Cache.open(url)

    assert not any("secret" in str(e) for e in _chain(caught.value))


def test_ping(cache: Cache, unreachable_url: str) -> None:
    """ping() is True on a working cache and False, without raising, on an unreachable one."""
    assert cache.ping()
    with Cache(create_cache_engine(unreachable_url)) as broken:
        assert not broken.ping()


def test_short_url_forms_open_a_working_cache(backend: str, request: pytest.FixtureRequest) -> None:
    """sqlite:///:memory: (one shared connection) and postgresql:// (rewritten to psycopg) both work."""
    if backend == "sqlite":
        url = "sqlite:///:memory:"
    else:
        url = str(request.getfixturevalue("db_url")).replace("postgresql+psycopg://", "postgresql://")

    with Cache.open(url) as cache:
        cache.upgrade()
        cache.put_user(CachedUser("u1", "t1", "alice@example.com", "d"))

        assert ["u1"] == list(cache.load().users)
        assert {"sqlite": "pysqlite", "postgres": "psycopg"}[backend] == cache.engine.dialect.driver


def test_connection_settings(cache: Cache) -> None:
    """SQLite connections use WAL, synchronous=NORMAL, a 30 s busy timeout and foreign keys;
    PostgreSQL ones name the application."""
    with cache.engine.connect() as connection:
        if cache.engine.dialect.name == "sqlite":
            settings = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
            assert {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000, "foreign_keys": 1} == settings
        else:
            assert "syncd" == connection.exec_driver_sql("SHOW application_name").scalar()


def test_the_context_manager_closes_the_pool(db_url: str) -> None:
    """Leaving the with block closes the cache's pooled connections."""
    closed: list[object] = []
    with Cache.open(db_url) as cache:
        sa.event.listen(cache.engine, "close", lambda dbapi_connection, record: closed.append(dbapi_connection))
        assert cache.ping()
        assert [] == closed

    assert 1 <= len(closed)


def test_the_url_is_shown_masked() -> None:
    """Cache.url and repr() show the URL with its password masked."""
    with Cache(create_cache_engine("postgresql://syncd:hunter2@db.example.com/syncd")) as cache:
        assert "postgresql+psycopg://syncd:***@db.example.com/syncd" == cache.url
        assert "hunter2" not in repr(cache)


def test_a_new_sqlite_cache_opens_while_another_process_holds_its_write_lock(tmp_path: Path) -> None:
    """Switching a new SQLite cache to WAL while another connection holds it retries instead of failing."""
    path = tmp_path / "syncd.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")  # a writer mid-transaction, still in rollback-journal mode
    released: list[str] = []

    def release(details: RetryDetails) -> None:
        released.append(details.caused_by.__class__.__name__)
        other.execute("ROLLBACK")

    hooks = get_on_retry_hooks()
    set_on_retry_hooks([release])
    try:
        engine = create_cache_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        engine.dispose()
    finally:
        set_on_retry_hooks(hooks)
        other.close()
    assert released == ["OperationalError"]  # SQLite answered busy at once, and the open retried
