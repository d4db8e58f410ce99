"""Fixtures for the cache tests: every test runs on SQLite and on PostgreSQL.

PostgreSQL: the server at ``SYNCD_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, trust auth). One throwaway database
``syncd_test_<hex>`` is created per session and dropped at the end; each test starts from an
empty ``public`` schema. If the server cannot be reached the postgres tests *fail* (CI has
PostgreSQL); deselect them locally with ``-m "not postgres"``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.cache import Cache


PG_ADMIN_URL = os.environ.get("SYNCD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _drop_abandoned_databases(connection: sa.Connection) -> None:
    """Drop syncd_test_* databases a killed session left behind: idle and over an hour old."""
    try:
        names = connection.execute(
            sa.text(
                "SELECT datname FROM pg_database d WHERE datname LIKE 'syncd\\_test\\_%' "
                "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname) "
                "AND (pg_stat_file('base/' || d.oid || '/PG_VERSION')).modification < now() - interval '1 hour'"
            )
        ).scalars()
        for stale in list(names):
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{stale}"')
    except sa.exc.DBAPIError:
        pass  # no right to read the data directory (not a superuser): leave them


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this session; dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"syncd_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            _drop_abandoned_databases(connection)
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        shown = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL is unreachable at {shown} ({exc.__class__.__name__}: {exc}). "
            'The tests marked "postgres" need it; set SYNCD_TEST_POSTGRES_URL or deselect them '
            'with -m "not postgres".',
            pytrace=False,
        )
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_resetter(postgres_url: str) -> Iterator[sa.Engine]:
    """An engine on the session database, used to empty it before each test."""
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def _reset_postgres(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        # A leaked connection holding a lock fails the test instead of hanging the suite.
        connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: "sqlite" or "postgres"."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of an empty database on the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('cache') / 'syncd.db'}"
    url = str(request.getfixturevalue("postgres_url"))
    _reset_postgres(request.getfixturevalue("postgres_resetter"))
    return url


@pytest.fixture
def blank_cache(db_url: str) -> Iterator[Cache]:
    """A cache opened on an empty database, never migrated."""
    with Cache.open(db_url) as cache:
        yield cache


@pytest.fixture
def cache(blank_cache: Cache) -> Cache:
    """A cache migrated to the newest schema, with nothing in it."""
    blank_cache.upgrade()
    return blank_cache


@pytest.fixture
def other_cache(cache: Cache, db_url: str) -> Iterator[Cache]:
    """A second cache on the same database, as another process would open it."""
    with Cache.open(db_url) as other:
        yield other


@pytest.fixture
def unreachable_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL on the backend under test that cannot be opened (the PostgreSQL one has a password)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('missing') / 'no-such-dir' / 'syncd.db'}"
    return "postgresql://u:secret@127.0.0.1:1/x"
